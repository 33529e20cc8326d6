"use client";
// The todo API, through the proxy on the same origin. The browser sends the
// HttpOnly access cookie (Path=/api) by itself; the proxy verifies it and
// the backend sees only X-User-ID. When the short-lived access token has
// expired, one call to /api/auth/token (the jwt plugin's endpoint) makes the
// auth server set a fresh cookie from the session; the token it also returns
// is dropped, never stored.
import { authClient } from "./auth-client";

export class SessionExpiredError extends Error {
  constructor() {
    super("Your session has expired. Please sign in again.");
  }
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `Request failed (${status}).`);
    this.status = status;
    this.code = body?.code;
  }
}

async function send(path, { method = "GET", body } = {}) {
  return fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export async function api(path, options) {
  let res = await send(path, options);
  if (res.status === 401) {
    const { error } = await authClient.token();
    if (error) throw new SessionExpiredError();
    res = await send(path, options);
    if (res.status === 401) throw new SessionExpiredError();
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const todos = {
  list: () => api("/api/v1/todos?limit=100"),
  add: (title) => api("/api/v1/todos", { method: "POST", body: { title } }),
  setCompleted: (id, completed) => api(`/api/v1/todos/${id}`, { method: "PATCH", body: { completed } }),
  remove: (id) => api(`/api/v1/todos/${id}`, { method: "DELETE" }),
};
