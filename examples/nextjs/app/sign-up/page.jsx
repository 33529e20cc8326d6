"use client";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { authClient, authErrorMessage, retryAfterSeconds } from "../../lib/auth-client";
import { useAuth } from "../auth-provider";

export default function SignUpPage() {
  const router = useRouter();
  const { refetch } = useAuth();
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function onSubmit(e) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError("");
    let retryAfter = 60;
    const { error } = await authClient.signUp.email(
      { name: form.get("name"), email: form.get("email"), password: form.get("password") },
      { onError: (ctx) => { retryAfter = retryAfterSeconds(ctx.response); } },
    );
    setBusy(false);
    if (error) {
      setError(authErrorMessage(error, retryAfter));
      return;
    }
    await refetch();
    router.push("/todos");
  }

  return (
    <>
      <h1>Create an account</h1>
      {error && <p role="alert" className="error">{error}</p>}
      <form onSubmit={onSubmit}>
        <input name="name" type="text" placeholder="Name" autoComplete="name" required />
        <input name="email" type="email" placeholder="Email" autoComplete="email" required />
        <input name="password" type="password" placeholder="Password (8+ characters)" autoComplete="new-password" required />
        <button type="submit" disabled={busy}>Sign up</button>
      </form>
      <p>Have an account? <Link href="/sign-in">Sign in</Link></p>
    </>
  );
}
