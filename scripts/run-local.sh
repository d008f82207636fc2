#!/usr/bin/env bash
# On a fresh machine: install what the pipeline needs, start the local test bed (Docker engine, registry on
# localhost:5000, a local base image) and run the whole pipeline on the `local` profile. It installs nothing
# that only the tests use (that is `scripts/test.sh`'s job).
# Extra arguments go to `python -m pipeline run` (e.g. `bash scripts/run-local.sh --stage lint,train,test`).
#
# What waits for what: the virtualenv (pip: CPU) and the test bed (apt and debootstrap: network and disk) are
# made side by side. Each step says how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .testbed

began=$SECONDS
took() { echo "run-local: $1 in $((SECONDS - $2)) s"; }

bash scripts/bootstrap.sh >.testbed/bootstrap.log 2>&1 &
venv_pid=$!
# Ctrl-C or a failing step: never leave pip running in the background.
trap 'kill "$venv_pid" 2>/dev/null || true' EXIT

step=$SECONDS
bash scripts/testbed.sh install
bash scripts/testbed.sh up
took "test bed (apt, engine, registry, base image) ready" "$step"

if ! wait "$venv_pid"; then
    tail -n 30 .testbed/bootstrap.log >&2
    echo "run-local: creating .venv failed (the last lines of .testbed/bootstrap.log are above)" >&2
    exit 1
fi
trap - EXIT
grep '^bootstrap:' .testbed/bootstrap.log || true
took "virtualenv and test bed ready" "$began"
eval "$(bash scripts/testbed.sh env)"

# Trivy's vulnerability DB comes from a public registry. Where it cannot be fetched (as on the
# project's CI machines), say so and scan with the scanners that work offline.
if [ -z "${PIPELINE_TRIVY__SCANNERS:-}" ] && [ ! -s "${XDG_CACHE_HOME:-$HOME/.cache}/trivy/db/trivy.db" ]; then
    if ! timeout 120 .venv/bin/trivy image --download-db-only --no-progress >/dev/null 2>&1; then
        echo "run-local: Trivy's vulnerability DB cannot be downloaded from this machine:" \
            "running with trivy.scanners=secret,misconfig (no vulnerability scan)." >&2
        export PIPELINE_TRIVY__SCANNERS=secret,misconfig
    fi
fi

step=$SECONDS
status=0
.venv/bin/python -m pipeline run --profile local "$@" || status=$?
took "pipeline run (exit $status)" "$step"
took "run-local.sh" "$began"
exit "$status"
