#!/usr/bin/env bash
# grpcurl, the client the README's gRPC examples use, built once from the Go module proxy (`go
# install` of a pinned version) into .taste/tools/. Idempotent: a second run only prints the path.
# test/serving/reflection.test.ts runs the README's commands with it.
#
# Usage: bash scripts/ensure-grpcurl.sh           install if missing; print the binary's path
#        bash scripts/ensure-grpcurl.sh --path    print the path if installed, else exit 1 (installs nothing)
#
# Cold, it downloads and compiles ~40 modules: 5 minutes on the 2-core machine under load (1m53s of
# CPU; timed by hand and not kept), seconds once the Go module cache has them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=v1.9.4
dir="$PWD/.taste/tools/grpcurl-$version"
bin="$dir/grpcurl"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
[ "${1:-}" != "--path" ] || exit 1

GO="$(bash scripts/ensure-go.sh)" || { echo "ensure-grpcurl: no Go to build grpcurl $version with" >&2; exit 1; }
echo "[setup] grpcurl $version (go install, into $dir)" >&2
start=$(date +%s)
mkdir -p "$(dirname "$dir")"
# Into a scratch folder first, so an interrupted build never leaves a half-written binary behind.
scratch="$(mktemp -d "$dir.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
GOBIN="$scratch" GOFLAGS=-mod=mod GOTOOLCHAIN=local "$GO" install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$version" >&2
mkdir -p "$dir"
mv "$scratch/grpcurl" "$bin"
echo "[setup] grpcurl ready in $(( $(date +%s) - start ))s" >&2
echo "$bin"
