#!/bin/sh
# build-before.sh REV DIR: build proxy, backend and authsvc from commit REV
# into DIR, once (DIR is a cache outside the repo, per commit and Go
# version: the Makefile uses
# $XDG_CACHE_HOME/gatehouse/bench-before-REV-GOVERSION). gatebench's
# *-before rows run them beside the current services, so issue 18's
# "N× before" targets are measured in the same run, on the same machine.
set -eu
rev=$1 dir=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
# REV is written last: a directory without it is an interrupted build.
if [ -s "$dir/REV" ]; then
	exit 0
fi
if ! commit=$(git -C "$repo" rev-parse --verify --quiet "$rev^{commit}"); then
	echo "build-before.sh: commit $rev is not in $repo (a shallow clone? git fetch --unshallow), or run gatebench without the *-before rows" >&2
	exit 1
fi
parent=$(dirname "$dir")
mkdir -p "$parent"
# Beside DIR, so the final mv is a rename and never half a copy.
work=$(mktemp -d "$parent/.before.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP # dash runs the EXIT trap only on exit
git -C "$repo" archive -o "$work/src.tar" "$commit"
mkdir "$work/src" "$work/out"
tar -x -C "$work/src" -f "$work/src.tar"
echo "build-before.sh: building the services of $rev ($commit) with $(go env GOVERSION) into $dir"
for s in proxy backend authsvc; do
	(cd "$work/src" && CGO_ENABLED=0 go build -trimpath -o "$work/out/$s" "./$s")
done
echo "$rev" >"$work/out/REV"
rm -rf "$dir"
mv "$work/out" "$dir"
