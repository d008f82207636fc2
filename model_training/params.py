"""Every knob of training in one place, so a change of model is a one-line diff reviewers can see.

Nothing here depends on the clock or the machine: together with the bundled data set these values fully
determine the trained forest, its ONNX bytes and therefore the model version.
"""

from __future__ import annotations

RANDOM_STATE = 42
"""One seed for the split, the folds, the forest and the parity sample."""

HOLDOUT_FRACTION = 0.2
"""Share of rows kept out of training, stratified by class, to score the exported model."""

CV_FOLDS = 5
"""Stratified folds over the training rows for the quality gate's accuracy estimate."""

DEFAULT_MIN_CV_ACCURACY = 0.90

HYPERPARAMETERS: dict[str, object] = {
    "n_estimators": 100,
    "max_depth": 3,
    "min_samples_leaf": 1,
    "max_features": "sqrt",
    "criterion": "gini",
    "bootstrap": True,
    "random_state": RANDOM_STATE,
    "n_jobs": 1,
}
"""RandomForestClassifier arguments. Shallow trees: Iris needs no more, and a small forest keeps the
service's ONNX evaluation in the tens of microseconds per request."""

FEATURES: tuple[tuple[str, str], ...] = (
    ("sepal_length", "Sepal length"),
    ("sepal_width", "Sepal width"),
    ("petal_length", "Petal length"),
    ("petal_width", "Petal width"),
)
"""(name, human label) in model input column order; the service uses the same names (docs/api.md)."""

FEATURE_UNIT = "cm"

INPUT_NAME = "X"
"""The ONNX graph's one input: a float32 batch of rows of FEATURES."""

PARITY_RANDOM_POINTS = 10_000
PARITY_PROBABILITY_TOLERANCE = 1e-5
PARITY_INPUT_MAX = 100.0
"""Largest value the service accepts (cm); the parity sample covers the whole accepted input domain."""

ONNX_TARGET_OPSET = 17
"""Pinned so a newer converter cannot silently change the exported graph (and the model version)."""

MODEL_FILE_ONNX = "iris_model.onnx"
MODEL_FILE_JOBLIB = "iris_model.joblib"
METADATA_FILE = "metadata.json"
