#!/usr/bin/env bash
# On a fresh machine: install everything, start the local test bed (Docker engine, registry on
# localhost:5000, a local base image) and run the whole pipeline on the `local` profile.
# Extra arguments go to `python -m pipeline run` (e.g. `bash scripts/run-local.sh --stage lint,train,test`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/testbed.sh up
eval "$(bash scripts/testbed.sh env)"
exec .venv/bin/python -m pipeline run --profile local "$@"
