#!/usr/bin/env bash
# Benchmarks, each figure beside its ceiling measured in the same run (see bench/RESULTS.md).
#
#   bash bench/run.sh                 the short set (a few minutes): model history-cost ingest kinds-ingest shadow quality freshness serving serving-floor response-encoding redis-write erasure scale
#   bash bench/run.sh --long          the full set: longer runs, more users, + profile (+ backfill, backfill-shards when built)
#   bash bench/run.sh ingest serving  just these (names: model history-cost ingest kinds-ingest shadow quality freshness serving serving-floor response-encoding redis-write erasure scale profile backfill backfill-shards backfill-grouped)
#   bash bench/run.sh --repeats 5     key figures measured 5 times (default 3)
#
# Starts the local Kafka and Redis (deploy/local/services.sh), builds, and writes every benchmark's
# log and JSON plus machine.txt and summary.md to $TASTE_BENCH_OUT (default .taste/bench/<time>).
# One benchmark with its own options, after a build: node dist/bench/ingest.bench.js --events 50000
#   --users 100000 --intra-op-threads 1 (each file's benchArgs call lists its options).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=short
repeats=""
names=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --long) mode=long ;;
    --repeats) repeats="$2"; shift ;;
    --help|-h) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1") ;;
  esac
  shift
done
if [[ ${#names[@]} -eq 0 ]]; then
  names=(model history-cost ingest kinds-ingest shadow quality freshness serving serving-floor response-encoding redis-write erasure scale)
  if [[ $mode == long ]]; then
    names+=(profile)
    [[ -f bench/backfill.bench.ts ]] && names+=(backfill)
    [[ -f bench/backfill-shards.bench.ts ]] && names+=(backfill-shards)
    [[ -f bench/backfill-grouped.bench.ts ]] && names+=(backfill-grouped)
  fi
fi

bash deploy/local/services.sh start >/dev/null
eval "$(bash deploy/local/services.sh env)"
if [[ "${TASTE_BENCH_SKIP_BUILD:-}" != 1 ]]; then
  npm run --silent build >/dev/null
fi

out="${TASTE_BENCH_OUT:-.taste/bench/$(date -u +%Y%m%dT%H%M%SZ)-$mode}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
export TASTE_BENCH_OUT="$out"

# The scale benchmark's L = 200 figures need a model with max_seq_len 200 (written outside the repo).
long_model="${TASTE_BENCH_MODEL_LONG:-/tmp/taste-bench-models/seq200}"
export TASTE_BENCH_MODEL_LONG="$long_model"
if [[ " ${names[*]} " == *" scale "* && ! -f "$long_model/model.onnx" ]]; then
  if [[ -x training/.venv/bin/python ]]; then
    echo "[bench] exporting an untrained max_seq_len 200 model to $long_model"
    (cd training && .venv/bin/python -m taste_training.export --items ../models/default/items.tsv --out "$long_model" \
      --untrained --seed 7 --max-seq-len 200 --version bench-seq200-untrained) >"$out/export-seq200.log" 2>&1 ||
      echo "[bench] export failed (see $out/export-seq200.log): scale skips its L = 200 model figures"
  else
    echo "[bench] no training venv (bash training/setup.sh makes it): scale skips its L = 200 model figures"
  fi
fi
# The model benchmark compares models/default with its fp16 variant (python -m taste_training.fp16).
fp16_model="${TASTE_BENCH_MODEL_FP16:-/tmp/taste-bench-models/default-fp16}"
model_args=()
if [[ " ${names[*]} " == *" model "* ]]; then
  if [[ ! -f "$fp16_model/model.onnx" || "$fp16_model/model.onnx" -ot models/default/model.onnx ]] && [[ -x training/.venv/bin/python ]]; then
    echo "[bench] converting models/default to fp16 in $fp16_model"
    (cd training && .venv/bin/python -m taste_training.fp16 --model ../models/default --out "$fp16_model") >"$out/export-fp16.log" 2>&1 ||
      echo "[bench] fp16 conversion failed (see $out/export-fp16.log): model skips its fp16 figures"
  fi
  [[ -f "$fp16_model/model.onnx" ]] && model_args+=(--fp16-model "$fp16_model")
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | wc -l) changed files"
  echo "node: $(node -v)"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo; lscpu
  echo; free -g
  echo; echo "busiest processes at start:"; ps -eo pcpu,rss,comm --sort=-pcpu | head -6
} >"$out/machine.txt" 2>&1

args=()
[[ $mode == long ]] && args+=(--long)
[[ -n "$repeats" ]] && args+=(--repeats "$repeats")
failed=()
start=$SECONDS
for name in "${names[@]}"; do
  file="dist/bench/$name.bench.js"
  if [[ ! -f "$file" ]]; then
    echo "[bench] no $file (bench/$name.bench.ts missing?)" >&2
    failed+=("$name"); continue
  fi
  echo "[bench] === $name ($((SECONDS - start)) s in) ==="
  extra=()
  [[ $name == model ]] && extra=("${model_args[@]}")
  if ! node "$file" "${args[@]}" "${extra[@]}" 2>&1 | tee "$out/$name.log"; then
    failed+=("$name")
  fi
done
echo "[bench] done in $((SECONDS - start)) s; output in $out"
node dist/bench/summary.js "$out"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "[bench] FAILED: ${failed[*]}" >&2
  exit 1
fi
