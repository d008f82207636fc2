"""Publish the model directory in one step, so readers see the old model or the new one, never a mix.

Files are written into a temporary directory beside the target (same filesystem), then the target is swapped
for it with renames. If anything fails before the swap the temporary directory is removed and the previous
model stays exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def publish(output_dir: Path, files: Mapping[str, bytes]) -> None:
    """Replace ``output_dir`` with a directory holding exactly ``files`` (name -> content)."""
    output_dir = output_dir.resolve()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.new-", dir=output_dir.parent))
    retired: Path | None = None
    try:
        for name, data in files.items():
            _write_bytes(staging / name, data)
        staging.chmod(0o755)
        if output_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
            os.replace(output_dir, retired / output_dir.name)
        try:
            os.replace(staging, output_dir)
        except OSError:
            if retired is not None:  # put the previous model back before giving up
                os.replace(retired / output_dir.name, output_dir)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def json_bytes(document: Mapping[str, object]) -> bytes:
    """Stable, human-readable JSON (sorted keys) with a trailing newline."""
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
