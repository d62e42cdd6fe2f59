#!/usr/bin/env bash
# The deployment checks of `npm test` (one line in scripts/test.sh): the manifests and the
# Dockerfile (scripts/validate-manifests.sh), then the feature-store and erasure tests a second time, against
# a local Redis Cluster (3 masters), as production runs on one. Needs dist/ built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "[test] deployment manifests and Dockerfile"
bash scripts/validate-manifests.sh

echo "[test] feature store on a Redis Cluster"
cluster_was_up=true
bash deploy/local/services.sh cluster status >/dev/null 2>&1 || cluster_was_up=false
bash deploy/local/services.sh cluster start
stop_cluster() {
  # Like the other services: leave a cluster alone that was running before we came.
  if [ "$cluster_was_up" = false ] && [ -z "${TASTE_KEEP_SERVICES:-}" ]; then
    bash deploy/local/services.sh cluster stop || true
  fi
}
trap stop_cluster EXIT
eval "$(bash deploy/local/services.sh cluster env)"
TASTE_TEST_REDIS_CLUSTER_URL="$TASTE_TEST_REDIS_CLUSTER_URL" npx ava dist/test/featurestore/feature-store.test.js dist/test/featurestore/erasure.test.js dist/test/featurestore/multi-hash-read.test.js
