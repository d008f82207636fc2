"""Reading the Docker engine's JSON streams and errors: pure functions, no docker-py.

Builds and pushes use docker-py's low-level API because the engine reports failures *inside* the
JSON stream it sends back: ``client.api.push`` returns normally from a push the registry refused
(docker/docker-py#1772), and a failed ``RUN`` is an ``errorDetail`` chunk. Every chunk is read (in
``docker_images`` and ``docker_push``) and any error becomes ``ToolFailed`` with the engine's own words;
this module says what a chunk or an engine message means.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LineSink = Callable[[str], None]

ENGINE_HINT = "start the engine: bash scripts/testbed.sh up; or is DOCKER_HOST right?"
CREDENTIALS_HINT = "check REGISTRY_USERNAME/REGISTRY_PASSWORD or DOCKERHUB_USERNAME/DOCKERHUB_TOKEN"
REGISTRY_HINT = "is registry.url right and the registry running? locally: bash scripts/testbed.sh up"
_AUTH_WORDS = ("unauthorized", "authentication required", "denied", "no basic auth credentials", "forbidden")
_CONNECTION_WORDS = (
    "connection refused",
    "connection reset",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "network is unreachable",
    "server misbehaving",
    "eof",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
)
_PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def noop(_line: str) -> None:
    """Default progress sink: callers without a live view ignore progress."""


@dataclass(frozen=True)
class StreamError:
    """An error the engine put into its JSON stream."""

    message: str


def chunk_error(chunk: Mapping[str, Any]) -> StreamError | None:
    """The error a stream chunk carries, if any (``error`` or ``errorDetail.message``)."""
    detail = chunk.get("errorDetail")
    if isinstance(detail, Mapping) and detail.get("message"):
        return StreamError(str(detail["message"]).strip())
    if chunk.get("error"):
        return StreamError(str(chunk["error"]).strip())
    return None


def is_auth_error(message: str) -> bool:
    """Whether an engine message says the registry refused us (never worth a retry)."""
    lowered = message.lower()
    return any(word in lowered for word in _AUTH_WORDS)


def is_connection_error(message: str) -> bool:
    """Whether an engine message says the registry could not be reached (worth a retry)."""
    lowered = message.lower()
    return not is_auth_error(message) and any(word in lowered for word in _CONNECTION_WORDS)


def push_digest(chunk: Mapping[str, Any]) -> str | None:
    """The digest in a push chunk: ``aux.Digest``, or the ``TAG: digest: sha256:... size: N`` status."""
    aux = chunk.get("aux")
    if isinstance(aux, Mapping) and aux.get("Digest"):
        return str(aux["Digest"])
    match = _PUSH_DIGEST.search(str(chunk.get("status", "")))
    return match.group(1) if match else None


def api_error_message(exc: Any) -> str:
    """The engine's explanation from an ``APIError`` (not docker-py's URL-laden wrapper text)."""
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
