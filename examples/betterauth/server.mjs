#!/usr/bin/env node
// Better Auth as a standalone Node server (next to, or instead of, the
// Next.js route handler app/api/auth/[...all]/route.ts). It creates its
// tables at start-up and serves /api/auth/*, plus /healthz and /readyz.
//
//   DATABASE_URL=postgres://… BETTER_AUTH_SECRET=… BETTER_AUTH_URL=https://app.example.com \
//   ADDR=127.0.0.1:3001 node server.mjs
import http from "node:http";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { auth } from "./auth.mjs";

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const [host, port] = (process.env.ADDR ?? "127.0.0.1:3001").split(/:(?=\d+$)/);
const handler = toNodeHandler(auth);
const server = http.createServer((req, res) => {
  if (req.url === "/healthz" || req.url === "/readyz") {
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    return;
  }
  if (!req.url.startsWith("/api/auth/")) {
    res.writeHead(404, { "content-type": "application/json" })
      .end('{"code":"NOT_FOUND","message":"Not found."}');
    return;
  }
  handler(req, res);
});
server.listen(Number(port), host, () => console.error(`better-auth listening on ${host}:${port}`));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
