#!/usr/bin/env bash
# The Python virtualenv .venv with requirements/dev.txt (idempotent; needs no root). This is all the
# pipeline itself needs, e.g. on a Jenkins agent; the test bed's Debian packages are installed by
# scripts/run-local.sh and scripts/test.sh (`bash scripts/testbed.sh install`, as root).
#
# uv installs the locked requirements: a fresh .venv with empty caches in 46 s against pip's 125 s (medians
# of 2 paired rounds, 2 cores, 2026-12-04: benchmarks/bench_bootstrap.py). uv itself comes from PyPI through
# pip, pinned here.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
UV_VERSION=0.13.9
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "bootstrap: Python 3.11 is required, $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 3
fi

stamp=.venv/.requirements.sha256
want=$( (cat requirements/dev.txt requirements/training.txt requirements/runtime.txt; echo "uv $UV_VERSION") |
  sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating .venv and installing requirements/dev.txt (with uv $UV_VERSION)"
  rm -f "$stamp"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  # --native-tls: the system's CA bundle, as pip uses (a TLS-inspecting proxy's CA is only there).
  .venv/bin/uv pip install --quiet --python .venv/bin/python --native-tls --compile-bytecode \
    -r requirements/dev.txt
  echo "$want" > "$stamp"
else
  echo "bootstrap: .venv is up to date"
fi
