"""The connection to a Docker engine that the image, push and container mixins share.

``DockerConnection`` holds the docker-py client and turns the engine's errors into the pipeline's
exception tree (``_call``), and reads a stream until the run is cancelled (``_chunks``).
"""

from __future__ import annotations

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
        """The stream's chunks, stopping with ``Interrupted`` when the run is cancelled; an engine lost in
        the middle (the connection reset, a broken chunk: urllib3's ``ProtocolError``) is
        ``EngineUnavailable``, not an internal error."""
        import requests
        import urllib3

        chunks = iter(stream)
        try:
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                    raise EngineUnavailable(
                        f"lost the Docker engine during docker {what}: {first_line(exc)}", hint=ENGINE_HINT
                    ) from None
                if cancel is not None and cancel.is_set():
                    raise Interrupted(f"docker {what} was stopped: the run was interrupted")
                yield chunk
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
