"""Service settings, read once in :func:`app.create_app` from ``test_config`` or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MAX_BATCH_ROWS = 1000
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: a full 1000-row batch is about 100 KiB


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured by; nothing below ``create_app`` reads ``os.environ``."""

    model_dir: str = "model"
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    load_model: bool = True
    prometheus_multiproc_dir: str | None = None


def _positive_int(name: str, raw: object) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


def load_settings(
    test_config: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from ``test_config`` keys (``MODEL_DIR``, ``MAX_BATCH_ROWS``, ``MAX_CONTENT_LENGTH``,
    ``LOAD_MODEL``), falling back to environment variables of the same names, then defaults."""
    env = os.environ if environ is None else environ
    overrides = dict(test_config or {})

    def pick(name: str, default: object) -> object:
        if name in overrides:
            return overrides[name]
        return env.get(name, default)

    return Settings(
        model_dir=str(pick("MODEL_DIR", "model")),
        max_batch_rows=_positive_int("MAX_BATCH_ROWS", pick("MAX_BATCH_ROWS", DEFAULT_MAX_BATCH_ROWS)),
        max_content_length=_positive_int(
            "MAX_CONTENT_LENGTH", pick("MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH)
        ),
        load_model=bool(overrides.get("LOAD_MODEL", True)),
        prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
    )
