"""The Docker engine, through docker-py: build, push, and the containers the smoke and deploy stages run.

Builds and pushes use docker-py's low-level API because the engine reports failures *inside* the
JSON stream it sends back: ``client.api.push`` returns normally from a push the registry refused
(docker/docker-py#1772), and a failed ``RUN`` is an ``errorDetail`` chunk. Every chunk is read here
and any error becomes ``ToolFailed`` with the engine's own words.

Registry credentials travel per call in ``auth_config`` (the ``X-Registry-Auth`` header); nothing is
written to a Docker config file, and the password is scrubbed from anything logged or raised.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import EngineUnavailable, Interrupted, ToolFailed

LineSink = Callable[[str], None]

_ENGINE_HINT = "start the engine: bash scripts/testbed.sh up; or is DOCKER_HOST right?"
_CREDENTIALS_HINT = "check REGISTRY_USERNAME/REGISTRY_PASSWORD or DOCKERHUB_USERNAME/DOCKERHUB_TOKEN"
_REGISTRY_HINT = "is registry.url right and the registry running? locally: bash scripts/testbed.sh up"
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
_BUILT_ID = re.compile(r"Successfully built ([0-9a-f]+)")


def _noop(_line: str) -> None:
    """Default progress sink: callers without a live view ignore progress."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel picks it), for publishing a container."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def split_image_ref(ref: str) -> tuple[str, str]:
    """``registry:5000/name:tag`` -> (``registry:5000/name``, ``tag``); the tag defaults to ``latest``."""
    name, _, digest = ref.partition("@")
    if digest:
        return name, "latest"
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


class Scrubber:
    """Replaces secrets in text with ``***`` before it reaches a log line or an exception."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


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


class _RetryablePushError(Exception):
    """A push failure that may go away on its own: the registry or the engine could not be reached."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ContainerState:
    """What ``docker inspect`` says of a container's life: running or not, exit code, engine error."""

    status: str
    running: bool
    exit_code: int
    error: str
    restart_count: int = 0
    image: str = ""

    def failure(self) -> str | None:
        """Why the container is not serving, or ``None`` while it runs.

        Under a restart policy a crashing service looks "running" between restarts, so any restart counts.
        """
        if self.running and self.status != "restarting" and not self.restart_count:
            return None
        detail = f"container exited with code {self.exit_code}"
        if self.restart_count:
            detail += f" (restarts: {self.restart_count})"
        return f"{detail} {self.error}".strip()


