"""app.config: settings from test_config, then environment, then defaults."""

from __future__ import annotations

import pytest

from app.config import DEFAULT_MAX_BATCH_ROWS, load_settings


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert (settings.model_dir, settings.max_batch_rows, settings.max_content_length) == (
        "model",
        DEFAULT_MAX_BATCH_ROWS,
        1024 * 1024,
    )
    assert settings.prometheus_multiproc_dir is None


def test_environment_then_test_config() -> None:
    env = {"MODEL_DIR": "/env", "MAX_BATCH_ROWS": "50", "PROMETHEUS_MULTIPROC_DIR": "/tmp/p"}
    assert load_settings(environ=env).max_batch_rows == 50
    settings = load_settings({"MAX_BATCH_ROWS": 7}, environ=env)
    assert (settings.model_dir, settings.max_batch_rows, settings.prometheus_multiproc_dir) == (
        "/env",
        7,
        "/tmp/p",
    )


@pytest.mark.parametrize("raw", ["0", "-1", "lots", ""])
def test_bad_row_limit_is_a_clear_error(raw: str) -> None:
    with pytest.raises(ValueError, match="MAX_BATCH_ROWS must be a positive integer"):
        load_settings(environ={"MAX_BATCH_ROWS": raw})
