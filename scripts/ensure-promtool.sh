#!/usr/bin/env bash
# Prints the path of a promtool binary (Prometheus' rule and expression checker), installing it
# first when it is not cached: `go install` from the Go module proxy, pinned, into
# $TASTE_TOOLS_DIR (default .taste/tools)/go/promtool-<version>/. Idempotent: a cached binary is
# reused, a cut-short install is redone, a version bump reinstalls. Where no `go` is on PATH it
# takes Go itself from the Go module proxy (golang.org/toolchain, a module like any other).
# A cold install (module downloads + build) takes minutes; the cached one milliseconds.
#
# usage: scripts/ensure-promtool.sh      → /abs/path/to/promtool on stdout, progress on stderr
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16.0 (the module is tagged v0.3xx).
readonly PROMETHEUS_MODULE_VERSION=v0.316.0

TOOLS="${TASTE_TOOLS_DIR:-$PWD/.taste/tools}"
mkdir -p "$TOOLS"
TOOLS="$(cd "$TOOLS" && pwd)"
dir="$TOOLS/go/promtool-$PROMETHEUS_MODULE_VERSION"
log() { printf '[promtool] %s\n' "$*" >&2; }

if [[ -x "$dir/promtool" ]]; then
  printf '%s\n' "$dir/promtool"
  exit 0
fi

# One installer at a time (test runners start side by side); the holder may have finished.
exec 9>"$TOOLS/.promtool.lock"
flock -w 1200 9 || { log "another install holds $TOOLS/.promtool.lock"; exit 2; }
if [[ -x "$dir/promtool" ]]; then
  printf '%s\n' "$dir/promtool"
  exit 0
fi

GO="$(TASTE_TOOLS_DIR="$TOOLS" bash scripts/ensure-go.sh)" || { log "no Go to build promtool with"; exit 2; }
log "installing promtool (go install github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION)"
started=$SECONDS
rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
GOBIN="$dir.tmp" GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local \
  "$GO" install "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" 9>&- >&2 ||
  { log "go install of promtool failed"; exit 2; }
rm -rf "$dir" && mv "$dir.tmp" "$dir"
log "installed in $((SECONDS - started)) s: $dir/promtool"
printf '%s\n' "$dir/promtool"
