#!/usr/bin/env node
// Better Auth as a standalone Node server (next to, or instead of, the
// Next.js route handler app/api/auth/[...all]/route.ts). It listens, creates
// its tables, then reports ready; it serves /api/auth/*, /healthz and /readyz.
//
//   DATABASE_URL=postgres://… BETTER_AUTH_SECRET=… BETTER_AUTH_URL=https://app.example.com \
//   ADDR=127.0.0.1:3001 node server.mjs
import http from "node:http";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { auth } from "./auth.mjs";

const [host, port] = (process.env.ADDR ?? "127.0.0.1:3001").split(/:(?=\d+$)/);
const handler = toNodeHandler(auth);
let migrated = false; // /readyz is 503 until the tables exist
const server = http.createServer((req, res) => {
  if (req.url === "/healthz" || req.url === "/readyz") {
    const ok = req.url === "/healthz" || migrated;
    res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(ok ? '{"ok":true}' : '{"ok":false}');
    return;
  }
  if (!req.url.startsWith("/api/auth/")) {
    res.writeHead(404, { "content-type": "application/json" })
      .end('{"code":"NOT_FOUND","message":"Not found."}');
    return;
  }
  handler(req, res);
});
server.on("error", (err) => {
  console.error(`better-auth: listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});
await new Promise((resolve) => server.listen(Number(port), host, resolve));
console.error(`better-auth listening on ${host}:${port}`);
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
migrated = true;
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
