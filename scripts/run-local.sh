#!/usr/bin/env bash
# On a fresh machine: install what the pipeline needs, start the local test bed (Docker engine, registry on
# localhost:5000, a local base image) and run the whole pipeline on the `local` profile. It installs nothing
# that only the tests use (that is `scripts/test.sh`'s job).
# Extra arguments go to `python -m pipeline run` (e.g. `bash scripts/run-local.sh --stage lint,train,test`).
#
# What waits for what, so that a fresh machine is ready as soon as it can be (each step says how long it took):
# - the virtualenv (uv: CPU) is made while apt installs the engine (network and disk);
# - the base image (debootstrap: about 100 s of network and disk) is made while the stages that need no
#   image (lint, train, promotion, test, trivy-fs) run; then the whole pipeline runs, and those five come from its
#   cache. With extra arguments there is one run, after the base image.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .testbed

began=$SECONDS
took() { echo "run-local: $1 in $((SECONDS - $2)) s"; }
venv_pid=
image_pid=
# Ctrl-C or a failing step: never leave uv or debootstrap running in the background. The base image is
# made in its own process group (setsid), so one signal reaches debootstrap and the rootfs is cleaned up.
stop_background() {
    [[ -z $venv_pid ]] || kill "$venv_pid" 2>/dev/null || true
    [[ -z $image_pid ]] || kill -TERM -- "-$image_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_background EXIT

bash scripts/bootstrap.sh >.testbed/bootstrap.log 2>&1 &
venv_pid=$!

step=$SECONDS
bash scripts/testbed.sh install
bash scripts/testbed.sh up --without-base-image
setsid bash scripts/testbed.sh base-image >.testbed/base-image.log 2>&1 &
image_pid=$!
took "engine and registry up" "$step"

if ! wait "$venv_pid"; then
    venv_pid=
    tail -n 30 .testbed/bootstrap.log >&2
    echo "run-local: creating .venv failed (the last lines of .testbed/bootstrap.log are above)" >&2
    exit 1
fi
venv_pid=
grep '^bootstrap:' .testbed/bootstrap.log || true
took "virtualenv ready" "$began"

# Trivy's vulnerability DB comes from a public registry. Where it cannot be fetched (as on the
# project's CI machines), say so and scan with the scanners that work offline.
if [ -z "${PIPELINE_TRIVY__SCANNERS:-}" ] && [ ! -s "${XDG_CACHE_HOME:-$HOME/.cache}/trivy/db/trivy.db" ]; then
    if ! timeout 120 .venv/bin/trivy image --download-db-only --no-progress >/dev/null 2>&1; then
        echo "run-local: Trivy's vulnerability DB cannot be downloaded from this machine:" \
            "running with trivy.scanners=secret,misconfig (no vulnerability scan)." >&2
        export PIPELINE_TRIVY__SCANNERS=secret,misconfig
    fi
fi
# The engine's socket, and the local base image's name where python:3.11-slim cannot be had (both runs
# get the same settings: what the first run leaves in the cache is what the second one looks for).
eval "$(bash scripts/testbed.sh env)"

if (($# == 0)); then
    step=$SECONDS
    echo "run-local: running the stages that need no image while the base image is made (log: .testbed/base-image.log)"
    status=0
    .venv/bin/python -m pipeline run --profile local --stage lint,train,promotion,test,trivy-fs || status=$?
    took "lint, train, promotion, test, trivy-fs (exit $status)" "$step"
    ((status == 0)) || exit "$status"
fi

step=$SECONDS
if ! wait "$image_pid"; then
    image_pid=
    tail -n 20 .testbed/base-image.log >&2
    echo "run-local: making the base image failed (the last lines of .testbed/base-image.log are above)" >&2
    exit 1
fi
image_pid=
grep '^testbed:' .testbed/base-image.log || true
took "base image ready (waited)" "$step"

step=$SECONDS
status=0
.venv/bin/python -m pipeline run --profile local "$@" || status=$?
took "pipeline run (exit $status)" "$step"
took "run-local.sh" "$began"
exit "$status"
