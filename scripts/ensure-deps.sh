#!/usr/bin/env bash
# Installs the Node dependencies (when package-lock.json changed or nothing is installed) and builds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci"
  # onnxruntime-node's install script fetches CUDA binaries from NuGet; the CPU and WebGPU
  # providers ship in the package, so skip it (see README, GPU).
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
fi
echo "[setup] build"
npm run --silent build
