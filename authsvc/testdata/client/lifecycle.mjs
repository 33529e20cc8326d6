// Drives the account-lifecycle calls of better-auth's own client against a
// running authsvc that mails through a Mailpit (lifecycle_client_test.go):
// reset by mail, change password, update the profile, list and revoke
// sessions, verify the email, delete the account. Links are read out of
// the delivered mail through Mailpit's API. Prints JSON; exits non-zero on
// any unexpected failure.
import { createAuthClient } from "better-auth/client";

const base = process.env.AUTH_URL;
const origin = process.env.ORIGIN;
const mailAPI = process.env.MAILPIT_API;
if (!base || !origin || !mailAPI) {
  console.error("AUTH_URL, ORIGIN and MAILPIT_API must be set");
  process.exit(2);
}

// One cookie jar per simulated browser (see client.mjs).
function browser() {
  const jar = new Map();
  const f = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    const method = (init.method || "GET").toUpperCase();
    if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    if (method !== "GET" && method !== "HEAD") headers.set("origin", origin);
    const res = await fetch(url, { ...init, headers });
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
  };
  return createAuthClient({ baseURL: base, fetchOptions: { customFetchImpl: f } });
}

function must(step, res) {
  if (res.error) {
    console.error(`${step} failed: ${JSON.stringify(res.error)}`);
    process.exit(1);
  }
  return res.data;
}
const err = (res) => ({ status: res.error?.status, code: res.error?.code });

// waitMail returns the text of the n-th mail to addr.
async function waitMail(addr, n) {
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${mailAPI}/api/v1/search?query=${encodeURIComponent(`to:"${addr}"`)}`);
    const list = (await r.json()).messages;
    if (list.length >= n) {
      const m = await (await fetch(`${mailAPI}/api/v1/message/${list[0].ID}`)).json();
      return m.Text;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no mail ${n} to ${addr}`);
}
// Links name the public origin (ORIGIN); AUTH_URL may be authsvc itself.
const esc = (x) => x.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const linkIn = (text) => text.match(new RegExp(`${esc(origin)}/api/auth/\\S+`))[0];

const email = `lifecycle.${Date.now()}@example.com`;
const pw1 = "first-password-123", pw2 = "second-password-456", pw3 = "third-password-789";
const out = {};
const a = browser(), b = browser();

must("signUp", await a.signUp.email({ email, password: pw1, name: "Life Cycle" }));
must("signIn b", await b.signIn.email({ email, password: pw1 }));

// Forgotten password: request, read the mail, follow Better Auth's flow.
out.requestReset = must("requestPasswordReset", await b.requestPasswordReset({ email, redirectTo: `${origin}/reset` }));
out.requestResetUnknown = must("requestPasswordReset unknown", await b.requestPasswordReset({ email: `nobody.${email}`, redirectTo: `${origin}/reset` }));
const link = linkIn(await waitMail(email, 1));
const follow = await fetch(link.replace(origin, new URL(base).origin), { redirect: "manual" });
const token = new URL(follow.headers.get("location")).searchParams.get("token");
out.resetLink = { status: follow.status, hasToken: !!token };
out.resetPassword = must("resetPassword", await b.resetPassword({ newPassword: pw2, token }));
out.resetReuse = err(await b.resetPassword({ newPassword: pw3, token }));
out.sessionAfterReset = { a: must("getSession a", await a.getSession()), b: must("getSession b", await b.getSession()) };
out.oldPasswordAfterReset = err(await a.signIn.email({ email, password: pw1 }));
must("signIn a with new password", await a.signIn.email({ email, password: pw2 }));
must("signIn b with new password", await b.signIn.email({ email, password: pw2 }));

// Signed in: change the password, revoking the other session.
out.changeWrong = err(await a.changePassword({ currentPassword: "not-my-password", newPassword: pw3 }));
const changed = must("changePassword", await a.changePassword({ currentPassword: pw2, newPassword: pw3, revokeOtherSessions: true }));
out.change = { hasToken: typeof changed.token === "string", email: changed.user.email };
out.sessionBAfterChange = must("getSession b", await b.getSession());

out.updateUser = must("updateUser", await a.updateUser({ name: "Renamed Person" }));
out.nameAfterUpdate = must("getSession a", await a.getSession()).user.name;

must("signIn b again", await b.signIn.email({ email, password: pw3 }));
const sessions = must("listSessions", await a.listSessions());
out.listSessions = sessions.length;
const current = must("getSession a", await a.getSession()).session;
const other = sessions.find((s) => s.id !== current.id);
out.revokeSession = must("revokeSession", await a.revokeSession({ token: other.token }));
out.sessionBAfterRevoke = must("getSession b", await b.getSession());

// Email verification through the client.
out.sendVerification = must("sendVerificationEmail", await a.sendVerificationEmail({ email, callbackURL: "/" }));
const vlink = new URL(linkIn(await waitMail(email, 2)));
out.verifyEmail = must("verifyEmail", await a.verifyEmail({ query: { token: vlink.searchParams.get("token") } }));
out.verified = must("getSession a", await a.getSession()).user.emailVerified;

out.deleteWrong = err(await a.deleteUser({ password: "not-my-password" }));
out.deleteUser = must("deleteUser", await a.deleteUser({ password: pw3 }));
out.sessionAfterDelete = must("getSession a", await a.getSession());
out.signInAfterDelete = err(await b.signIn.email({ email, password: pw3 }));
console.log(JSON.stringify(out));
