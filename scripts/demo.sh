#!/usr/bin/env bash
# The demo command (README): installs what is missing, builds, starts the real Kafka and Redis
# with the project's services script, then runs `taste demo` (arguments are passed on; see
# `npm run demo -- --help`). Ctrl-C stops the demo cleanly; the services keep running for the
# next run (`bash deploy/local/services.sh stop` stops them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for arg in "$@"; do
  if [ "$arg" = "--help" ] || [ "$arg" = "-h" ]; then
    bash scripts/ensure-deps.sh >/dev/null
    exec node dist/cli/main.js demo --help
  fi
done
bash scripts/ensure-deps.sh
bash deploy/local/services.sh start
eval "$(bash deploy/local/services.sh env)"
exec node dist/cli/main.js demo "$@"
