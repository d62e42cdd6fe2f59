#!/usr/bin/env bash
# The GPU benchmark (bench/gpu.bench.ts) on the device machine, prepared here (README, GPU;
# ../shared/gpu/README.md for the device tool).
#
#   bash bench/gpu.sh --dry-run   here: build, then the same script small on this CPU (< 1 min;
#                                 what test/bench/gpu-bench.test.ts runs in CI)
#   bash bench/gpu.sh --pack      here: build, make the fp16 variant of models/default, pack .gpu/
#                                 with ../shared/gpu/pack.sh, and print the device command (from a
#                                 main checkout: it writes .git/info/exclude, which a git
#                                 worktree, whose .git is a file, does not have). The pack also
#                                 carries training/gpu-sweep.sh and the two datasets it trains on,
#                                 read from ../shared (they travel in .gpu/ only, never into the
#                                 repository), so one device run takes the bench and the sweep.
#                                 Prepared and checked on this CPU on 2026-12-04 (a session lent
#                                 a GPU that could not start one); not run on a GPU yet
#   bash bench/gpu.sh --device    there, from .gpu/remote.sh in /tmp/gpu: the full run into $OUT
#
# On the device the CUDA provider cannot travel (its library is 270 MB, the limit 64 MiB): --device
# uses the one in the device's own Python when that is onnxruntime-gpu of onnxruntime-node's
# version, with the CUDA libraries of its PyTorch (site-packages/nvidia/*/lib) on LD_LIBRARY_PATH.
# Otherwise the cuda rows say skipped, and why.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FP16_DIR=.taste/gpu/default-fp16
mode="${1:-}"
case "$mode" in
  --dry-run)
    npm run --silent build >/dev/null
    node dist/bench/gpu.bench.js --dry-run
    ;;
  --pack)
    npm run --silent build >/dev/null
    # The stateful step graph has no fp16 variant: taste_training.fp16's converter leaves it
    # unsorted ("Nodes in a graph must be topologically sorted").
    rm -rf "$FP16_DIR"
    (cd training && .venv/bin/python -m taste_training.fp16 --model ../models/default --out "../$FP16_DIR")
    # pack.sh takes the whole node_modules of the repository it runs in, which with DuckDB's 70 MB
    # came to 74 MiB, over the 64 MiB that travels (the working tree's 14 MiB included). So it runs
    # in a staging repository holding only what the device run loads: node_modules without the
    # packages it never imports (DuckDB and usearch: backfill and serving; the compiler and type
    # folders: the build), no models (the working tree carries them; the command links them), and
    # the two datasets of the sweep, read from ../shared (into the staging folder, never into this
    # repository).
    pack="$(cd ../shared/gpu && pwd)/pack.sh"
    stage="$(mktemp -d)"
    trap 'rm -rf "$stage"' EXIT
    git -C "$stage" init -q .
    tar cf - --exclude=node_modules/@duckdb --exclude=node_modules/usearch --exclude=node_modules/typescript \
      --exclude=node_modules/@types --exclude=node_modules/@babel --exclude=node_modules/@vue \
      --exclude=__pycache__ node_modules package.json dist bench/gpu.sh bench/gpu_torch_baseline.py \
      training/taste_training training/gpu-sweep.sh "$FP16_DIR" | tar xf - -C "$stage"
    mkdir -p "$stage/shared/datasets"
    cp -r ../shared/datasets/lastfm-s3rec ../shared/datasets/ml-latest-small "$stage/shared/datasets/"
    (cd "$stage" && bash "$pack" dist bench training "$FP16_DIR" shared)
    rm -rf .gpu && mv "$stage/.gpu" .gpu
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    du -sh .gpu
    echo "device run: carry [\".gpu\"], timeout_s 560, command (the bench, then the sweep; \$R is the"
    echo "working tree's copy there, whose models/ the bench reads):"
    echo '  R=$PWD; bash .gpu/remote.sh "ln -sfn $R/models models; (timeout 200 bash bench/gpu.sh --device) > \$OUT/bench.txt 2>&1; mkdir -p /tmp/sw; (OUT=/tmp/sw TASTE_DATASETS=/tmp/gpu/shared/datasets SWEEP_MINUTES=3.5 timeout 280 bash training/gpu-sweep.sh --device) > \$OUT/sweep.txt 2>&1; tar czf \$OUT/sweep.tgz -C /tmp/sw sweep; tail -45 \$OUT/bench.txt; tail -25 \$OUT/sweep.txt"'
    echo "(the device returns at most 8 files: the sweep's runs come back as one sweep.tgz)"
    ;;
  --device)
    : "${OUT:?--device writes into \$OUT (set by the device tool)}"
    # It copies provider libraries into node_modules: only into the device's unpacked copy.
    [[ "$PWD" == /tmp/gpu ]] || { echo "bench/gpu.sh --device runs only in /tmp/gpu on the device (remote.sh)" >&2; exit 2; }
    bin=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
    version="$(node -p "require('onnxruntime-node/package.json').version")"
    python3 - "$version" "$bin" <<'EOF' || true
import os, shutil, sys
version, target = sys.argv[1], sys.argv[2]
try:
    import onnxruntime
except ImportError:
    sys.exit("no onnxruntime in the device's Python: the cuda provider will be skipped")
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
cuda = os.path.join(capi, "libonnxruntime_providers_cuda.so")
if onnxruntime.__version__ != version or not os.path.exists(cuda):
    sys.exit(f"the device's onnxruntime is {onnxruntime.__version__} (cuda provider: {os.path.exists(cuda)}), onnxruntime-node {version}: cuda skipped")
for name in ("libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so"):
    shutil.copy(os.path.join(capi, name), target)
print(f"cuda provider from {capi}")
EOF
    # LD_LIBRARY_PATH is read when a process starts: set before node runs.
    nvidia="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia"))' 2>/dev/null || true)"
    if [[ -n "$nvidia" && -d "$nvidia" ]]; then
      LD_LIBRARY_PATH="$(find "$nvidia" -mindepth 2 -maxdepth 2 -type d -name lib | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      export LD_LIBRARY_PATH
    fi
    node dist/bench/gpu.bench.js --fp16 "$FP16_DIR" --out "$OUT" --python python3 >"$OUT/gpu.txt" 2>&1 || echo "gpu.bench exited $?" >>"$OUT/gpu.txt"
    grep -v '^\s*at ' "$OUT/gpu.txt" | tail -60
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    [[ "$mode" == -h || "$mode" == --help ]] || exit 2
    ;;
esac
