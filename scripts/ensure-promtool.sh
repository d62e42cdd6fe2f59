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
# Only used where the machine has no Go: the toolchain that builds the version above.
readonly GO_TOOLCHAIN=go1.26.8

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

go_command() {
  if command -v go >/dev/null; then
    command -v go
    return
  fi
  local goroot="$TOOLS/go/toolchain-$GO_TOOLCHAIN"
  if [[ ! -x "$goroot/bin/go" ]]; then
    local arch
    case "$(uname -m)" in
      x86_64) arch=amd64 ;;
      aarch64 | arm64) arch=arm64 ;;
      *) log "no go on PATH and no Go toolchain module for $(uname -m)"; exit 2 ;;
    esac
    local os
    os="$(uname -s | tr '[:upper:]' '[:lower:]')"
    log "no go on PATH: fetching $GO_TOOLCHAIN from the Go module proxy (golang.org/toolchain)"
    rm -rf "$goroot.tmp" && mkdir -p "$goroot.tmp"
    python3 - "${GOPROXY:-https://proxy.golang.org}" "v0.0.1-$GO_TOOLCHAIN.$os-$arch" "$goroot.tmp" <<'PY' >&2
import io, os, sys, urllib.request, zipfile
proxy, version, out = sys.argv[1].split(",")[0], sys.argv[2], sys.argv[3]
url = f"{proxy.rstrip('/')}/golang.org/toolchain/@v/{version}.zip"
with urllib.request.urlopen(url, timeout=300) as response:
    archive = zipfile.ZipFile(io.BytesIO(response.read()))
prefix = f"golang.org/toolchain@{version}/"
for member in archive.infolist():
    if not member.filename.startswith(prefix) or member.is_dir():
        continue
    target = os.path.join(out, member.filename[len(prefix):])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as file:
        file.write(archive.read(member))
    # Zip entries keep their Unix mode in the high bits of external_attr.
    os.chmod(target, (member.external_attr >> 16) & 0o777 or 0o644)
PY
    rm -rf "$goroot" && mv "$goroot.tmp" "$goroot"
  fi
  printf '%s\n' "$goroot/bin/go"
}

GO="$(go_command)"
log "installing promtool (go install github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION)"
started=$SECONDS
rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
GOBIN="$dir.tmp" GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local \
  "$GO" install "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" 9>&- >&2 ||
  { log "go install of promtool failed"; exit 2; }
rm -rf "$dir" && mv "$dir.tmp" "$dir"
log "installed in $((SECONDS - started)) s: $dir/promtool"
printf '%s\n' "$dir/promtool"
