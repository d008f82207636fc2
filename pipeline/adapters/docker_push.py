"""Pushing an image through the Docker engine, with retries, and asking the registry for its digest.

Registry credentials travel per call in ``auth_config`` (the ``X-Registry-Auth`` header); nothing is
written to a Docker config file, and the password is scrubbed from anything logged or raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeline.adapters.docker_core import DockerConnection
from pipeline.adapters.docker_streams import (
    CREDENTIALS_HINT,
    ENGINE_HINT,
    REGISTRY_HINT,
    LineSink,
    api_error_message,
    chunk_error,
    first_line,
    is_auth_error,
    is_connection_error,
    noop,
    push_digest,
)
from pipeline.errors import EngineUnavailable, ToolFailed
from pipeline.scrub import Scrubber


class _RetryablePushError(Exception):
    """A push failure that may go away on its own: the registry or the engine could not be reached."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PushMixin(DockerConnection):
    """Push to a registry and read back the digest it holds."""

    def push(
        self,
        repository: str,
        tag: str,
        auth_config: Mapping[str, str] | None = None,
        *,
        log: LineSink,
        progress: LineSink | None = None,
        cancel: threading.Event | None = None,
        attempts: int = 3,
        backoff_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str:
        """Push ``repository:tag`` and return the digest the engine reports.

        Retries (with doubling backoff) only when the registry or the engine could not be reached;
        a refused login or a missing image fails at once: retrying cannot fix those.
        """
        scrub = Scrubber([(auth_config or {}).get("password"), (auth_config or {}).get("identitytoken")])
        progress = progress or noop
        for attempt in range(1, attempts + 1):
            try:
                return self._push_once(repository, tag, auth_config, scrub, log, progress, cancel)
            except _RetryablePushError as exc:
                if attempt == attempts:
                    raise ToolFailed(
                        f"push of {repository}:{tag} failed: cannot connect to the registry "
                        f"after {attempts} attempts: {exc.message}",
                        hint=REGISTRY_HINT,
                    ) from None
                wait = backoff_s * 2 ** (attempt - 1)
                log(f"push attempt {attempt}/{attempts}: no connection ({exc.message}); retry in {wait:g} s")
                sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _push_once(
        self,
        repository: str,
        tag: str,
        auth_config: Mapping[str, str] | None,
        scrub: Scrubber,
        log: LineSink,
        progress: LineSink,
        cancel: threading.Event | None,
    ) -> str:
        import docker
        import requests

        try:
            stream = self._client.api.push(
                repository,
                tag=tag,
                stream=True,
                decode=True,
                auth_config=dict(auth_config) if auth_config else None,
            )
            return self._read_push_stream(stream, repository, tag, scrub, log, progress, cancel)
        except requests.exceptions.ConnectionError as exc:
            raise _RetryablePushError(scrub(f"lost the Docker engine: {first_line(exc)}")) from None
        except docker.errors.APIError as exc:
            message = scrub(api_error_message(exc))
            if is_auth_error(message):
                raise self._auth_failure(repository, tag, message) from None
            if exc.is_server_error() or is_connection_error(message):
                raise _RetryablePushError(message) from None
            raise ToolFailed(f"push of {repository}:{tag} failed: {message}") from None

    def _read_push_stream(
        self,
        stream: Iterator[Mapping[str, Any]],
        repository: str,
        tag: str,
        scrub: Scrubber,
        log: LineSink,
        progress: LineSink,
        cancel: threading.Event | None,
    ) -> str:
        """Read the whole push stream; an error chunk anywhere fails the push, even after a digest."""
        digest = None
        last_status: dict[str, str] = {}
        for chunk in self._chunks(stream, "push", cancel):
            error = chunk_error(chunk)
            if error:
                message = scrub(error.message)
                log(f"ERROR: {message}")
                if is_auth_error(message):
                    raise self._auth_failure(repository, tag, message)
                if is_connection_error(message):
                    raise _RetryablePushError(message)
                raise ToolFailed(f"push of {repository}:{tag} failed: {message}")
            digest = push_digest(chunk) or digest
            self._log_push_status(chunk, last_status, scrub, log, progress)
        if not digest:
            raise ToolFailed(f"push of {repository}:{tag} ended without the engine reporting a digest")
        log(f"pushed {repository}:{tag} {digest}")
        return digest

    @staticmethod
    def _log_push_status(
        chunk: Mapping[str, Any],
        last_status: dict[str, str],
        scrub: Scrubber,
        log: LineSink,
        progress: LineSink,
    ) -> None:
        """Log each layer's status once per change; byte-by-byte progress goes to the live line only."""
        status = chunk.get("status")
        if not status:
            return
        layer = str(chunk.get("id", ""))
        if chunk.get("progress"):
            progress(f"{layer} {status} {chunk['progress']}".strip())
        if last_status.get(layer) != status:
            last_status[layer] = str(status)
            log(scrub(f"{layer}: {status}" if layer else str(status)))

    @staticmethod
    def _auth_failure(repository: str, tag: str, message: str) -> ToolFailed:
        return ToolFailed(
            f"push of {repository}:{tag} failed: the registry refused authentication: {message}",
            hint=CREDENTIALS_HINT,
        )

    def distribution_digest(self, ref: str, auth_config: Mapping[str, str] | None = None) -> str | None:
        """The manifest digest the registry holds for ``ref``, asked by the engine (``None``: no such tag).

        ``GET /distribution/NAME/json`` makes the engine ask the registry from where it pushed: the
        only view of a registry on the engine host's loopback from a container beside the engine.
        """
        import docker
        import requests

        scrub = Scrubber([(auth_config or {}).get("password")])
        try:
            info = self._client.api.inspect_distribution(
                ref, auth_config=dict(auth_config) if auth_config else None
            )
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            message = scrub(api_error_message(exc))
            hint = CREDENTIALS_HINT if is_auth_error(message) else REGISTRY_HINT
            raise ToolFailed(
                f"the engine could not ask the registry about {ref}: {message}", hint=hint
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailable(
                f"lost the Docker engine asking the registry about {ref}: {first_line(exc)}",
                hint=ENGINE_HINT,
            ) from None
        digest = (info.get("Descriptor") or {}).get("digest")
        return str(digest) if digest else None
