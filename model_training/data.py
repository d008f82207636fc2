"""The training data: scikit-learn's bundled Iris set, so training never needs the network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_iris

from model_training.answers import fingerprint
from model_training.params import FEATURES


@dataclass(frozen=True)
class Dataset:
    """Features (150x4, cm), integer targets and the class names they index."""

    features: np.ndarray
    targets: np.ndarray
    class_names: tuple[str, ...]

    @property
    def sha256(self) -> str:
        """Fingerprint of exactly what the model saw, recorded so a changed data set is noticed."""
        return fingerprint(self.features, self.targets)


def load_dataset() -> Dataset:
    """Load Iris with its columns in :data:`FEATURES` order (sklearn's order, checked, not assumed)."""
    bunch = load_iris()
    expected = [f"{label.lower()} (cm)" for _, label in FEATURES]
    if list(bunch.feature_names) != expected:
        raise RuntimeError(f"unexpected Iris columns {bunch.feature_names!r}, expected {expected!r}")
    return Dataset(
        features=np.asarray(bunch.data, dtype=np.float64),
        targets=np.asarray(bunch.target, dtype=np.int64),
        class_names=tuple(str(name) for name in bunch.target_names),
    )
