"""app.model: loading, refusing unusable model directories, predicting a batch in one call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from app.model import IrisModel, ModelLoadError


def test_predicts_a_batch(model_dir: Path) -> None:
    model = IrisModel.load(model_dir)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    result = model.predict(rows)
    assert result.class_ids.tolist() == [0, 2]
    assert result.probabilities.shape == (2, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert model.class_names == ("setosa", "versicolor", "virginica")
    assert model.version == json.loads((model_dir / "metadata.json").read_text())["model_version"]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no model in .*python -m model_training"):
        IrisModel.load(tmp_path / "absent")


def test_create_app_fails_fast_and_logs_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ModelLoadError):
        create_app({"MODEL_DIR": str(tmp_path)})
    assert "cannot start the service: no model in" in caplog.text


def test_model_dir_from_environment(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    assert create_app().test_client().get("/ready").status_code == 200


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def test_corrupt_onnx_is_refused(model_dir: Path, tmp_path: Path) -> None:
    broken = _copy(model_dir, tmp_path)
    (broken / "iris_model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load the model"):
        IrisModel.load(broken)


def test_corrupt_metadata_is_refused(model_dir: Path, tmp_path: Path) -> None:
    broken = _copy(model_dir, tmp_path)
    (broken / "metadata.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="cannot load the model"):
        IrisModel.load(broken)


def test_metadata_for_other_features_is_refused(model_dir: Path, tmp_path: Path) -> None:
    broken = _copy(model_dir, tmp_path)
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["feature_names"] = ["a", "b", "c", "d"]
    (broken / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="does not fit this service"):
        IrisModel.load(broken)
