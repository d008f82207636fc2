"""Containers in the Docker engine: the ones the smoke and deploy stages run, inspect and clean up."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.adapters.docker_core import DockerConnection
from pipeline.adapters.docker_streams import api_error_message
from pipeline.errors import ToolFailed


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the kernel picks it), for publishing a container."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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


class ContainersMixin(DockerConnection):
    """Run, inspect, stop, start, rename and remove containers."""

    def run_container(
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
        The image is pulled when the engine lacks it. Created, then started: a container that cannot
        start (a port taken, a bad command) is removed again, so it never holds its name, and the
        engine's own words make the ``ToolFailed`` (an image that cannot be pulled included).
        """
        import docker

        port_map = {f"{port}/tcp": binding for port, binding in (ports or {}).items()}
        what = f"docker run {image}" + (f" as {name}" if name else "")
        options = {
            "command": list(command) if command else None,
            "name": name,
            "ports": port_map,
            "environment": dict(env or {}),
            "labels": dict(labels or {}),
            "restart_policy": dict(restart_policy) if restart_policy else None,
            "network": network,
        }
        try:
            try:
                container = self._call(
                    "create container", lambda: self._client.containers.create(image, **options)
                )
            except docker.errors.ImageNotFound:
                self._call("pull image", lambda: self._client.images.pull(image))
                container = self._call(
                    "create container", lambda: self._client.containers.create(image, **options)
                )
        except docker.errors.NotFound as exc:
            raise ToolFailed(f"{what} failed: {api_error_message(exc)}") from None
        except ToolFailed as exc:
            raise ToolFailed(f"{what} failed: {exc.message}", hint=exc.hint) from None
        try:
            self._call("start container", container.start)
        except (ToolFailed, docker.errors.NotFound) as exc:
            self.remove_container(str(container.id))
            message = exc.message if isinstance(exc, ToolFailed) else api_error_message(exc)
            raise ToolFailed(f"{what} failed to start: {message}") from None
        return str(container.id)

    def inspect_container(self, ref: str) -> dict[str, Any] | None:
        """The engine's whole record of a container (by id, short id or name), ``None`` if there is none."""
        import docker

        try:
            return dict(self._call("inspect container", lambda: self._client.api.inspect_container(ref)))
        except docker.errors.NotFound:
            return None

    def published_port(self, container: str, port: int) -> int | None:
        """The host port a container's ``port``/tcp is published on, ``None`` when it is not."""
        info = self.inspect_container(container) or {}
        bindings = ((info.get("HostConfig") or {}).get("PortBindings") or {}).get(f"{port}/tcp") or []
        host_port = bindings[0].get("HostPort") if bindings else None
        return int(host_port) if host_port else None

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
        import docker

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
        raw: bytes = self._call("container logs", lambda: self._client.api.logs(container, tail=tail))
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
        import docker

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
