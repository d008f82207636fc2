#!/usr/bin/env bash
# The whole test suite, with the real tools it needs (Docker engine, registry, Trivy, Chromium, moto):
# installs what is missing, starts the test bed, runs pytest. Under CI it stops the test bed at the end.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k lint`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/testbed.sh install
if [ -n "${CI:-}" ]; then
  trap 'bash scripts/testbed.sh down || true' EXIT
fi
bash scripts/testbed.sh up
eval "$(bash scripts/testbed.sh env)"

export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pytest -p no:cacheprovider --junitxml=reports/tests-junit.xml "$@"
