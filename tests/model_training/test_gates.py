"""The quality and parity gates on their own."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from model_training.data import load_dataset
from model_training.export import model_version, to_onnx_bytes
from model_training.gates import GateFailed, check_parity, check_quality, parity_points
from model_training.train import Evaluation, fit, split


def _evaluation(mean: float) -> Evaluation:
    return Evaluation(cv_scores=(mean,) * 5, holdout_accuracy=1.0, holdout_macro_f1=1.0, confusion=((1,),))


def test_quality_gate_passes_at_the_threshold_and_fails_below() -> None:
    check_quality(_evaluation(0.9), 0.9)
    with pytest.raises(GateFailed, match=r"cv accuracy 0\.890 .* below the required 0\.900"):
        check_quality(_evaluation(0.89), 0.9)


def test_parity_points_cover_rows_and_the_input_domain() -> None:
    features = load_dataset().features
    points = parity_points(features)
    assert points.shape == (150 + 10_000, 4)
    assert points.dtype == np.float32
    np.testing.assert_array_equal(points[:150], features.astype(np.float32))
    assert points.min() > 0
    assert points.max() > features.max() * 5  # far beyond the observed range
    np.testing.assert_array_equal(points, parity_points(features))  # seeded


def test_parity_passes_for_the_real_export() -> None:
    dataset = load_dataset()
    clf = fit(split(dataset))
    report = check_parity(clf, to_onnx_bytes(clf, 4), dataset.features)
    assert report.points == 10_150
    assert report.max_probability_difference <= 1e-5


def test_parity_fails_for_an_onnx_of_another_model() -> None:
    dataset = load_dataset()
    data = split(dataset)
    clf = fit(data)
    other = RandomForestClassifier(n_estimators=3, max_depth=1, random_state=0).fit(
        data.train_x, data.train_y
    )
    with pytest.raises(GateFailed, match="parity gate failed"):
        check_parity(clf, to_onnx_bytes(other, 4), dataset.features)


def test_export_is_byte_for_byte_reproducible() -> None:
    data = split(load_dataset())
    first, second = to_onnx_bytes(fit(data), 4), to_onnx_bytes(fit(data), 4)
    assert first == second
    assert model_version(first) == model_version(second)
