#!/usr/bin/env bash
# The fault-injection suite (docs/reliability.md). `npm test` runs its short form; this runs the
# long form by default (100k-event streams, 20 kill -9 cycles, 30 s outages, a 5-minute rebalance
# storm: about an hour on 2 cores). Pass --short for the CI form; other arguments go to ava.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
long=1
args=()
for arg in "$@"; do
  if [ "$arg" = "--short" ]; then long=0; else args+=("$arg"); fi
done
bash scripts/ensure-deps.sh
bash deploy/local/services.sh start
eval "$(bash deploy/local/services.sh env)"
TASTE_RELIABILITY_LONG=$long npx ava --config ava.reliability.config.mjs "${args[@]}" 2>&1 | tee .taste/reliability.log
grep '^\[reliability\]' .taste/reliability.log || true
