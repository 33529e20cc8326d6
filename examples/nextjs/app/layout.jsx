import { AuthProvider } from "./auth-provider";
import "./globals.css";

export const metadata = { title: "Todos — Next.js behind Gatehouse" };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>
        <AuthProvider>
          <main>{children}</main>
        </AuthProvider>
      </body>
    </html>
  );
}
