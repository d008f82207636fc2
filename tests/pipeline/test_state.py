"""pipeline.state: atomic saves and refusal of an unreadable state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline import outputs as outputs_mod
from pipeline.errors import ConfigError
from pipeline.outputs import TrainOutputs
from pipeline.state import RunState, StageRecord


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / ".pipeline" / "state.json"
    state = RunState.load(path)
    outputs = TrainOutputs(model_version="abc", model_dir="model", cv_accuracy_mean=0.95)
    state.put("train", StageRecord("passed", "2026-01-01T00:00:00Z", "r1", "ok", outputs.to_json()))
    again = RunState.load(path)
    assert again.outputs(TrainOutputs) == outputs
    assert again.outputs_of_run("r1", TrainOutputs) == outputs
    assert again.outputs_of_run("r2", TrainOutputs) is None, "another run's outputs are not this run's"
    assert again.passed("train") and not again.passed("test")
    assert again.outputs(outputs_mod.TestOutputs) is None


@pytest.mark.parametrize(
    ("recorded", "said"),
    [
        ({"model_version": "abc"}, "train's outputs lack 'model_dir'"),
        (
            {"model_version": 3, "model_dir": "m", "cv_accuracy_mean": 0.9},
            "train.model_version is 3, not str",
        ),
        (
            {"model_version": "a", "model_dir": "m", "cv_accuracy_mean": True},
            "train.cv_accuracy_mean is True",
        ),
        (
            {"model_version": "a", "model_dir": "m", "cv_accuracy_mean": 0.9, "extra": 1},
            "fields this pipeline does not know: ['extra']",
        ),
    ],
)
def test_outputs_this_pipeline_would_not_record_are_refused_whole(
    tmp_path: Path, recorded: object, said: str
) -> None:
    """A state file from another version or a hand edit: refused with the field named, never half-used."""
    path = tmp_path / "state.json"
    state = RunState.load(path)
    state.put("train", StageRecord("passed", "2026-01-01T00:00:00Z", "r1", "ok", recorded))  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        RunState.load(path).outputs(TrainOutputs)
    assert said in caught.value.message and str(path) in caught.value.message
    assert "--rerun train" in (caught.value.hint or "")


def test_a_crash_mid_write_leaves_the_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    state = RunState.load(path)
    state.put("lint", StageRecord("passed", "t", "r1"))
    before = path.read_text(encoding="utf-8")

    def crash(*_args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        state.put("train", StageRecord("passed", "t", "r2"))
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == before
    assert list(tmp_path.iterdir()) == [path], "the temporary file is cleaned up"
    assert RunState.load(path).record("train") is None


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"version": 99})])
def test_unreadable_state_is_refused_not_overwritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be read"):
        RunState.load(path)
    assert path.read_text(encoding="utf-8") == content
