"""Secrets out of text: the lines the pipeline logs and the messages it reports pass a :class:`Scrubber`."""

from __future__ import annotations

from collections.abc import Iterable


class Scrubber:
    """Replaces secrets in text with ``***`` before it reaches a log line, a report or an exception."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
