#!/usr/bin/env bash
# Prints the path of a `go` command for the tool installers (ensure-promtool.sh, ensure-grpcurl.sh):
# the one on PATH, or else Go itself from the Go module proxy (golang.org/toolchain is a module
# like any other), pinned, cached in $TASTE_TOOLS_DIR (default .taste/tools)/go/toolchain-<version>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The toolchain that builds the pinned promtool and grpcurl (both need Go 1.25 or newer).
readonly GO_TOOLCHAIN=go1.26.8

TOOLS="${TASTE_TOOLS_DIR:-$PWD/.taste/tools}"
mkdir -p "$TOOLS"
TOOLS="$(cd "$TOOLS" && pwd)"
log() { printf '[go] %s\n' "$*" >&2; }

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


if ! command -v go >/dev/null; then
  exec 9>"$TOOLS/.go-toolchain.lock"
  flock -w 600 9 || { log "another download holds $TOOLS/.go-toolchain.lock"; exit 2; }
fi
go_command
