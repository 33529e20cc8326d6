// Liveness for `make run-nextjs` (kit/cmd/devenv waits on it) and the tests.
export const dynamic = "force-static";

export function GET() {
  return Response.json({ ok: true });
}
