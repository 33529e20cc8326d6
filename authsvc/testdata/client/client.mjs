// Drives better-auth's own client (createAuthClient + jwtClient) against a
// running authsvc. Go's client_test.go runs it with AUTH_URL and ORIGIN set
// and asserts on the JSON it prints; any failure exits non-zero.
import { createAuthClient } from "better-auth/client";
import { jwtClient } from "better-auth/client/plugins";
import { serializeSignedCookie } from "better-call";

const base = process.env.AUTH_URL;
const origin = process.env.ORIGIN;
if (!base || !origin) {
  console.error("AUTH_URL and ORIGIN must be set");
  process.exit(2);
}

// Node's fetch keeps no cookies and always sends sec-fetch-mode: cors, so
// this wrapper behaves like a browser page on the same origin: it keeps the
// cookies it is given and sends Origin on unsafe requests.
const jar = new Map();
const requests = [];
async function browserFetch(url, init = {}) {
  const headers = new Headers(init.headers);
  const method = (init.method || "GET").toUpperCase();
  if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
  if (method !== "GET" && method !== "HEAD") headers.set("origin", origin);
  const res = await fetch(url, { ...init, headers });
  requests.push(`${method} ${new URL(String(url)).pathname} ${res.status}`);
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(";");
    const i = pair.indexOf("=");
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    const maxAge = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith("max-age="));
    if (value === "" || (maxAge && Number(maxAge.slice(8)) <= 0)) jar.delete(name);
    else jar.set(name, value);
  }
  return res;
}

const client = createAuthClient({
  baseURL: base,
  plugins: [jwtClient()],
  fetchOptions: { customFetchImpl: browserFetch },
});

function must(step, res) {
  if (res.error) {
    console.error(`${step} failed: ${JSON.stringify(res.error)}\nrequests: ${requests.join(", ")}`);
    process.exit(1);
  }
  return res.data;
}

const email = `Node.Client.${Date.now()}@Example.com`;
const password = "correct-horse-battery";
const out = {};

const up = must("signUp.email", await client.signUp.email({ email, password, name: "Node Client" }));
out.signUp = { userId: up.user.id, email: up.user.email, token: up.token, createdAt: up.user.createdAt };
jar.clear(); // start the sign-in from a fresh browser

const dup = await client.signUp.email({ email, password, name: "Again" });
out.duplicate = { status: dup.error?.status, code: dup.error?.code };

const bad = await client.signIn.email({ email, password: "wrong-password!" });
out.badSignIn = { status: bad.error?.status, code: bad.error?.code, message: bad.error?.message };

const signIn = must("signIn.email", await client.signIn.email({ email, password }));
out.signIn = { userId: signIn.user.id, redirect: signIn.redirect, token: signIn.token };
// The session cookie must be exactly what Better Auth itself would set.
if (process.env.COOKIE_SECRET) {
  const want = await serializeSignedCookie("better-auth.session_token", signIn.token, process.env.COOKIE_SECRET, {});
  out.cookieMatchesBetterCall = want === `better-auth.session_token=${jar.get("better-auth.session_token")}`;
}

let jwtHeader = null;
const session = must("getSession", await client.getSession({
  fetchOptions: { onSuccess: (ctx) => { jwtHeader = ctx.response.headers.get("set-auth-jwt"); } },
}));
out.getSession = {
  userId: session?.user?.id,
  email: session?.user?.email,
  sessionUserId: session?.session?.userId,
  expiresAt: session?.session?.expiresAt,
  jwtHeader,
};

out.token = must("token", await client.token()).token;
out.jwks = must("jwks", await client.jwks());
out.signOut = must("signOut", await client.signOut());
out.afterSignOut = must("getSession after signOut", await client.getSession());
const tokenAfter = await client.token();
out.tokenAfterSignOut = { status: tokenAfter.error?.status, code: tokenAfter.error?.code };

// "Sign out everywhere" through the client's own revokeSessions.
must("signIn.email again", await client.signIn.email({ email, password }));
out.revokeSessions = must("revokeSessions", await client.revokeSessions());
out.afterRevokeSessions = must("getSession after revokeSessions", await client.getSession());

const common = await client.signUp.email({ email: `common.${Date.now()}@example.com`, password: "Password123", name: "Common" });
out.commonPassword = { status: common.error?.status, code: common.error?.code };
out.requests = requests;
console.log(JSON.stringify(out));
