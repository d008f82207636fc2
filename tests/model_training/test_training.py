"""model_training end to end: artifacts, metadata, determinism, gates and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from model_training import GateFailed, TrainingResult, run_training
from model_training.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE_KEYS = (
    "model_version",
    "cv_accuracy_mean",
    "cv_accuracy_std",
    "holdout_accuracy",
    "holdout_macro_f1",
)


def test_writes_the_three_artifacts(model_dir: Path) -> None:
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "iris_model.joblib",
        "iris_model.onnx",
        "metadata.json",
    ]


def test_metadata_has_what_the_pipeline_and_service_read(model_dir: Path) -> None:
    metadata = json.loads((model_dir / "metadata.json").read_text())
    for key in PIPELINE_KEYS:
        assert key in metadata
    assert len(metadata["model_version"]) == 12
    int(metadata["model_version"], 16)
    assert metadata["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert all(feature["unit"] == "cm" for feature in metadata["features"])
    assert metadata["classes"] == ["setosa", "versicolor", "virginica"]
    assert metadata["cv_accuracy_mean"] >= 0.9
    assert 0 < metadata["holdout_accuracy"] <= 1
    assert np.array(metadata["confusion_matrix"]).sum() == 30
    assert len(metadata["training_data"]["sha256"]) == 64
    assert metadata["hyperparameters"]["random_state"] == 42
    assert set(metadata["versions"]) >= {"python", "scikit-learn", "skl2onnx", "onnxruntime"}
    assert "created_at" in metadata
    assert "git_commit" in metadata
    assert metadata["parity"]["points"] == 150 + 10_000
    assert metadata["parity"]["max_probability_difference"] <= 1e-5


def test_onnx_model_has_plain_tensor_outputs(model_dir: Path) -> None:
    session = ort.InferenceSession(str(model_dir / "iris_model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["X"]
    labels, probabilities = session.run(None, {"X": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)})
    assert labels.tolist() == [0]
    assert probabilities.shape == (1, 3)  # no ZipMap: an array, not a list of dicts


def test_two_runs_are_identical(trained: TrainingResult, tmp_path: Path) -> None:
    again = run_training(tmp_path / "again")
    assert again.model_version == trained.model_version
    assert again.evaluation == trained.evaluation
    assert (again.output_dir / "iris_model.onnx").read_bytes() == (
        trained.output_dir / "iris_model.onnx"
    ).read_bytes()
    first = {k: v for k, v in trained.metadata.items() if k != "created_at"}
    second = {k: v for k, v in again.metadata.items() if k != "created_at"}
    assert first == second


def test_version_is_the_hash_of_the_onnx_bytes(model_dir: Path) -> None:
    import hashlib

    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert (
        hashlib.sha256((model_dir / "iris_model.onnx").read_bytes()).hexdigest()[:12]
        == metadata["model_version"]
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_quality_gate_failure_leaves_the_previous_model_untouched(model_dir: Path, tmp_path: Path) -> None:
    published = tmp_path / "model"
    shutil.copytree(model_dir, published)  # a model published earlier: the session's
    before = _snapshot(published)
    with pytest.raises(GateFailed, match="quality gate failed"):
        run_training(published, min_cv_accuracy=0.999)
    assert _snapshot(published) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary leftovers


def test_cli_gate_failure_exits_1_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # in process: the entry point as a subprocess is test_cli_success_prints_one_summary_line's, and the
    # train stage's (tests/pipeline/stages/test_train.py) runs this same refusal as one
    assert main(["--output-dir", str(tmp_path / "m"), "--min-cv-accuracy", "0.999"]) == 1
    assert "quality gate failed: cv accuracy" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_success_prints_one_summary_line(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "model_training", "--output-dir", str(tmp_path / "m")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "cv accuracy 0.9" in completed.stdout
    assert "holdout accuracy" in completed.stdout
    assert json.loads((tmp_path / "m" / "metadata.json").read_text())["model_version"] in completed.stdout


@pytest.mark.parametrize("argv", [["--min-cv-accuracy", "1.5"], ["--min-cv-accuracy", "abc"], ["--bogus"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "error:" in capsys.readouterr().err
