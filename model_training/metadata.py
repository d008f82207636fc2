"""``metadata.json``: what the model is, how it was made and how good it is.

The pipeline reads ``model_version``, ``cv_accuracy_mean``, ``cv_accuracy_std``, ``holdout_accuracy``,
``holdout_macro_f1`` and ``evaluation_predictions`` (the class of each dataset row) at the top level; the
service serves the whole document at ``/api/v1/model``.
"""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path

from model_training import params
from model_training.data import Dataset
from model_training.export import LABEL_OUTPUT, PROBABILITIES_OUTPUT
from model_training.gates import ParityReport
from model_training.params import INPUT_NAME
from model_training.train import Evaluation


def git_commit(cwd: Path | None = None) -> str | None:
    """The checked-out commit, or None outside a git work tree or without git (e.g. in a container)."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else None


def _version(distribution: str) -> str | None:
    try:
        return importlib_metadata.version(distribution)
    except importlib_metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Versions that decide how the model behaves, so a drift between training and serving is visible."""
    names = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")
    return {"python": platform.python_version(), **{name: _version(name) for name in names}}


def build_metadata(
    *,
    version: str,
    dataset: Dataset,
    evaluation: Evaluation,
    parity: ParityReport,
    min_cv_accuracy: float,
    training_rows: int,
) -> dict[str, object]:
    """The full document; top-level metric keys are a contract with the pipeline's ``train`` stage."""
    return {
        "model_version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "algorithm": "RandomForestClassifier",
        "versions": library_versions(),
        "features": [
            {"name": name, "label": label, "unit": params.FEATURE_UNIT} for name, label in params.FEATURES
        ],
        "feature_names": [name for name, _ in params.FEATURES],
        "classes": list(dataset.class_names),
        "hyperparameters": dict(params.HYPERPARAMETERS),
        "training_data": {
            "source": "sklearn.datasets.load_iris",
            "sha256": dataset.sha256,
            "rows": int(dataset.features.shape[0]),
            "training_rows": training_rows,
            "holdout_fraction": params.HOLDOUT_FRACTION,
            "random_state": params.RANDOM_STATE,
        },
        **evaluation.as_dict(),
        "cv_folds": params.CV_FOLDS,
        "min_cv_accuracy": min_cv_accuracy,
        "parity": parity.as_dict(),
        "onnx": {
            "file": params.MODEL_FILE_ONNX,
            "opset": params.ONNX_TARGET_OPSET,
            "input": INPUT_NAME,
            "outputs": [LABEL_OUTPUT, PROBABILITIES_OUTPUT],
        },
    }
