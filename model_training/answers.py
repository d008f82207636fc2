"""The model's answers on the fixed evaluation set, read with numpy alone (no scikit-learn import).

The evaluation set is every row of the Iris data, in its order. scikit-learn ships it as
``sklearn/datasets/data/iris.csv`` (what ``sklearn.datasets.load_iris`` reads: a header line
``150,4,setosa,versicolor,virginica``, then four measurements and the class index per row). Reading that file
directly, found without importing scikit-learn, saves ``python -m model_training.verify`` about two seconds of
imports; the rows are checked against the dataset fingerprint the model's metadata recorded at training, so a
different file is noticed, never used.
"""

from __future__ import annotations

import hashlib
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from model_training.params import PARITY_PROBABILITY_TOLERANCE


def ties(probabilities: np.ndarray) -> np.ndarray:
    """Rows whose two best classes are within the tolerance: a genuine tie that float32 and float64
    arithmetic may break differently, where either label is a correct answer."""
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    return (top_two[:, 1] - top_two[:, 0]) <= PARITY_PROBABILITY_TOLERANCE


def fingerprint(features: np.ndarray, targets: np.ndarray) -> str:
    """SHA-256 of exactly what the model saw (features as float64, targets as int64, little-endian)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(features, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(targets, dtype="<i8").tobytes())
    return digest.hexdigest()


def evaluation_set() -> tuple[np.ndarray, str]:
    """(the features of every Iris row as float64, their fingerprint). ``OSError`` when it cannot be read."""
    spec = find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("scikit-learn is not installed: its Iris data is the evaluation set")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "iris.csv"
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    features, targets = rows[:, :-1], rows[:, -1].astype(np.int64)
    return features, fingerprint(features, targets)
