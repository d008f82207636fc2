"""The connection to a Docker engine that the image, push and container mixins share.

``DockerConnection`` holds the docker-py client and turns the engine's errors into the pipeline's
exception tree (``_call``), and reads a stream until the run is cancelled (``_chunks``).
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self

from pipeline.adapters.docker_streams import ENGINE_HINT, api_error_message, first_line
from pipeline.errors import EngineUnavailable, Interrupted, ToolFailed


class DockerConnection:
    """One connection to a Docker engine; every method maps engine errors into the pipeline's tree."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def connect(cls, base_url: str | None = None, timeout_s: float = 120.0) -> Self:
        """Connect and ping; ``base_url`` ``None`` means the usual ``DOCKER_HOST`` or local socket.

        Raises ``EngineUnavailable`` with a hint rather than docker-py's connection traceback.
        """
        import docker  # only stages that talk to the engine need it

        where = base_url or "DOCKER_HOST or unix:///var/run/docker.sock"
        try:
            if base_url:
                client = docker.DockerClient(base_url=base_url, version="auto", timeout=int(timeout_s))
            else:
                client = docker.from_env(version="auto", timeout=int(timeout_s))
            client.ping()
        except (
            Exception
        ) as exc:  # pylint: disable=broad-exception-caught  # docker-py, requests, urllib3 errors
            raise EngineUnavailable(
                f"the Docker engine at {where} does not answer: {first_line(exc)}", hint=ENGINE_HINT
            ) from None
        return cls(client)

    @property
    def client(self) -> Any:
        """The docker-py client, for the rare call this adapter does not wrap."""
        return self._client

    def version(self) -> dict[str, Any]:
        """The engine's version report (``Version``, ``ApiVersion``, ...), for ``doctor``."""
        return dict(self._client.version())

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one engine call; a lost connection becomes ``EngineUnavailable``, an API error ``ToolFailed``.

        ``NotFound`` passes through untouched so callers that tolerate a missing object can catch it.
        """
        import docker
        import requests

        try:
            return call()
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as exc:
            raise ToolFailed(f"docker {what} failed: {api_error_message(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailable(
                f"lost the Docker engine during {what}: {first_line(exc)}", hint=ENGINE_HINT
            ) from None

    @staticmethod
    def _chunks(
        stream: Iterator[Mapping[str, Any]], what: str, cancel: threading.Event | None
    ) -> Iterator[Mapping[str, Any]]:
        """The stream's chunks, stopping with ``Interrupted`` within a fifth of a second of the run's cancel.

        A build step that prints nothing for minutes (``RUN pip install -q``) blocks a read of the stream;
        so a thread reads it, and on cancel the engine's connection is hung up, which also makes the
        engine stop the build. An engine lost in the middle (the connection reset, a broken chunk:
        urllib3's ``ProtocolError``) is ``EngineUnavailable``, not an internal error.
        """
        import requests
        import urllib3

        items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

        def read() -> None:
            try:
                for chunk in stream:
                    items.put(("chunk", chunk))
            except BaseException as exc:  # pylint: disable=broad-exception-caught  # handed to the caller
                items.put(("error", exc))
            else:
                items.put(("end", None))

        reader = threading.Thread(target=read, name=f"docker-{what}-stream", daemon=True)
        reader.start()
        try:
            while True:
                try:
                    kind, value = items.get(timeout=0.2)
                except queue.Empty:
                    kind, value = "wait", None
                if cancel is not None and cancel.is_set():
                    raise Interrupted(f"docker {what} was stopped: the run was interrupted")
                if kind == "end":
                    return
                if kind == "error":
                    if isinstance(
                        value, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)
                    ):
                        raise EngineUnavailable(
                            f"lost the Docker engine during docker {what}: {first_line(value)}",
                            hint=ENGINE_HINT,
                        ) from None
                    raise value
                if kind == "chunk":
                    yield value
        finally:
            if reader.is_alive():  # still reading: hang up; a stream we cannot hang up ends with the process
                if _hang_up(stream):
                    reader.join(timeout=2)  # the read returns now; the thread ends with it
            else:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()


def _hang_up(stream: Iterator[Any]) -> bool:
    """Shut down the socket under a docker-py stream (``APIClient._stream_helper``'s ``response``) so a read
    blocked on it returns, and the engine sees the client go (and stops a build). Best effort: a stream of
    another shape is left to end by itself (False)."""
    frame = getattr(stream, "gi_frame", None)
    response = frame.f_locals.get("response") if frame is not None else None
    sock: Any = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    sock = getattr(getattr(sock, "raw", None), "_sock", None)
    if sock is None:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    return True
