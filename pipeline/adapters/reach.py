"""Where this process stands beside the Docker engine, and so how it reaches the containers it starts.

On the engine's host (a laptop, a CI machine) a container published on ``127.0.0.1:PORT`` answers on
this process's ``127.0.0.1``, and a registry on the host's loopback is this process's too. Inside a
container that shares only the engine's socket (Jenkins with ``/var/run/docker.sock`` mounted, on the
default bridge network) ``127.0.0.1`` is that container's own loopback: what the engine publishes on
the host is out of reach. There the pipeline starts its containers on a network its own container is
on and talks to them at their address on that network; the engine itself still reaches the host's
loopback registry, so pushes are verified through the engine (``GET /distribution/NAME/json``).

Modes (config ``docker.reach``):

- ``host``: containers are published on 127.0.0.1 and probed there.
- ``network``: containers join ``docker.network`` (by default a network of this process's own
  container) and are probed at their address on it, on the port they listen on.
- ``auto`` (default): ``network`` when this process runs in a container that the engine knows (and that
  is not on the host's network) or ``docker.network`` is set; ``host`` otherwise.

Finding "this process's own container": the engine bind-mounts ``/etc/hostname``, ``/etc/hosts`` and
``/etc/resolv.conf`` from ``/var/lib/docker/containers/<id>/``, which ``/proc/self/mountinfo`` shows
(cgroup v1 and v2 alike); ``/proc/self/cgroup`` and the hostname (the short id by default) are the
fallbacks. A candidate counts only when the engine knows a container by that id, so a process in a
container of some other engine (or a VM) is on the "host" side of this one.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import EnvironmentProblem

HOST = "host"
NETWORK = "network"
MODES = ("auto", HOST, NETWORK)

_MOUNT_ID = re.compile(r"/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)\b")
_CGROUP_ID = re.compile(r"(?:/docker/|docker-)([0-9a-f]{64})")
_HOSTNAME_ID = re.compile(r"[0-9a-f]{12}|[0-9a-f]{64}")


class Inspector(Protocol):
    """The one engine call detection needs (``DockerEngine.inspect_container``)."""

    def inspect_container(self, ref: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class Reach:
    """How containers started by this process are reached, and why (for ``doctor`` and the logs)."""

    mode: str
    network: str | None = None
    own_container: str | None = None
    reason: str = ""

    @property
    def in_container(self) -> bool:
        return self.own_container is not None

    @property
    def publishes(self) -> bool:
        """Containers are published on the engine host's loopback (``host``), not reached on a network."""
        return self.mode == HOST

    def loopback_is_hosts(self) -> bool:
        """Whether this process's 127.0.0.1 is the engine host's (a loopback registry is reachable)."""
        return self.own_container is None or self.publishes

    def describe(self) -> str:
        if self.publishes:
            return f"containers are published on 127.0.0.1 and probed there ({self.reason})"
        return (
            f"containers join network '{self.network}' and are probed at their address on it ({self.reason})"
        )


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def candidate_ids(mountinfo: str, cgroup: str, hostname: str) -> list[str]:
    """Ids this process's container may have, most trustworthy first (duplicates removed)."""
    found = _MOUNT_ID.findall(mountinfo) + _CGROUP_ID.findall(cgroup)
    if _HOSTNAME_ID.fullmatch(hostname.strip()):
        found.append(hostname.strip())
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class ProcessView:
    """What this process can read of itself; tests give their own."""

    mountinfo: Callable[[], str] = lambda: _read("/proc/self/mountinfo")
    cgroup: Callable[[], str] = lambda: _read("/proc/self/cgroup")
    hostname: Callable[[], str] = socket.gethostname


def own_container(engine: Inspector, view: ProcessView | None = None) -> Mapping[str, Any] | None:
    """The engine's record of the container this process runs in, or ``None`` (on the engine's host)."""
    view = view or ProcessView()
    for candidate in candidate_ids(view.mountinfo(), view.cgroup(), view.hostname()):
        info = engine.inspect_container(candidate)
        if info is not None:
            return info
    return None


def _networks(engine: Inspector, info: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(network mode, names of the networks) of a container; ``container:X`` follows X."""
    mode = str((info.get("HostConfig") or {}).get("NetworkMode") or "default")
    if mode.startswith("container:"):
        other = engine.inspect_container(mode.split(":", 1)[1])
        if other is not None:
            return _networks(engine, other)
    names = sorted(((info.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    return mode, names


def detect(
    engine: Inspector, mode: str = "auto", network: str = "", view: ProcessView | None = None
) -> Reach:
    """Decide how to reach the engine's containers from here (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"unknown reach mode {mode!r}")
    if mode == HOST:
        return Reach(HOST, reason="docker.reach=host")
    info = own_container(engine, view)
    own_id = str(info["Id"])[:12] if info else None
    if network:
        where = (
            f"this process runs in container {own_id}" if own_id else "this process runs on the engine's host"
        )
        return Reach(NETWORK, network, own_id, f"docker.network={network}; {where}")
    if info is None:
        if mode == NETWORK:
            raise EnvironmentProblem(
                "docker.reach=network, but this process does not run in a container of this engine",
                hint="name the network for its containers: --set docker.network=NAME (or docker.reach=auto)",
            )
        return Reach(HOST, reason="this process runs on the engine's host")
    net_mode, names = _networks(engine, info)
    if net_mode == "host":
        return Reach(HOST, own_container=own_id, reason=f"container {own_id} uses the host's network")
    preferred = "bridge" if net_mode == "default" else net_mode
    if not names:
        raise EnvironmentProblem(
            f"this process runs in container {own_id}, which is on no network others can join",
            hint="start it on a network (e.g. the default bridge) or set docker.network=NAME",
        )
    chosen = preferred if preferred in names else names[0]
    return Reach(NETWORK, chosen, own_id, f"this process runs in container {own_id} on network '{chosen}'")
