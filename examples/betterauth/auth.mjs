// The Better Auth configuration a Next.js team already has (lib/auth.ts),
// kept as the identity provider. Only the jwt plugin's options matter to
// Gatehouse: the proxy verifies these tokens against /api/auth/jwks.
import { betterAuth } from "better-auth";
import { jwt } from "better-auth/plugins";
import pg from "pg";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") {
    console.error(`better-auth: ${name} is required`);
    process.exit(1);
  }
  return v;
};

const baseURL = env("BETTER_AUTH_URL"); // the public origin, e.g. https://app.example.com

export const auth = betterAuth({
  baseURL,
  secret: env("BETTER_AUTH_SECRET"), // 32+ random bytes; also seals the JWKS private keys
  database: new pg.Pool({ connectionString: env("DATABASE_URL"), max: 5 }),
  emailAndPassword: { enabled: true },
  trustedOrigins: (process.env.TRUSTED_ORIGINS ?? baseURL).split(",").filter(Boolean),
  telemetry: { enabled: false }, // no outbound traffic
  plugins: [
    jwt({
      jwt: {
        // The proxy checks both (JWT_ISSUER, JWT_AUDIENCE): a token minted
        // for another app on the same Better Auth is refused.
        issuer: env("JWT_ISSUER", baseURL),
        audience: env("JWT_AUDIENCE", baseURL),
        expirationTime: "15m",
        // By default the token carries the whole user row — email, name,
        // image — to every backend and every log that prints a header.
        // The proxy needs only sub (the user id, always set by the plugin).
        definePayload: () => ({}),
      },
    }),
  ],
});
