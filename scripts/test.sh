#!/usr/bin/env bash
# The whole test suite, with the real tools it needs (Docker engine, registry, Trivy, Chromium, Go, Groovy,
# moto): installs what is missing (`testbed.sh install --for tests`), starts the test bed, runs pytest in
# parallel processes (pytest-xdist). It never touches what `scripts/run-local.sh` deployed: see
# tests/conftest.py (hermetic_environ). Extra arguments go to pytest (e.g. `bash scripts/test.sh -k lint`,
# or `-n 0` for one process).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/testbed.sh install --for tests
bash scripts/testbed.sh up
eval "$(bash scripts/testbed.sh env)"

export PATH="$PWD/.venv/bin:$PATH"
# Four processes on two cores: most integration tests wait on the engine, a server or a registry, not
# on the CPU. loadgroup: tests are handed out one by one, except those of one xdist_group (a module whose
# fixture runs the whole pipeline once for all its tests), which stay on one process.
.venv/bin/python -m pytest -p no:cacheprovider -n "${TEST_WORKERS:-4}" --dist loadgroup \
    --junitxml=reports/tests-junit.xml "$@"
