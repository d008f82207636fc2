"""How DockerEngine reads the engine's JSON streams: errors hide inside them (docker/docker-py#1772)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3

from pipeline.adapters.docker_engine import DockerEngine
from pipeline.adapters.docker_streams import chunk_error, is_auth_error, is_connection_error
from pipeline.errors import EngineUnavailable, Interrupted, ToolFailed
from pipeline.scrub import Scrubber

DIGEST = "sha256:" + "ab" * 32


def _read_push(chunks: list[dict[str, Any]], lines: list[str], password: str = "hunter2-secret") -> str:
    engine = DockerEngine(client=None)
    return engine._read_push_stream(  # pylint: disable=protected-access
        iter(chunks), "reg/app", "1", Scrubber([password]), lines.append, lambda _line: None, None
    )


def test_push_digest_from_aux_and_status() -> None:
    lines: list[str] = []
    chunks = [
        {"status": "The push refers to repository [reg/app]"},
        {"status": "Pushing", "id": "abc", "progress": "[=>  ]"},
        {"status": "Pushing", "id": "abc", "progress": "[==> ]"},
        {"status": f"1: digest: {DIGEST} size: 528"},
        {"aux": {"Tag": "1", "Digest": DIGEST, "Size": 528}},
    ]
    assert _read_push(chunks, lines) == DIGEST
    assert lines.count("abc: Pushing") == 1
    assert _read_push([{"status": f"1: digest: {DIGEST} size: 528"}], []) == DIGEST


def test_error_after_a_digest_still_fails_and_password_is_scrubbed() -> None:
    lines: list[str] = []
    chunks = [
        {"status": f"1: digest: {DIGEST} size: 528"},
        {"errorDetail": {"message": "denied: hunter2-secret is not allowed"}, "error": "denied"},
    ]
    with pytest.raises(ToolFailed) as caught:
        _read_push(chunks, lines)
    assert "refused authentication" in str(caught.value)
    assert "hunter2-secret" not in str(caught.value) and "hunter2-secret" not in "\n".join(lines)


def test_push_without_digest_fails() -> None:
    with pytest.raises(ToolFailed, match="without the engine reporting a digest"):
        _read_push([{"status": "The push refers to repository [reg/app]"}], [])


def test_error_classification() -> None:
    assert chunk_error({"error": "plain"}).message == "plain"  # type: ignore[union-attr]
    assert chunk_error({"stream": "Step 1/2"}) is None
    assert is_auth_error("unauthorized: authentication required")
    assert is_connection_error('Get "http://127.0.0.1:1/v2/": dial tcp: connect: connection refused')
    assert not is_connection_error("unauthorized: connection refused for this user")


@pytest.mark.parametrize(
    "lost",
    [
        urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(0 bytes read)"),
        requests.exceptions.ChunkedEncodingError("Connection broken"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_an_engine_lost_in_the_middle_of_a_stream_is_engine_unavailable(lost: Exception) -> None:
    def stream() -> Iterator[dict[str, Any]]:
        yield {"stream": "Step 1/9 : FROM debian"}
        raise lost

    chunks = DockerEngine._chunks(stream(), "build", None)  # pylint: disable=protected-access

    assert next(chunks) == {"stream": "Step 1/9 : FROM debian"}
    with pytest.raises(EngineUnavailable) as caught:
        next(chunks)
    assert caught.value.message.startswith("lost the Docker engine during docker build: ")
    assert caught.value.exit_code == 3


def test_a_stream_that_says_nothing_still_stops_within_a_fifth_of_a_second_of_the_cancel() -> None:
    """A step that prints nothing (``RUN pip install -q``) blocks the stream: the cancel does not wait."""
    silent = threading.Event()

    def stream() -> Iterator[dict[str, Any]]:
        yield {"stream": "Step 2/9 : RUN pip install -q ..."}
        silent.wait(30)  # the engine says nothing for a long time
        yield {"stream": "too late"}

    cancel = threading.Event()
    chunks = DockerEngine._chunks(stream(), "build", cancel)  # pylint: disable=protected-access
    assert next(chunks)["stream"].startswith("Step 2/9")
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()

    with pytest.raises(Interrupted):
        next(chunks)

    assert time.monotonic() - started < 0.8
    silent.set()
