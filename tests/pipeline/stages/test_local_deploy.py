"""The local deploy target never takes the service down: a new release is tried beside the live one first.

Real engine and registry; the releases are tiny images from the test bed's base image, a few lines of
Python that answer ``/ready`` (200, or 503 for one that never becomes ready), deployed by digest through
``python -m pipeline run --stage deploy --set deploy.image=...`` as an operator would.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from pipeline.adapters.docker_containers import free_port
from pipeline.adapters.docker_engine import DockerEngine
from tests.conftest import interrupt_cli, run_cli

pytestmark = pytest.mark.integration

SERVER = """\
import http.server, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 has no default action for SIGTERM
STATUS, READY_AT = int(sys.argv[1]), time.monotonic() + float(sys.argv[3])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = STATUS if time.monotonic() >= READY_AT else 503
        self.send_response(ready if self.path == "/ready" else 200)
        self.end_headers()
        self.wfile.write(sys.argv[2].encode())
http.server.ThreadingHTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
"""


@dataclass
class Site:
    root: Path
    registry: str
    port: int
    name: str

    def deploy(self, image: str, *sets: str) -> subprocess.CompletedProcess[str]:
        args = ["run", "--stage", "deploy", "--set", f"deploy.image={image}", *self.sets(*sets)]
        return run_cli(args, self.root, timeout=300)

    def sets(self, *extra: str) -> list[str]:
        items = [
            f"deploy.local.port={self.port}",
            f"deploy.local.container_name={self.name}",
            "deploy.local.ready_timeout_s=20",
            *extra,
        ]
        return [arg for item in items for arg in ("--set", item)]

    def error(self) -> str:
        doc = json.loads((self.root / "reports" / "pipeline.json").read_text(encoding="utf-8"))
        return str(doc["stages"][0]["error"])

    def answer(self, port: int | None = None) -> str:
        return requests.get(f"http://127.0.0.1:{port or self.port}/", timeout=5).text


@pytest.fixture
def site(tmp_path: Path, start_registry, engine: DockerEngine) -> Iterator[Site]:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pipeline.toml").write_text("", encoding="utf-8")
    registry = start_registry()
    found = Site(root, registry.address, free_port(), f"deploy-test-{uuid.uuid4().hex[:8]}")
    yield found
    for suffix in ("", "-previous", "-candidate"):
        engine.remove_container(found.name + suffix)


def release(  # pylint: disable=too-many-arguments
    engine: DockerEngine,
    base_image: str,
    site: Site,
    tmp_path: Path,
    text: str,
    ready: int = 200,
    *,
    ready_after_s: float = 0.0,
) -> str:
    """A tiny service image pushed to the site's registry, answering ``ready`` on /ready from
    ``ready_after_s`` after its start on (503 before); its ``repo@sha256:...``."""
    context = tmp_path / f"ctx-{text}"
    context.mkdir()
    (context / "server.py").write_text(SERVER, encoding="utf-8")
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\nCOPY server.py /server.py\n"
        f'CMD ["python3", "/server.py", "{ready}", "{text}", "{ready_after_s}"]\n',
        encoding="utf-8",
    )
    repo = f"{site.registry}/deploy-test"
    engine.build(context, "Dockerfile", [f"{repo}:{text}"], log=lambda _line: None)
    digest = engine.push(repo, text, log=lambda _line: None)
    return f"{repo}@{digest}"


@pytest.fixture
def live(engine: DockerEngine, base_image: str, site: Site, tmp_path: Path) -> str:
    """Release ``one`` is live."""
    image = release(engine, base_image, site, tmp_path, "one")
    proc = site.deploy(image)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert site.answer() == "one"
    return image


def test_an_image_that_cannot_be_pulled_leaves_the_live_release_serving(
    site: Site, live: str, engine: DockerEngine
) -> None:
    missing = f"{site.registry}/deploy-test@sha256:{'0' * 64}"
    proc = site.deploy(missing)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "internal error" not in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert f"docker run {missing}" in site.error() and "failed" in site.error()
    assert site.answer() == "one"
    assert engine.container_state(site.name).image == live
    assert engine.find_container(f"{site.name}-candidate") is None


def test_a_release_that_never_gets_ready_is_never_swapped_in(
    site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    unready = release(engine, base_image, site, tmp_path, "two", ready=503)
    proc = site.deploy(unready)
    assert proc.returncode == 1
    assert "never became ready" in site.error() and "the live release was not touched" in site.error()
    assert site.answer() == "one" and engine.container_state(site.name).image == live


def test_a_port_taken_at_the_swap_puts_the_old_release_back(
    site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    second = release(engine, base_image, site, tmp_path, "two")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        proc = site.deploy(second, f"deploy.local.port={taken}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failed to start" in site.error() and f"rolled back to {live}" in site.error()
    assert site.answer() == "one" and engine.container_state(site.name).image == live
    assert engine.find_container(f"{site.name}-previous") is None


def test_sigterm_while_the_new_release_starts_leaves_the_old_one_serving(
    site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    unready = release(engine, base_image, site, tmp_path, "three", ready=503)
    run = interrupt_cli(
        ["run", "--stage", "deploy", "--set", f"deploy.image={unready}", *site.sets()],
        site.root,
        log=site.root / "reports" / "stages" / "deploy.log",
        ready="waiting for",
        settle_s=1.0,
        signum=signal.SIGTERM,
    )
    assert run.returncode == 130, run.output
    assert run.seconds_to_exit < 15
    assert "the live release was not touched" in site.error()
    assert site.answer() == "one" and engine.container_state(site.name).image == live
    assert engine.find_container(f"{site.name}-candidate") is None


def _swap_args(site: Site, image: str) -> dict:
    """``interrupt_cli`` arguments for a deploy of ``image`` signalled inside its swap: the live release
    stopped and aside, the new one starting (``image`` takes 3 s to be ready)."""
    return {
        "args": ["run", "--stage", "deploy", "--set", f"deploy.image={image}", *site.sets()],
        "cwd": site.root,
        "log": site.root / "reports" / "stages" / "deploy.log",
        "ready": "keeping it aside",
        "settle_s": 1.0,
    }


def test_a_second_sigterm_during_the_swap_does_not_stop_the_put_back(
    site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    """Jenkins signals every process of the build, so the pipeline may get SIGTERM twice in a row: the
    second must not cut short the put-back that the first started."""
    slow = release(engine, base_image, site, tmp_path, "slow", ready_after_s=3.0)
    run = interrupt_cli(**_swap_args(site, slow), signum=signal.SIGTERM, again_after_s=0.1)
    assert run.returncode == 130, run.output
    assert "SIGTERM noted" in run.output
    log = (site.root / "reports" / "stages" / "deploy.log").read_text(encoding="utf-8")
    assert f"deploy of {slow} interrupted; rolled back to {live}" in site.error(), run.output + log
    assert site.answer() == "one" and engine.container_state(site.name).image == live
    for leftover in ("-previous", "-candidate"):
        assert engine.find_container(site.name + leftover) is None


class DroppingProxy:
    """The engine's socket on a TCP port, with one fault: a connection that sends
    ``POST .../containers/create`` for the container called ``drop`` is closed without an answer (what a lost
    engine connection looks like to docker-py). Every other request goes through."""

    def __init__(self, drop: str) -> None:
        self.pattern = re.compile(
            rb"POST /[^ ]*containers/create\?name=" + re.escape(drop.encode()) + rb"[ &]"
        )
        self.dropped = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect("/var/run/docker.sock")
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, inspect: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if inspect and self.pattern.search(chunk):
                    self.dropped += 1
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.server.close()


def test_a_lost_engine_connection_during_the_swap_puts_the_old_release_back(
    site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    """The engine's connection drops exactly when the new release is created under the service's name: the
    old release, already stopped aside, is put back at once (the error says so), never left down."""
    second = release(engine, base_image, site, tmp_path, "two")
    proxy = DroppingProxy(site.name)
    try:
        args = ["run", "--stage", "deploy", "--set", f"deploy.image={second}", *site.sets()]
        proc = run_cli(args, site.root, env={"DOCKER_HOST": f"tcp://127.0.0.1:{proxy.port}"})
    finally:
        proxy.close()
    assert proxy.dropped == 1, proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    assert "lost the Docker engine" in site.error() and f"rolled back to {live}" in site.error()
    assert site.answer() == "one" and engine.container_state(site.name).image == live
    assert engine.find_container(f"{site.name}-previous") is None


@pytest.mark.parametrize("command", ["status", "rollback", "deploy"])
def test_a_deploy_killed_during_its_swap_is_undone_by_the_next_command(
    command: str, site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    """SIGKILL (Jenkins' follow-up to SIGTERM) in the middle of the swap: the old release is stopped aside
    and nobody is left to put it back. The next command that looks at the target does, and says so."""
    slow = release(engine, base_image, site, tmp_path, "slow", ready_after_s=3.0)
    run = interrupt_cli(**_swap_args(site, slow), signum=signal.SIGKILL)
    assert run.returncode == -signal.SIGKILL
    assert engine.find_container(f"{site.name}-previous") is not None, "killed inside the swap"

    if command == "deploy":
        proc = site.deploy(live)
        said = (site.root / "reports" / "stages" / "deploy.log").read_text(encoding="utf-8")
    else:
        # status takes no --set: the site's names come from the environment, as in CI
        names = {
            "PIPELINE_DEPLOY__LOCAL__CONTAINER_NAME": site.name,
            "PIPELINE_DEPLOY__LOCAL__PORT": str(site.port),
        }
        proc = run_cli([command], site.root, env=names)
        said = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # "of IMAGE" when the new release's container was created before the kill (it depends on the timing)
    assert f"cut short during its swap was undone: rolled back to {live}" in said, said
    assert f"a deploy of {slow} cut short" in said or "a deploy cut short" in said, said
    assert site.answer() == "one" and engine.container_state(site.name).image == live
    assert engine.find_container(f"{site.name}-previous") is None


@pytest.mark.usefixtures("live")
def test_a_good_release_replaces_the_live_one(
    site: Site, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    second = release(engine, base_image, site, tmp_path, "two")
    proc = site.deploy(second)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert site.answer() == "two" and engine.container_state(site.name).image == second
    for leftover in ("-previous", "-candidate"):
        assert engine.find_container(site.name + leftover) is None


def test_rollback_puts_the_release_before_back_and_refuses_past_the_first(
    site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    second = release(engine, base_image, site, tmp_path, "two")
    assert site.deploy(second).returncode == 0

    back = run_cli(["rollback", *site.sets()], site.root)
    first = run_cli(["rollback", *site.sets()], site.root)

    assert back.returncode == 0, back.stdout + back.stderr
    assert f"rolled back from {second} to {live}" in back.stdout
    assert site.answer() == "one"
    assert first.returncode == 2
    assert (
        "was the first release of container" in first.stderr and f"docker rm -f {site.name}" in first.stderr
    )
    assert site.answer() == "one"


def test_rollback_refuses_when_someone_else_replaced_the_container(
    site: Site, live: str, engine: DockerEngine, base_image: str, tmp_path: Path
) -> None:
    second = release(engine, base_image, site, tmp_path, "two")
    assert site.deploy(second).returncode == 0
    engine.remove_container(site.name)
    engine.run_container(live, name=site.name, ports={5000: ("127.0.0.1", site.port)})  # by hand

    result = run_cli(["rollback", *site.sets()], site.root)

    assert result.returncode == 2
    assert f"runs {live}, not {second}" in result.stderr and "not rolled back" in result.stderr
    assert engine.container_state(site.name).image == live
