// Creates a Better Auth database the way a Better Auth app would: its own
// migrations (getMigrations, what `npx @better-auth/cli migrate` runs) and
// its own sign-up, through the pinned better-auth and pg. import_test.go
// then imports it into authsvc. Prints the created users as JSON.
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import pg from "pg";

const url = process.env.BA_DATABASE_URL;
if (!url) {
  console.error("BA_DATABASE_URL must be set");
  process.exit(2);
}
const pool = new pg.Pool({ connectionString: url });
const auth = betterAuth({
  database: pool,
  secret: "better-auth-seed-secret-0123456789abcdef",
  baseURL: "http://localhost:3000",
  emailAndPassword: { enabled: true },
  logger: { disabled: true },
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const users = JSON.parse(process.env.BA_USERS); // [{email, password, name, verified}]
const out = [];
for (const u of users) {
  const res = await auth.api.signUpEmail({ body: { email: u.email, password: u.password, name: u.name } });
  if (u.verified) await pool.query(`UPDATE "user" SET "emailVerified" = true WHERE id = $1`, [res.user.id]);
  out.push({ id: res.user.id, email: res.user.email });
}
// A social-only user: a user row and a non-credential account, no password.
await pool.query(`INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")
  VALUES ('social-only-user-id', 'Social Only', 'social.only@example.com', true, now(), now())`);
await pool.query(`INSERT INTO account (id, "accountId", "providerId", "userId", "createdAt", "updatedAt")
  VALUES ('social-acc', '12345', 'github', 'social-only-user-id', now(), now())`);
out.push({ id: "social-only-user-id", email: "social.only@example.com" });
await pool.end();
console.log(JSON.stringify(out));
