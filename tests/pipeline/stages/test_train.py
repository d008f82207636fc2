"""The train stage on a copy of the project's model_training: metrics, cache, and the quality gate."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli


def stage_of(repo: Path) -> dict:
    return json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]


def test_train_caches_and_gates(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT / "model_training", repo / "model_training", ignore=shutil.ignore_patterns("__pycache__")
    )
    (repo / "pipeline.toml").write_text('[train]\noutput_dir = "model"\n', encoding="utf-8")

    proc = run_cli(["run", "--stage", "train"], repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stage = stage_of(repo)
    assert stage["status"] == "passed"
    assert stage["summary"].startswith("cv accuracy 0.9") and "model " in stage["summary"]
    onnx = repo / "model" / "iris_model.onnx"
    before = hashlib.sha256(onnx.read_bytes()).hexdigest()

    proc = run_cli(["run", "--stage", "train"], repo)
    assert proc.returncode == 0
    assert stage_of(repo)["status"] == "cached"

    # a stricter gate than the model can meet: the stage fails, the old model stays
    proc = run_cli(["run", "--stage", "train", "--set", "train.min_cv_accuracy=0.999"], repo)
    assert proc.returncode == 1
    assert "quality gate" in stage_of(repo)["error"]
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() == before

    # the model in model/ no longer matching what train recorded means it is trained again
    onnx.write_bytes(b"tampered")
    proc = run_cli(["run", "--stage", "train"], repo)
    assert proc.returncode == 0
    assert stage_of(repo)["status"] == "passed"
    assert hashlib.sha256(onnx.read_bytes()).hexdigest() == before, "deterministic training"
