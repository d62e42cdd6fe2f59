#!/usr/bin/env bash
# Creates training/.venv with everything training/ needs (CPU only). Idempotent: a second run with
# unchanged requirements only checks the imports. Usage: bash training/setup.sh [--force]
#
# Why two requirement files: PyPI's Linux torch wheel is a CUDA build whose own requirements pull
# ~4.5 GB of CUDA wheels (incl. triton). We install torch with --no-deps plus only the CUDA runtime
# libraries libtorch needs to *load* (requirements-torch.txt); training and export run on CPU.
# If that ever fails to import (e.g. a new torch links another lib), we fall back to a plain
# `pip install torch==<pinned>` with all its dependencies.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
py="${PYTHON:-python3}"
stamp="$venv/.taste-setup-stamp"
want="$(cat "$here/requirements.txt" "$here/requirements-torch.txt" | sha256sum | cut -d' ' -f1)"

check() {
  "$venv/bin/python" - <<'PY'
import torch, onnx, onnxruntime, numpy, pytest, grpc, grpc_reflection, grpc_tools
torch.zeros(2, 2) @ torch.zeros(2, 2)
print(f"torch {torch.__version__} onnx {onnx.__version__} onnxruntime {onnxruntime.__version__} numpy {numpy.__version__}")
PY
}

if [[ "${1:-}" != "--force" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && check >/dev/null 2>&1; then
  echo "training/.venv is up to date: $(check)"
  exit 0
fi

start=$(date +%s)
if [[ ! -x "$venv/bin/python" ]]; then
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip
"${pip[@]}" install -q -r "$here/requirements.txt"
"${pip[@]}" install -q --no-deps -r "$here/requirements-torch.txt"
if ! check >/dev/null 2>&1; then
  echo "setup.sh: trimmed torch install does not import; installing torch with all its dependencies" >&2
  torch_pin="$(grep -E '^torch==' "$here/requirements-torch.txt")"
  "${pip[@]}" install -q "$torch_pin"
fi
check
echo "$want" >"$stamp"
echo "training/.venv ready in $(( $(date +%s) - start ))s ($(du -sh "$venv" | cut -f1))"
