"""``python -m model_training.verify``: a model directory's metadata must describe its ONNX file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_training import params, run_training
from model_training.verify import EXIT_MISMATCH, EXIT_OK, EXIT_UNREADABLE, main

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def copy(model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the session's model, to change."""
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def _edit(directory: Path, **changes: object) -> None:
    path = directory / "metadata.json"
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata.update(changes)
    path.write_text(json.dumps(metadata), encoding="utf-8")


def test_a_model_as_training_wrote_it_is_described_by_its_metadata(model_dir: Path) -> None:
    """The real entry point, as the build stage runs it; it does not import scikit-learn."""
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "model_training.verify",
            "--model-dir",
            str(model_dir),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == EXIT_OK, proc.stderr[-2000:]
    assert "gives the recorded answers on all 150 rows" in proc.stdout
    imported = re.search(r"\|\s+sklearn$", proc.stderr, re.MULTILINE)
    assert not imported, "verify must not import scikit-learn (two seconds of imports)"


def test_changed_answers_are_found(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers = json.loads((copy / "metadata.json").read_text(encoding="utf-8"))["evaluation_predictions"]
    answers[3] = (answers[3] + 1) % 3
    _edit(copy, evaluation_predictions=answers)
    assert main(["--model-dir", str(copy)]) == EXIT_MISMATCH
    assert "answers differently from the recorded evaluation_predictions on 1 of 150 rows (first: row 3)" in (
        capsys.readouterr().err
    )


def test_a_worse_model_under_a_good_models_metadata_is_found(
    copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ONNX file of a one-stump model, with the good model's metadata renamed to match its hash: the
    metrics the gate would compare are the good model's, the answers are not the file's."""
    saved = dict(params.HYPERPARAMETERS)
    params.HYPERPARAMETERS.update(n_estimators=1, max_depth=1)
    try:
        weak = run_training(tmp_path / "weak", min_cv_accuracy=0.5)
    finally:
        params.HYPERPARAMETERS.clear()
        params.HYPERPARAMETERS.update(saved)
    shutil.copyfile(weak.output_dir / "iris_model.onnx", copy / "iris_model.onnx")
    _edit(copy, model_version=weak.model_version)
    assert main(["--model-dir", str(copy)]) == EXIT_MISMATCH
    assert "answers differently from the recorded evaluation_predictions" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"model_version": "000000000000"}, "names model '000000000000', but iris_model.onnx is model"),
        ({"evaluation_predictions": [0, 1]}, "records 2 answers on the evaluation set of 150 rows"),
        ({"evaluation_predictions": None}, "records no answers"),
        ({"training_data": {"sha256": "0" * 64}}, "trained on data '" + "0" * 64),
    ],
)
def test_metadata_that_does_not_describe_the_file_is_refused(
    copy: Path, changes: dict[str, object], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(copy, **changes)
    assert main(["--model-dir", str(copy)]) == EXIT_MISMATCH
    assert said in capsys.readouterr().err


def test_a_directory_that_cannot_be_read_exits_2(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (copy / "metadata.json").write_text("{not json", encoding="utf-8")
    assert main(["--model-dir", str(copy)]) == EXIT_UNREADABLE
    assert f"cannot read the model in {copy}" in capsys.readouterr().err
    shutil.rmtree(copy)
    assert main(["--model-dir", str(copy)]) == EXIT_UNREADABLE
