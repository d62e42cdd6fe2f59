#!/usr/bin/env bash
# The training suite, as `npm test` runs it: makes the virtualenv if needed (CPU-only torch from
# PyPI, see setup.sh), then the featurization vectors, export/parity and tiny-training tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash setup.sh
.venv/bin/python -m pytest -q tests
