// Signs JWTs with the server's current key, server-side only (Better Auth's
// auth.api.signJWT; never exposed over HTTP). Prints one token per payload
// argument, one per line.
// e2e/betterauth_jwks_test.go uses it to make tokens the real key signed
// but the proxy must refuse (expired, wrong iss or aud).
//
//   node sign.mjs '{"sub":"<user id>","exp":1700000000}' ['{…}' …]
import { auth } from "./auth.mjs";

for (const arg of process.argv.slice(2)) {
  const { token } = await auth.api.signJWT({ body: { payload: JSON.parse(arg) } });
  process.stdout.write(token + "\n");
}
process.exit(0);