class DockerEngine:  # pylint: disable=too-many-public-methods
    """One connection to a Docker engine; every method maps engine errors into the pipeline's tree."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def connect(cls, base_url: str | None = None, timeout_s: float = 120.0) -> DockerEngine:
        """Connect and ping; ``base_url`` ``None`` means the usual ``DOCKER_HOST`` or local socket.

        Raises ``EngineUnavailable`` with a hint rather than docker-py's connection traceback.
        """
        import docker  # pylint: disable=import-outside-toplevel  # only stages that talk to the engine need it

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
                f"the Docker engine at {where} does not answer: {_first_line(exc)}", hint=_ENGINE_HINT
            ) from None
        return cls(client)

    @property
    def client(self) -> Any:
        """The docker-py client, for the rare call this adapter does not wrap."""
        return self._client

    def version(self) -> dict[str, Any]:
        """The engine's version report (``Version``, ``ApiVersion``, ...), for ``doctor``."""
        return dict(self._client.version())

    # --- images ----------------------------------------------------------------------------

    def build(  # pylint: disable=too-many-arguments
        self,
        context_dir: Path | str,
        dockerfile: str,
        tags: Sequence[str],
        buildargs: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        *,
        log: LineSink,
        progress: LineSink | None = None,
        cancel: threading.Event | None = None,
        nocache: bool = False,
        pull: bool = False,
    ) -> str:
        """Build ``dockerfile`` in ``context_dir``, tag it with every tag and return the image id."""
        if not tags:
            raise ValueError("build needs at least one tag")
        progress = progress or _noop
        stream = self._call(
            "build",
            lambda: self._client.api.build(
                path=str(context_dir),
                dockerfile=dockerfile,
                tag=tags[0],
                buildargs=dict(buildargs or {}),
                labels=dict(labels or {}),
                decode=True,
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=pull,
            ),
        )
        import requests  # pylint: disable=import-outside-toplevel

        try:
            image_id = self._read_build_stream(stream, log, progress, cancel)
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(
                f"lost the Docker engine during the build: {_first_line(exc)}", hint=_ENGINE_HINT
            ) from None
        for ref in tags[1:]:
            repository, tag = split_image_ref(ref)
            self._call("tag", lambda r=repository, t=tag: self._client.api.tag(image_id, r, t))
        log(f"built {image_id} tagged {', '.join(tags)}")
        return image_id

    def _read_build_stream(
        self,
        stream: Iterator[Mapping[str, Any]],
        log: LineSink,
        progress: LineSink,
        cancel: threading.Event | None,
    ) -> str:
        """Log the build output; raise on the first error chunk; return the id the engine reported."""
        image_id = None
        for chunk in self._chunks(stream, "build", cancel):
            error = chunk_error(chunk)
            if error:
                log(f"ERROR: {error.message}")
                raise ToolFailed(f"docker build failed: {error.message}")
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    log(line.rstrip())
                if line.startswith("Step "):
                    progress(line.strip())
                built = _BUILT_ID.search(line)
                if built and image_id is None:
                    image_id = built.group(1)
            if chunk.get("status"):
                log(" ".join(str(chunk[k]) for k in ("id", "status", "progress") if chunk.get(k)))
            aux = chunk.get("aux")
            if isinstance(aux, Mapping) and aux.get("ID"):
                image_id = str(aux["ID"])
        if not image_id:
            raise ToolFailed("docker build ended without reporting an image id")
        return self.image_id(image_id) or image_id

    def image_id(self, ref: str) -> str | None:
        """The full id of a local image (by id, name:tag or digest), ``None`` if the engine lacks it."""
        import docker  # pylint: disable=import-outside-toplevel

        try:
            return str(self._call("inspect image", lambda: self._client.api.inspect_image(ref))["Id"])
        except docker.errors.ImageNotFound:
            return None

    def find_image_by_label(self, key: str, value: str) -> str | None:
        """The newest local image labelled ``key=value`` (the build cache's inputs hash), or ``None``."""
        images = self._call(
            "list images", lambda: self._client.api.images(filters={"label": f"{key}={value}"})
        )
        if not images:
            return None
        newest = max(images, key=lambda image: image.get("Created", 0))
        return str(newest["Id"])

    def image_labels(self, ref: str) -> dict[str, str]:
        """The labels of a local image; ``ToolFailed`` if the engine does not have it."""
        import docker  # pylint: disable=import-outside-toplevel

        try:
            info = self._call("inspect image", lambda: self._client.api.inspect_image(ref))
        except docker.errors.ImageNotFound:
            raise ToolFailed(f"image {ref} is not in the local Docker engine") from None
        return dict((info.get("Config") or {}).get("Labels") or {})

    def tag(self, image: str, ref: str) -> None:
        """Give a local image one more ``repository:tag``."""
        repository, tag = split_image_ref(ref)
        self._call("tag", lambda: self._client.api.tag(image, repository, tag))

    def remove_image(self, ref: str, force: bool = False) -> None:
        """Remove a local image; an image already gone is not an error."""
        import docker  # pylint: disable=import-outside-toplevel

        try:
            self._call("remove image", lambda: self._client.api.remove_image(ref, force=force))
        except docker.errors.ImageNotFound:
            pass

    # --- push ------------------------------------------------------------------------------

    def push(  # pylint: disable=too-many-arguments
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
        progress = progress or _noop
        for attempt in range(1, attempts + 1):
            try:
                return self._push_once(repository, tag, auth_config, scrub, log, progress, cancel)
            except _RetryablePushError as exc:
                if attempt == attempts:
                    raise ToolFailed(
                        f"push of {repository}:{tag} failed: cannot connect to the registry "
                        f"after {attempts} attempts: {exc.message}",
                        hint=_REGISTRY_HINT,
                    ) from None
                wait = backoff_s * 2 ** (attempt - 1)
                log(f"push attempt {attempt}/{attempts}: no connection ({exc.message}); retry in {wait:g} s")
                sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _push_once(  # pylint: disable=too-many-arguments
        self,
        repository: str,
        tag: str,
        auth_config: Mapping[str, str] | None,
        scrub: Scrubber,
        log: LineSink,
        progress: LineSink,
        cancel: threading.Event | None,
    ) -> str:
        import docker  # pylint: disable=import-outside-toplevel
        import requests  # pylint: disable=import-outside-toplevel

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
            raise _RetryablePushError(scrub(f"lost the Docker engine: {_first_line(exc)}")) from None
        except docker.errors.APIError as exc:
            message = scrub(_api_error_message(exc))
            if is_auth_error(message):
                raise self._auth_failure(repository, tag, message) from None
            if exc.is_server_error() or is_connection_error(message):
                raise _RetryablePushError(message) from None
            raise ToolFailed(f"push of {repository}:{tag} failed: {message}") from None

    def _read_push_stream(  # pylint: disable=too-many-arguments
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
            digest = _push_digest(chunk) or digest
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
            hint=_CREDENTIALS_HINT,
        )

    def distribution_digest(self, ref: str, auth_config: Mapping[str, str] | None = None) -> str | None:
        """The manifest digest the registry holds for ``ref``, asked by the engine (``None``: no such tag).

        ``GET /distribution/NAME/json`` makes the engine ask the registry from where it pushed: the
        only view of a registry on the engine host's loopback from a container beside the engine.
        """
        import docker  # pylint: disable=import-outside-toplevel
        import requests  # pylint: disable=import-outside-toplevel

        scrub = Scrubber([(auth_config or {}).get("password")])
        try:
            info = self._client.api.inspect_distribution(
                ref, auth_config=dict(auth_config) if auth_config else None
            )
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            message = scrub(_api_error_message(exc))
            hint = _CREDENTIALS_HINT if is_auth_error(message) else _REGISTRY_HINT
            raise ToolFailed(
                f"the engine could not ask the registry about {ref}: {message}", hint=hint
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailable(
                f"lost the Docker engine asking the registry about {ref}: {_first_line(exc)}",
                hint=_ENGINE_HINT,
            ) from None
        digest = (info.get("Descriptor") or {}).get("digest")
        return str(digest) if digest else None

    # --- containers ------------------------------------------------------------------------

    def run_container(  # pylint: disable=too-many-arguments
        self,
        image: str,
        name: str | None = None,
        ports: Mapping[int, tuple[str, int]] | None = None,
        env: Mapping[str, str] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        restart_policy: Mapping[str, Any] | None = None,
        command: Sequence[str] | None = None,
        network: str | None = None,
    ) -> str:
        """Start a detached container; ``ports`` maps container port -> (host ip, host port).

        ``network`` attaches it to that network instead of the default bridge (see ``adapters.reach``).
        """
        port_map = {f"{port}/tcp": binding for port, binding in (ports or {}).items()}
        container = self._call(
            "run container",
            lambda: self._client.containers.run(
                image,
                command=list(command) if command else None,
                name=name,
                ports=port_map,
                environment=dict(env or {}),
                labels=dict(labels or {}),
                restart_policy=dict(restart_policy) if restart_policy else None,
                network=network,
                detach=True,
            ),
        )
        return str(container.id)

    def inspect_container(self, ref: str) -> dict[str, Any] | None:
        """The engine's whole record of a container (by id, short id or name), ``None`` if there is none."""
        import docker  # pylint: disable=import-outside-toplevel

        try:
            return dict(self._call("inspect container", lambda: self._client.api.inspect_container(ref)))
        except docker.errors.NotFound:
            return None

    def container_address(self, container: str, network: str) -> str | None:
        """The container's IP address on ``network``; ``None`` when it has none (stopped, not attached)."""
        info = self.inspect_container(container) or {}
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        address = (networks.get(network) or {}).get("IPAddress")
        return str(address) if address else None

    def container_state(self, container: str) -> ContainerState:
        """Whether a container still runs, and how it ended if not (for a smoke test that waits)."""
        info = self._call("inspect container", lambda: self._client.api.inspect_container(container))
        state = info.get("State") or {}
        return ContainerState(
            status=str(state.get("Status", "")),
            running=bool(state.get("Running")),
            exit_code=int(state.get("ExitCode") or 0),
            error=str(state.get("Error") or ""),
            restart_count=int(info.get("RestartCount") or 0),
            image=str((info.get("Config") or {}).get("Image") or ""),
        )

    def find_container(self, name: str) -> ContainerState | None:
        """The state of the container called ``name``, or ``None`` when there is none."""
        import docker  # pylint: disable=import-outside-toplevel

        try:
            return self.container_state(name)
        except docker.errors.NotFound:
            return None

    def stop_container(self, container: str, timeout_s: int = 25) -> None:
        """Stop a container (SIGTERM, then SIGKILL after ``timeout_s``), keeping it for a later start."""
        self._call("stop container", lambda: self._client.api.stop(container, timeout=timeout_s))

    def start_container(self, container: str) -> None:
        self._call("start container", lambda: self._client.api.start(container))

    def rename_container(self, container: str, new_name: str) -> None:
        self._call("rename container", lambda: self._client.api.rename(container, new_name))

    def container_logs(self, container: str, tail: int | str = "all") -> str:
        """A container's stdout and stderr so far, decoded."""
        raw = self._call("container logs", lambda: self._client.api.logs(container, tail=tail))
        return raw.decode("utf-8", errors="replace")

    def container_uid(self, container: str) -> int:
        """The uid the container's main process runs as.

        ``Config.User`` can name a user by name (or be empty for root), and a minimal image may have no
        ``id`` binary, so read ``/proc/1/status`` from inside; the process list is the fallback.
        """
        result = self._call(
            "exec", lambda: self._client.api.exec_create(container, ["cat", "/proc/1/status"])
        )
        output = self._call("exec", lambda: self._client.api.exec_start(result["Id"]))
        exit_code = self._client.api.exec_inspect(result["Id"]).get("ExitCode")
        text = output.decode("utf-8", errors="replace") if isinstance(output, bytes) else str(output)
        match = re.search(r"^Uid:\s+(\d+)", text, re.MULTILINE)
        if exit_code == 0 and match:
            return int(match.group(1))
        return self._uid_from_top(container)

    def _uid_from_top(self, container: str) -> int:
        top = self._call("top", lambda: self._client.api.top(container, ps_args="-o uid,pid,comm"))
        titles = [title.upper() for title in top.get("Titles", [])]
        processes = top.get("Processes") or []
        if "UID" not in titles or not processes:
            raise ToolFailed(f"cannot tell which user container {container} runs as")
        return int(processes[0][titles.index("UID")])

    def remove_container(self, container: str, force: bool = True) -> None:
        """Remove a container by id or name; one that is already gone is not an error."""
        import docker  # pylint: disable=import-outside-toplevel

        try:
            self._call(
                "remove container", lambda: self._client.api.remove_container(container, force=force, v=True)
            )
        except docker.errors.NotFound:
            pass

    def containers_by_label(self, key: str, value: str) -> list[str]:
        """Ids of containers (running or not) labelled ``key=value``: the local deploy's releases."""
        found = self._call(
            "list containers",
            lambda: self._client.api.containers(all=True, filters={"label": f"{key}={value}"}),
        )
        return [str(item["Id"]) for item in found]

    # --- plumbing --------------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one engine call; a lost connection becomes ``EngineUnavailable``, an API error ``ToolFailed``.

        ``NotFound`` passes through untouched so callers that tolerate a missing object can catch it.
        """
        import docker  # pylint: disable=import-outside-toplevel
        import requests  # pylint: disable=import-outside-toplevel

        try:
            return call()
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as exc:
            raise ToolFailed(f"docker {what} failed: {_api_error_message(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailable(
                f"lost the Docker engine during {what}: {_first_line(exc)}", hint=_ENGINE_HINT
            ) from None

    @staticmethod
    def _chunks(
        stream: Iterator[Mapping[str, Any]], what: str, cancel: threading.Event | None
    ) -> Iterator[Mapping[str, Any]]:
        """The stream's chunks, stopping with ``Interrupted`` when the run is cancelled."""
        try:
            for chunk in stream:
                if cancel is not None and cancel.is_set():
                    raise Interrupted(f"docker {what} was stopped: the run was interrupted")
                yield chunk
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()


def _push_digest(chunk: Mapping[str, Any]) -> str | None:
    """The digest in a push chunk: ``aux.Digest``, or the ``TAG: digest: sha256:... size: N`` status."""
    aux = chunk.get("aux")
    if isinstance(aux, Mapping) and aux.get("Digest"):
        return str(aux["Digest"])
    match = _PUSH_DIGEST.search(str(chunk.get("status", "")))
    return match.group(1) if match else None


def _api_error_message(exc: Any) -> str:
    """The engine's explanation from an ``APIError`` (not docker-py's URL-laden wrapper text)."""
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
