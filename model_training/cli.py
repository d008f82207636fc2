"""Command line of ``python -m model_training``: parses, runs, prints, and maps failures to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from model_training.gates import GateFailed
from model_training.params import DEFAULT_MIN_CV_ACCURACY
from model_training.pipeline import run_training

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (argparse exits with 2 on bad arguments, matching our usage exit code)."""
    parser = argparse.ArgumentParser(
        prog="python -m model_training",
        description="Train the Iris classifier, gate it, export it to ONNX and write the model directory.",
        epilog=(
            "Exit codes: 0 model written, 1 a quality or parity gate failed (nothing written), "
            "2 bad arguments."
        ),
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("model"),
        help=(
            "directory to (re)place with iris_model.onnx, iris_model.joblib and metadata.json "
            "(default: model)"
        ),
    )
    parser.add_argument(
        "--min-cv-accuracy",
        type=_fraction,
        default=DEFAULT_MIN_CV_ACCURACY,
        help=f"quality gate: minimum mean cross-validated accuracy (default: {DEFAULT_MIN_CV_ACCURACY})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run training; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        result = run_training(args.output_dir, args.min_cv_accuracy)
    except GateFailed as exc:
        print(f"error: {exc}; the model in {args.output_dir} was left unchanged", file=sys.stderr)
        return EXIT_GATE_FAILED
    except OSError as exc:
        print(f"error: could not write {args.output_dir}: {exc}", file=sys.stderr)
        return EXIT_GATE_FAILED
    print(f"wrote {result.output_dir}: {result.summary()}")
    return EXIT_OK
