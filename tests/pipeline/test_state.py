"""pipeline.state: atomic saves and refusal of an unreadable state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.state import RunState, StageRecord


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / ".pipeline" / "state.json"
    state = RunState.load(path)
    state.put("train", StageRecord("passed", "2026-01-01T00:00:00Z", "r1", "ok", {"model_version": "abc"}))
    again = RunState.load(path)
    assert again.output("train", "model_version") == "abc"
    assert again.passed("train") and not again.passed("test")


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
