#!/usr/bin/env bash
# Installs ONNX Runtime's CUDA execution provider for onnxruntime-node from PyPI (opt-in; README,
# GPU). onnxruntime-node's own install script takes these libraries from NuGet, which our
# machines do not reach; the PyPI wheel onnxruntime-gpu of the same version carries the same two
# files. Needs bash, python3 and pip; no Node.js.
#
#   1. reads onnxruntime-node's version from its package.json;
#   2. downloads onnxruntime-gpu==<that version> (pip download --no-deps), or takes --wheel;
#   3. refuses any other version; copies libonnxruntime_providers_cuda.so and
#      libonnxruntime_providers_shared.so beside libonnxruntime.so.1, where onnxruntime-node
#      loads providers from;
#   4. with --cuda-libs DIR: also the CUDA and cuDNN libraries that provider links (the nvidia-*
#      wheels its metadata names, plus cuBLAS), flat in DIR, to be put on LD_LIBRARY_PATH.
#      Skip it where the CUDA 13 libraries are installed already (a CUDA toolkit, or a PyTorch
#      cu13 environment's site-packages/nvidia/*/lib, which lacks only nvidia-curand).
#
# Exit status: 0 installed, 1 refused or failed (the message says why), 2 usage.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/install-cuda-provider.sh [options]

  --version V        the onnxruntime-gpu version wanted; refused unless it is onnxruntime-node's
                     (default: onnxruntime-node's version)
  --wheel FILE       an onnxruntime-gpu wheel already downloaded (default: pip download it)
  --package-dir DIR  onnxruntime-node's folder (default: node_modules/onnxruntime-node of this repo)
  --target DIR       where the provider libraries go
                     (default: <package-dir>/bin/napi-v6/linux/x64, beside libonnxruntime.so.1)
  --cuda-libs DIR    also install the CUDA/cuDNN libraries into DIR (about 2 GB); then run with
                     LD_LIBRARY_PATH=DIR
  --cuda-wheels DIR  take the nvidia-* wheels from DIR instead of downloading them
  --python PY        the Python that runs pip and the helper (default: python3)
  -h, --help         this text

The libraries must be in place, and LD_LIBRARY_PATH set, before the process starts:
  LD_LIBRARY_PATH=DIR taste consume --execution-provider cuda
EOF
}

fail() {
  echo "install-cuda-provider: $*" >&2
  exit 1
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPER="$REPO/scripts/cuda-provider-wheel.py"
version="" wheel="" package_dir="$REPO/node_modules/onnxruntime-node" target="" cuda_libs="" cuda_wheels="" python=python3
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --version | --wheel | --package-dir | --target | --cuda-libs | --cuda-wheels | --python)
      [[ $# -ge 2 && -n "$2" ]] || { echo "install-cuda-provider: $1 needs a value" >&2; usage >&2; exit 2; }
      case "$1" in
        --version) version="$2" ;;
        --wheel) wheel="$2" ;;
        --package-dir) package_dir="$2" ;;
        --target) target="$2" ;;
        --cuda-libs) cuda_libs="$2" ;;
        --cuda-wheels) cuda_wheels="$2" ;;
        --python) python="$2" ;;
      esac
      shift 2 ;;
    *) echo "install-cuda-provider: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ -z "$cuda_wheels" || -n "$cuda_libs" ]] || { echo "install-cuda-provider: --cuda-wheels needs --cuda-libs" >&2; exit 2; }

# The provider libraries on PyPI are Linux x86_64 builds; other platforms get nothing usable.
[[ "$(uname -s)/$(uname -m)" == "Linux/x86_64" ]] || fail "the CUDA provider from PyPI is for Linux x86_64; this is $(uname -s)/$(uname -m)"
[[ -f "$package_dir/package.json" ]] || fail "no onnxruntime-node at $package_dir (run npm ci first, or pass --package-dir)"
node_version="$("$python" "$HELPER" node-version "$package_dir/package.json")"
if [[ -n "$version" && "$version" != "$node_version" ]]; then
  fail "refusing onnxruntime-gpu $version: onnxruntime-node is $node_version, and the provider libraries must come from the same ONNX Runtime release"
fi
target="${target:-$package_dir/bin/napi-v6/linux/x64}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Whatever Python runs pip, ask for the wheels of a fixed one: only their .so files are used,
# and those are the same in every cp3xx build.
PLATFORM=(--only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 --python-version 3.12 --implementation cp)
if [[ -z "$wheel" ]]; then
  echo "downloading onnxruntime-gpu==$node_version from PyPI (about 250 MB)"
  "$python" -m pip download --quiet --no-deps "${PLATFORM[@]}" -d "$WORK/provider" "onnxruntime-gpu==$node_version" \
    || fail "pip could not download onnxruntime-gpu==$node_version (is that version on PyPI? pip index versions onnxruntime-gpu)"
  wheel="$(ls "$WORK"/provider/*.whl)"
fi
[[ -f "$wheel" ]] || fail "no wheel at $wheel"
"$python" "$HELPER" provider --wheel "$wheel" --version "$node_version" --target "$target"

if [[ -n "$cuda_libs" ]]; then
  mapfile -t requirements < <("$python" "$HELPER" cuda-requirements --wheel "$wheel")
  echo "CUDA libraries: ${requirements[*]}"
  if [[ -z "$cuda_wheels" ]]; then
    cuda_wheels="$WORK/cuda"
    "$python" -m pip download --quiet "${PLATFORM[@]}" -d "$cuda_wheels" "${requirements[@]}" \
      || fail "pip could not download ${requirements[*]}"
  fi
  "$python" "$HELPER" cuda-libs --wheels "$cuda_wheels" --wheel "$wheel" --target "$cuda_libs"
  echo "run with: export LD_LIBRARY_PATH=$cuda_libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
fi
echo "the cuda execution provider of onnxruntime-node $node_version is installed in $target"
