"use client";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";
import { authClient, authErrorMessage, retryAfterSeconds } from "../../lib/auth-client";
import { useAuth } from "../auth-provider";

function SignInForm() {
  const router = useRouter();
  const params = useSearchParams();
  const { refetch } = useAuth();
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function onSubmit(e) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError("");
    let retryAfter = 60;
    const { error } = await authClient.signIn.email(
      { email: form.get("email"), password: form.get("password") },
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
      <h1>Sign in</h1>
      {params.get("expired") && <p role="status" className="notice">Your session has expired. Please sign in again.</p>}
      {params.get("signedOut") && <p role="status" className="notice">You are signed out.</p>}
      {error && <p role="alert" className="error">{error}</p>}
      <form onSubmit={onSubmit}>
        <input name="email" type="email" placeholder="Email" autoComplete="email" required />
        <input name="password" type="password" placeholder="Password" autoComplete="current-password" required />
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
      <p>No account? <Link href="/sign-up">Sign up</Link></p>
    </>
  );
}

export default function SignInPage() {
  return (
    <Suspense>
      <SignInForm />
    </Suspense>
  );
}
