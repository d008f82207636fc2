"""A second Docker engine on this machine, as another agent's: its own ``dockerd`` with its own data root,
exec root (and so its own containerd), socket and config file, started once a session and stopped after it.
It holds nothing of the first engine's but the base image (``docker save | docker load``: an agent pulls its
base image from Docker Hub, which the test bed cannot reach).

Its default bridge is one of its own (``dkr2-...``, made here and removed after): with ``--bridge=none``,
dockerd 20.10 deletes the interface ``docker0`` when it starts (``removeDefaultBridgeInterface`` in
``daemon/daemon_unix.go``), which is the first engine's. No iptables rules: it pulls and builds images, and
runs no container that must be reached."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 60
BRIDGE_ADDRESS = "10.231.77.1/24"


def _answers(host: str) -> bool:
    probe = subprocess.run(
        ["docker", "-H", host, "info", "--format", "{{.ID}}"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def _make_bridge(name: str) -> None:
    for args in (
        ["link", "add", "name", name, "type", "bridge"],
        ["addr", "add", BRIDGE_ADDRESS, "dev", name],
        ["link", "set", name, "up"],
    ):
        subprocess.run(["ip", *args], capture_output=True, check=True)


@pytest.fixture(scope="session")
def second_engine() -> Iterator[str]:
    """The second engine's ``DOCKER_HOST``, with the base image (``PIPELINE_IMAGE__BASE``) loaded."""
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is missing: bash scripts/testbed.sh install")
    # Short: a unix socket's path has room for 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="engine2-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    bridge = f"dkr2-{root.name[-6:]}"
    config = root / "daemon.json"  # not /etc/docker/daemon.json, the first engine's
    config.write_text("{}\n", encoding="utf-8")
    log = (root / "dockerd.log").open("w")
    proc = None
    try:
        _make_bridge(bridge)
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [
                "dockerd",
                "--host",
                host,
                "--data-root",
                str(root / "data"),
                "--exec-root",
                str(root / "exec"),
                "--pidfile",
                str(root / "dockerd.pid"),
                "--config-file",
                str(config),
                f"--bridge={bridge}",
                "--iptables=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(host):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the second engine did not start: {(root / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.5)
        base = os.environ.get("PIPELINE_IMAGE__BASE", "python:3.11-slim")
        with subprocess.Popen(["docker", "save", base], stdout=subprocess.PIPE) as saved:
            subprocess.run(
                ["docker", "-H", host, "load", "-q"], stdin=saved.stdout, capture_output=True, check=True
            )
        assert saved.returncode == 0, f"docker save {base} failed"
        yield host
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()
        subprocess.run(["umount", "-R", str(root / "data")], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
