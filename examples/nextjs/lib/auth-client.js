"use client";
// Better Auth's own React client, pointed at the page's origin: the proxy
// sends /api/auth/* to authsvc (or to Better Auth itself, docs/migrating.md).
// Sessions and access tokens live in HttpOnly cookies set by the auth server;
// nothing here stores a token.
import { createAuthClient } from "better-auth/react";
import { jwtClient } from "better-auth/client/plugins";

export const authClient = createAuthClient({
  baseURL: typeof window === "undefined" ? "http://localhost" : window.location.origin,
  plugins: [jwtClient()],
});

/** Seconds to wait after a 429, from the proxy's Retry-After / X-Retry-After. */
export function retryAfterSeconds(response) {
  const raw = response?.headers.get("X-Retry-After") ?? response?.headers.get("Retry-After");
  const n = Number.parseInt(raw ?? "", 10);
  return Number.isFinite(n) && n > 0 ? n : 60;
}

/** A sentence for an auth error: Better Auth's { status, code, message }. */
export function authErrorMessage(error, retryAfter) {
  switch (error?.status === 429 ? "RATE_LIMITED" : error?.code) {
    case "RATE_LIMITED":
      return `Too many attempts. Try again in ${retryAfter} seconds.`;
    case "INVALID_EMAIL_OR_PASSWORD":
      return "Wrong email or password.";
    case "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL":
    case "USER_ALREADY_EXISTS":
      return "An account with this email already exists. Sign in instead.";
    case "PASSWORD_TOO_SHORT":
      return "The password must be at least 8 characters.";
    case "PASSWORD_TOO_LONG":
      return "The password must be at most 128 characters.";
    case "INVALID_EMAIL":
      return "That email address does not look right.";
    default:
      return error?.message || "Something went wrong. Please try again.";
  }
}
