"""Fixtures for the service tests: an app and a client over the session's model (``model_dir`` in
``tests/conftest.py``), the real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
# Hypothesis caches outside the work tree: a .hypothesis/ directory there trips pytest's collection.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "hypothesis-iris-service")
)
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


@pytest.fixture
def app(model_dir: Path) -> Flask:
    """A fresh app (its own metrics registry) over the session's model."""
    return create_app({"MODEL_DIR": str(model_dir), "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The Flask test client."""
    return app.test_client()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running production server (``python -m app.serve``) started by a test."""

    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM (what ECS sends), then wait for a graceful exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(model_dir: Path, log_path: Path, **env: str) -> Server:
    """Start ``python -m app.serve`` from the repository root on a free loopback port."""
    port = free_port()
    environ = {name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"}
    environ.update({"BIND": f"127.0.0.1:{port}", "MODEL_DIR": str(model_dir), **env})
    with open(log_path, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped by Server.stop
            [sys.executable, "-m", "app.serve"],
            cwd=REPO_ROOT,
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return Server(process, f"http://127.0.0.1:{port}", log_path)


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    """Poll ``/ready`` until it answers 200; fail with the server's output if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if requests.get(server.url + "/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"the server was not ready within {timeout}s:\n{server.log()}")


@pytest.fixture(scope="module")
def live_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The production server (``python -m app.serve``) on a free loopback port, ready."""
    server = start_server(model_dir, tmp_path_factory.mktemp("server") / "server.log")
    try:
        wait_ready(server)
        yield server
    finally:
        server.stop()
