"""Train the Iris classifier, check it, and export it to ONNX for the service (README, "Stages": ``train``).

``python -m model_training [--output-dir model] [--min-cv-accuracy 0.90]`` trains a seeded random forest,
refuses to publish it when cross-validated accuracy is under the threshold (the quality gate) or when ONNX
Runtime disagrees with scikit-learn (the parity gate), and otherwise replaces the output directory in one
step with ``iris_model.joblib``, ``iris_model.onnx`` and ``metadata.json``.
``python -m model_training.verify`` checks that a model directory's metadata describes its ONNX file.

Exit codes: 0 published, 1 a gate refused the model (nothing written), 2 bad arguments.

The names below are imported when first used, so ``model_training.verify`` does not pay for scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model_training.gates import GateFailed
    from model_training.pipeline import TrainingResult, run_training

__all__ = ["GateFailed", "TrainingResult", "run_training"]
_HOMES = {"GateFailed": "model_training.gates", "TrainingResult": "model_training.pipeline"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'model_training' has no attribute {name!r}")
    return getattr(import_module(_HOMES.get(name, "model_training.pipeline")), name)
