"""A model trained once per session, for the tests that only read what training wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_training import TrainingResult, run_training


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """One training run into a session temp dir."""
    return run_training(tmp_path_factory.mktemp("trained") / "model")


@pytest.fixture(scope="session")
def model_dir(trained: TrainingResult) -> Path:
    """The directory of the session's trained model."""
    return trained.output_dir
