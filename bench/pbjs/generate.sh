#!/usr/bin/env bash
# Regenerates bench/pbjs/embedding_service.cjs: protobufjs-cli's static code for the serving
# responses, one of the encoders bench/response-encoding.bench.ts measures. Committed rather than
# generated at build time: only that benchmark uses it, and protobufjs-cli (jsdoc, espree, ...)
# would otherwise be a devDependency of every install. CommonJS, since the es6 wrapper's
# `import * as $protobuf from "protobufjs/minimal"` finds no named exports when Node loads
# protobufjs (a CommonJS package) from an ES module, and `-w commonjs --es6` emits `export`.
# The encode functions are the same code either way (only var instead of let).
# The bench checks its bytes against the other encoders before timing, so a stale copy fails there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
npx --yes -p protobufjs-cli@1.3.3 -p protobufjs@7.6.6 pbjs -t static-module -w commonjs \
  --force-number --no-service --no-verify --no-convert --no-decode --no-delimited --no-typeurl --no-comments \
  -p proto -o bench/pbjs/embedding_service.cjs proto/taste/v1/embedding_service.proto
