"""Train the Iris classifier, check it, and export it to ONNX for the service (SPEC §1, §2 ``train``).

``python -m model_training [--output-dir model] [--min-cv-accuracy 0.90]`` trains a seeded random forest,
refuses to publish it when cross-validated accuracy is under the threshold (the quality gate) or when ONNX
Runtime disagrees with scikit-learn (the parity gate), and otherwise replaces the output directory in one
step with ``iris_model.joblib``, ``iris_model.onnx`` and ``metadata.json``.

Exit codes: 0 published, 1 a gate refused the model (nothing written), 2 bad arguments.
"""

from model_training.gates import GateFailed
from model_training.pipeline import TrainingResult, run_training

__all__ = ["GateFailed", "TrainingResult", "run_training"]
