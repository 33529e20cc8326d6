#!/bin/sh
# build-before.sh REV DIR: build proxy, backend and authsvc from commit REV
# into DIR, once (DIR is a per-commit cache outside the repo; the Makefile
# uses $XDG_CACHE_HOME/gatehouse/bench-before-REV). gatebench's *-before
# rows run them beside the current services, so issue 18's "N× today's"
# targets are measured in the same run, on the same machine and Go.
set -eu
rev=$1 dir=$2
if [ -x "$dir/proxy" ] && [ -x "$dir/backend" ] && [ -x "$dir/authsvc" ]; then
	exit 0
fi
if ! git cat-file -e "$rev^{commit}" 2>/dev/null; then
	echo "build-before.sh: commit $rev is not in this clone (shallow?): git fetch --unshallow, or run gatebench without the *-before rows" >&2
	exit 1
fi
src=$(mktemp -d) out=$(mktemp -d)
trap 'rm -rf "$src" "$out"' EXIT
git archive "$rev" | tar -x -C "$src"
echo "build-before.sh: building the services of $rev into $dir"
for s in proxy backend authsvc; do
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$out/$s" "./$s")
done
echo "$rev" >"$out/REV"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$out" "$dir"
trap 'rm -rf "$src"' EXIT
