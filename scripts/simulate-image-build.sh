#!/usr/bin/env bash
# Replays the Dockerfile without a Docker engine, as far as a plain machine can: the build
# context per .dockerignore, the build stage's commands, the runtime stage's copies into a fresh
# folder, and the image's smoke check run from there (onnxruntime-node loads the default model,
# `consume --help` works). Not a substitute for `docker build` (no node:20-bookworm-slim, no
# non-root user), but it catches a missing file, a broken prune or a path the runtime can't find.
# usage: scripts/simulate-image-build.sh [WORK_DIR]   (default: a temporary folder, removed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src="$PWD"
work="${1:-$(mktemp -d)}"
[[ -n "${1:-}" ]] || trap 'rm -rf "$work"' EXIT
build="$work/build" app="$work/app"
rm -rf "$build" "$app" && mkdir -p "$build" "$app"

echo "[image] context (.dockerignore applied) → $build"
# The .dockerignore patterns in use are names at the root and `**/name`: tar's --exclude
# matches a name at any depth, close enough for a check (it never keeps more than Docker).
tar -C "$src" -cf - --exclude-from=<(grep -v '^#' .dockerignore | grep -v '^$' | sed 's|^\*\*/||') . | tar -C "$build" -xf -

echo "[image] build stage"
(
  cd "$build"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
  npm run --silent build:prod
  npm prune --omit=dev --no-audit --no-fund --loglevel=error
  arch="$(node -p process.arch)"
  find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d ! -name linux -exec rm -rf {} +
  find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -name "$arch" -exec rm -rf {} +
)

echo "[image] runtime stage → $app"
cp "$build/package.json" "$app/"
cp -a "$build/node_modules" "$build/dist" "$app/"
mkdir -p "$app/proto" && cp -a "$build/proto/taste" "$app/proto/"
cp -a "$build/models" "$app/"
(
  cd "$app"
  export NODE_ENV=production TASTE_MODEL_DIR="$app/models/default"
  node --input-type=module -e "const ort = await import('onnxruntime-node'); await ort.InferenceSession.create('models/default/model.onnx'); console.log('[image] onnxruntime-node loads the default model')"
  node dist/cli/main.js consume --help >/dev/null
  node dist/cli/main.js serve --help >/dev/null
  echo "[image] smoke check passed; sizes:"
  du -sh "$app" "$app/node_modules" "$app/dist" "$app/models"
)
