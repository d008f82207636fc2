"""The two gates a model passes before it is written: quality (CV accuracy) and ONNX parity.

Both raise :class:`GateFailed`; the CLI maps it to exit code 1. They run before anything touches the output
directory, so a refused model never replaces the one already published.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from sklearn.ensemble import RandomForestClassifier

from model_training.answers import ties
from model_training.params import (
    INPUT_NAME,
    PARITY_INPUT_MAX,
    PARITY_PROBABILITY_TOLERANCE,
    PARITY_RANDOM_POINTS,
    RANDOM_STATE,
)
from model_training.train import Evaluation


class GateFailed(Exception):
    """A gate refused the model; the message says which gate and by how much."""


def check_quality(evaluation: Evaluation, min_cv_accuracy: float) -> None:
    """Refuse a model whose mean cross-validated accuracy is under ``min_cv_accuracy``."""
    if evaluation.cv_accuracy_mean < min_cv_accuracy:
        raise GateFailed(
            f"quality gate failed: cv accuracy {evaluation.cv_accuracy_mean:.3f} "
            f"± {evaluation.cv_accuracy_std:.3f} is below the required {min_cv_accuracy:.3f}"
        )


@dataclass(frozen=True)
class ParityReport:
    """What the parity gate compared, recorded in ``metadata.json``."""

    points: int
    max_probability_difference: float
    ties: int

    def as_dict(self) -> dict[str, object]:
        """The parity block of ``metadata.json``."""
        return {
            "points": self.points,
            "max_probability_difference": self.max_probability_difference,
            "tolerance": PARITY_PROBABILITY_TOLERANCE,
            "ties": self.ties,
        }


def parity_points(features: np.ndarray) -> np.ndarray:
    """All training rows plus seeded random points across and beyond the observed feature ranges.

    Half of the random points spread around the observed range (one span either side, clipped above 0);
    the other half cover the whole input domain the service accepts, (0, 100] cm.
    """
    rng = np.random.default_rng(RANDOM_STATE)
    low, high = features.min(axis=0), features.max(axis=0)
    span = high - low
    half = PARITY_RANDOM_POINTS // 2
    near = rng.uniform(np.maximum(low - span, 1e-3), high + span, size=(half, features.shape[1]))
    wide = rng.uniform(1e-3, PARITY_INPUT_MAX, size=(PARITY_RANDOM_POINTS - half, features.shape[1]))
    return np.vstack([features, near, wide]).astype(np.float32)


def check_parity(clf: RandomForestClassifier, onnx_bytes: bytes, features: np.ndarray) -> ParityReport:
    """Refuse the export unless ONNX Runtime and scikit-learn agree on every label and probability.

    Labels must be equal on every point except genuine ties (see :func:`ties`), which are counted and
    reported instead; the chosen hyperparameters currently produce none on the parity sample.
    """
    points = parity_points(features)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_labels, onnx_probabilities = session.run(None, {INPUT_NAME: points})
    sk_probabilities = clf.predict_proba(points)
    sk_labels = clf.classes_[np.argmax(sk_probabilities, axis=1)]
    mismatched = int(np.count_nonzero((np.asarray(onnx_labels) != sk_labels) & ~ties(sk_probabilities)))
    difference = float(np.max(np.abs(np.asarray(onnx_probabilities) - sk_probabilities)))
    if mismatched:
        raise GateFailed(
            f"parity gate failed: ONNX and scikit-learn disagree on {mismatched} of {len(points)} labels"
        )
    # "not <=" on purpose: a NaN difference must fail the gate, and NaN <= x is False.
    if not difference <= PARITY_PROBABILITY_TOLERANCE:  # pylint: disable=unnecessary-negation
        raise GateFailed(
            f"parity gate failed: probabilities differ by up to {difference:.2e} "
            f"(tolerance {PARITY_PROBABILITY_TOLERANCE:.0e})"
        )
    return ParityReport(
        points=len(points),
        max_probability_difference=difference,
        ties=int(np.count_nonzero(ties(sk_probabilities))),
    )
