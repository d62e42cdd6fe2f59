#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, starts the real Kafka and
# Redis with the project's services script, and runs every test suite against them.
# Extra arguments go to ava (e.g. `npm test -- --match '*redelivered*'`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-deps.sh
# The Go-built tools (minutes when cold: promtool for test/deploy/{alerts,dashboard}, grpcurl for
# test/serving/reflection) build in the background while the lint, services and deploy checks run.
mkdir -p .taste
tools_log=.taste/test-tools.log
(
  bash scripts/ensure-promtool.sh >/dev/null || exit 1
  bash scripts/ensure-grpcurl.sh >/dev/null || echo "[test] grpcurl could not be built: its reflection tests skip" >&2
) 2>"$tools_log" &
tools_pid=$!
# The training venv (minutes when cold): the Python tests at the end use it, and so does the ava
# test of the gRPC contract from a Python grpcio client (test/serving/ranking.test.ts).
python_pid=""
if [ -z "${TASTE_SKIP_PYTHON_TESTS:-}" ]; then
  bash training/setup.sh >.taste/test-python-setup.log 2>&1 &
  python_pid=$!
fi

if [ $# -eq 0 ]; then
  # Seconds, so they run first: import cycles, and no folder importing a higher one (the order is
  # written down once, in scripts/check-layers.mjs).
  echo "[test] lint: cycles and layers"
  npm run --silent lint:cycles
  npm run --silent lint:layers
fi

services_were_up=true
bash deploy/local/services.sh status >/dev/null 2>&1 || services_were_up=false
bash deploy/local/services.sh start
eval "$(bash deploy/local/services.sh env)"
stop_services() {
  # Leave services alone that were running before we came.
  if [ "$services_were_up" = false ] && [ -z "${TASTE_KEEP_SERVICES:-}" ]; then
    bash deploy/local/services.sh stop || true
  fi
}
trap stop_services EXIT

[ $# -gt 0 ] || bash scripts/test-deploy.sh # manifests + Dockerfile checks (warms their tools), store tests on a Redis Cluster
wait "$tools_pid" || { cat "$tools_log" >&2; echo "[test] promtool could not be installed (see above)" >&2; exit 1; }
grep -h '^\[test\]\|installed in\|ready in' "$tools_log" || true
if [ -n "$python_pid" ]; then
  wait "$python_pid" || { cat .taste/test-python-setup.log >&2; echo "[test] training/setup.sh failed (see above)" >&2; exit 1; }
fi
echo "[test] ava"
npx ava "$@"

if [ $# -eq 0 ] && [ -z "${TASTE_SKIP_RELIABILITY_TESTS:-}" ]; then
  echo "[test] reliability (short form; scripts/reliability.sh runs the long one)"
  npx ava --config ava.reliability.config.mjs
fi

if [ -f training/run-tests.sh ] && [ -z "${TASTE_SKIP_PYTHON_TESTS:-}" ]; then
  echo "[test] python (training)"
  bash training/run-tests.sh
  echo "[test] python (bench figures)"
  training/.venv/bin/python -m pytest -q bench/tests
fi

if [ $# -eq 0 ] && [ -z "${TASTE_SKIP_PYTHON_TESTS:-}" ]; then
  # Served embeddings must rank the held-out items exactly as training measured (docs/evaluation.md);
  # 200 users of the default model's own test split keep it short.
  echo "[test] through-the-pipeline evaluation (models/default, 200 test users)"
  bash scripts/pipeline-eval.sh --dataset sim --users 200
fi
