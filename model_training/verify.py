"""``python -m model_training.verify --model-dir DIR``: does ``metadata.json`` describe the ONNX file?

The pipeline's promotion gate trusts two things a model directory says of itself: its version and its answers
on the fixed evaluation set (every row of the dataset, ``evaluation_predictions``). Both are checked here
against the ONNX file, the one thing the service runs:

- the dataset fingerprint it recorded must be the Iris rows installed here (:mod:`model_training.answers`);
- ``model_version`` must be the first 12 hex digits of the file's SHA-256 (how :func:`export.model_version`
  names it);
- ONNX Runtime's label for each dataset row must be the recorded one, except on a genuine tie (the two best
  classes within the parity tolerance), where float32 and float64 may pick differently.

Exit codes: 0 the metadata describes the file, 1 it does not (the reason on stderr), 2 bad arguments or a
directory that cannot be read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from model_training.answers import evaluation_set, ties
from model_training.params import INPUT_NAME, METADATA_FILE, MODEL_FILE_ONNX

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_UNREADABLE = 2


class Mismatch(Exception):
    """The metadata does not describe the ONNX file; the message says how."""


def verify(model_dir: Path) -> str:
    """One line saying what was checked; :class:`Mismatch` when the metadata does not describe the file.

    ``OSError``/``ValueError`` when the directory cannot be read (a missing file, JSON that is not JSON)."""
    onnx_bytes = (model_dir / MODEL_FILE_ONNX).read_bytes()
    metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    if not isinstance(metadata, dict):
        raise ValueError(f"{METADATA_FILE} is not a JSON object")
    version = hashlib.sha256(onnx_bytes).hexdigest()[:12]
    if metadata.get("model_version") != version:
        raise Mismatch(
            f"{METADATA_FILE} names model {metadata.get('model_version')!r}, "
            f"but {MODEL_FILE_ONNX} is model {version}"
        )
    features, data_sha256 = evaluation_set()
    training_data = metadata.get("training_data")
    trained_on = training_data.get("sha256") if isinstance(training_data, dict) else None
    if trained_on != data_sha256:
        raise Mismatch(
            f"{METADATA_FILE} says the model was trained on data {trained_on!r}, "
            f"not on the Iris rows installed here ({data_sha256[:12]})"
        )
    recorded = metadata.get("evaluation_predictions")
    if not isinstance(recorded, list) or len(recorded) != len(features):
        raise Mismatch(
            f"{METADATA_FILE} records {len(recorded) if isinstance(recorded, list) else 'no'} answers "
            f"on the evaluation set of {len(features)} rows"
        )
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {INPUT_NAME: features.astype(np.float32)})
    differs = (np.asarray(labels) != np.asarray(recorded, dtype=object)) & ~ties(np.asarray(probabilities))
    if differs.any():
        rows = np.flatnonzero(differs)
        raise Mismatch(
            f"{MODEL_FILE_ONNX} answers differently from the recorded evaluation_predictions on "
            f"{len(rows)} of {len(features)} rows (first: row {int(rows[0])})"
        )
    return f"model {version}: {MODEL_FILE_ONNX} gives the recorded answers on all {len(features)} rows"


def main(argv: Sequence[str] | None = None) -> int:
    """Check a model directory; return the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m model_training.verify",
        description="Check that a model directory's metadata.json describes its ONNX file.",
        epilog="Exit codes: 0 it does, 1 it does not, 2 bad arguments or an unreadable directory.",
    )
    parser.add_argument("--model-dir", type=Path, default=Path("model"), help="default: model")
    args = parser.parse_args(argv)
    try:
        print(verify(args.model_dir))
    except Mismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except (OSError, ValueError, RuntimeError) as exc:  # onnxruntime's load errors are RuntimeErrors
        print(f"error: cannot read the model in {args.model_dir}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
