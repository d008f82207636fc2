#!/usr/bin/env bash
# The whole test suite, with the real tools it needs (Docker engine, registry, Trivy, Chromium, moto):
# installs what is missing, starts the test bed, runs pytest, and stops what it started.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k lint`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
started_testbed=0
if ! bash scripts/testbed.sh status >/dev/null 2>&1; then
  started_testbed=1
fi
bash scripts/testbed.sh up
if [ "$started_testbed" = 1 ]; then
  trap 'bash scripts/testbed.sh down || true' EXIT
fi

export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -m pytest -p no:cacheprovider --junitxml=reports/tests-junit.xml "$@"
