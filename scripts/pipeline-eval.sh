#!/usr/bin/env bash
# Through-the-pipeline evaluation (issue 3, docs/evaluation.md): builds the leave-one-out test set of a
# dataset for a model (python -m taste_training.pipeline_eval), starts `taste consume` and `taste serve`
# as separate processes on fresh topics, group and key prefix, and runs `taste evaluate`, which
# replays the histories into Kafka, fetches the embeddings over gRPC and compares the ranking
# metrics with the offline ones. Exit status: that of `taste evaluate` (0 = they match).
#
#   bash scripts/pipeline-eval.sh --dataset sim|lastfm|ml-latest-small [--model DIR] [--users N]
#        [--report FILE] [--workers N] [-- <more taste evaluate options>]
#
# --dataset sim (default) regenerates the simulator data models/default was trained on (seed 1,
# 1000 users, 14 days); lastfm and ml-latest-small read ../shared/datasets and need a model trained
# on them (python -m taste_training.train --dataset ... --out DIR). Options after `--` go to
# `taste evaluate`, e.g. `-- --embedding-tolerance 1e-3 --max-rank-changes 5` for an fp16 model
# (python -m taste_training.fp16), whose kernels round differently from batch to batch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dataset=sim model=models/default users=0 report="" workers=1 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    --dataset) dataset="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    --report) report="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "pipeline-eval: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$dataset" in sim|lastfm|ml-latest-small) ;; *) echo "pipeline-eval: --dataset must be sim, lastfm or ml-latest-small" >&2; exit 2 ;; esac
[ -f "$model/model.onnx" ] || { echo "pipeline-eval: $model is not a model directory" >&2; exit 2; }
model=$(cd "$model" && pwd)

bash scripts/ensure-deps.sh
bash training/setup.sh >/dev/null
bash deploy/local/services.sh start
eval "$(bash deploy/local/services.sh env)"

run="eval-${dataset}-$(date +%s)-$$"
work="${TMPDIR:-/tmp}/taste-$run"
mkdir -p "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # The run's keys only (its own prefix); topics are left for inspection.
  redis-cli -u "$TASTE_REDIS_URL" --scan --pattern "$run:*" 2>/dev/null | xargs -r -n 500 redis-cli -u "$TASTE_REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

set_args=(--dataset "$dataset" --model "$model" --out "$work/set" --user-prefix "$run-")
[ "$users" -gt 0 ] && set_args+=(--users "$users")
if [ "$dataset" = sim ]; then
  echo "[pipeline-eval] simulating the training data of models/default (seed 1, 1000 users, 14 days)"
  node dist/cli/main.js simulate --seed 1 --users 1000 --days 14 --out "$work/events.jsonl" --catalogue-out "$work/catalogue.tsv" >/dev/null
  set_args+=(--catalogue "$work/catalogue.tsv" --events "$work/events.jsonl")
fi
echo "[pipeline-eval] building the evaluation set"
(cd training && .venv/bin/python -m taste_training.pipeline_eval "${set_args[@]}")
oldest=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).oldest_event_time_ms)' "$work/set/offline.json")

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
export TASTE_PLAYS_TOPIC="$run.plays" TASTE_SEARCHES_TOPIC="$run.searches" TASTE_DEAD_LETTER_TOPIC="$run.dead-letter" TASTE_ERASURES_TOPIC="$run.erasures"
export TASTE_GROUP_ID="$run" TASTE_KEY_PREFIX="$run" TASTE_MODEL_DIR="$model" TASTE_METRICS_PORT=0 TASTE_LOG_LEVEL=warn
echo "[pipeline-eval] starting taste consume and taste serve ($run)"
# Every play is scored for live quality, so the held-out plays of a sim set (taste evaluate --online)
# check it against offline too.
node dist/cli/main.js consume --min-event-time "$oldest" --inference-workers "$workers" --quality-sample-rate 1 &
pids+=($!)
node dist/cli/main.js serve --host 127.0.0.1 --port "$port" &
pids+=($!)

eval_args=(--set "$work/set" --grpc-address "127.0.0.1:$port" --log-level info)
# Live quality ranks among all items without masking the history, as the sim protocol does.
[ "$dataset" = sim ] && eval_args+=(--online)
[ -n "$report" ] && eval_args+=(--report "$report")
eval_args+=("${extra[@]}")
node dist/cli/main.js evaluate "${eval_args[@]}" &
evaluate=$!
# If consume or serve dies (bad model, port taken), say so now instead of waiting out --wait-timeout.
while kill -0 "$evaluate" 2>/dev/null; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "pipeline-eval: taste $([ "$pid" = "${pids[0]}" ] && echo consume || echo serve) exited early (see its output above)" >&2
      kill -TERM "$evaluate" 2>/dev/null || true
      wait "$evaluate" 2>/dev/null || true
      exit 1
    fi
  done
  sleep 1
done
status=0
wait "$evaluate" || status=$?
exit "$status"
