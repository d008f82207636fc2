"""Publishing the model directory: all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_training.artifacts import publish


def test_replaces_the_directory_contents(tmp_path: Path) -> None:
    target = tmp_path / "model"
    publish(target, {"a": b"1", "stale": b"x"})
    publish(target, {"a": b"2"})
    assert {p.name: p.read_bytes() for p in target.iterdir()} == {"a": b"2"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_failed_write_keeps_the_previous_model(tmp_path: Path) -> None:
    target = tmp_path / "model"
    publish(target, {"a": b"1"})
    with pytest.raises(OSError):
        publish(target, {"a": b"2", "missing-dir/b": b"3"})
    assert (target / "a").read_bytes() == b"1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_creates_missing_parents(tmp_path: Path) -> None:
    publish(tmp_path / "x" / "y" / "model", {"a": b"1"})
    assert (tmp_path / "x" / "y" / "model" / "a").read_bytes() == b"1"
