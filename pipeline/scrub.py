"""Secrets out of text: the lines the pipeline logs, the messages it reports and the report files its tools
write (JUnit, coverage, SARIF, JSON) pass a :class:`Scrubber`."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from pathlib import Path


class Scrubber:
    """Replaces secrets in text with ``***`` before it reaches a log line, a report or an exception."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def in_files(self) -> Scrubber:
        """The scrubber for report files: each secret also as XML, HTML and JSON write it (``&amp;``,
        ``\\"``, ``\\u00e9``), which the plain text of a secret would not match."""
        spelled = set(self._secrets)
        for secret in self._secrets:
            spelled.add(html.escape(secret, quote=True))
            spelled.add(html.escape(secret, quote=False))
            spelled.add(json.dumps(secret)[1:-1])
            spelled.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        return Scrubber(spelled)

    def file(self, path: Path) -> bool:
        """Scrub the file at ``path`` in place (replaced atomically); True when it held a secret.

        Bytes that are not UTF-8 are kept as they are (``surrogateescape``)."""
        if not self._secrets:
            return False
        raw = path.read_bytes()
        text = raw.decode("utf-8", errors="surrogateescape")
        clean = self(text)
        if clean == text:
            return False
        staging = path.with_name(f".{path.name}.scrubbed")
        staging.write_bytes(clean.encode("utf-8", errors="surrogateescape"))
        os.replace(staging, path)
        return True
