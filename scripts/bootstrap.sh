#!/usr/bin/env bash
# The Python virtualenv .venv with requirements/dev.txt (idempotent; needs no root). This is all the
# pipeline itself needs, e.g. on a Jenkins agent; the test bed's Debian packages are installed by
# scripts/test.sh and scripts/run-local.sh (`bash scripts/testbed.sh install`, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "bootstrap: Python 3.11 is required, $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 3
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements/dev.txt requirements/training.txt requirements/runtime.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating .venv and installing requirements/dev.txt"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
  echo "$want" > "$stamp"
else
  echo "bootstrap: .venv is up to date"
fi
