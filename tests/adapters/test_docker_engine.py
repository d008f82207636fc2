"""DockerEngine against the real engine: builds, labels, containers, and an engine that is not there."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.adapters.docker_containers import free_port
from pipeline.adapters.docker_engine import DockerEngine
from pipeline.adapters.docker_images import context_files, dockerignore_patterns, split_image_ref
from pipeline.errors import EngineUnavailable, Interrupted, ToolFailed

pytestmark = pytest.mark.integration


def _write_dockerfile(tmp_path: Path, body: str) -> Path:
    """A context whose Dockerfile starts like the service's: ``FROM`` the ``PYTHON_IMAGE`` build argument."""
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\n" + body, encoding="utf-8")
    return context


def test_the_context_sent_is_what_dockerignore_leaves(tmp_path: Path) -> None:
    context = _write_dockerfile(tmp_path, "")
    (context / ".dockerignore").write_text("# comment\nsecret\n\n*.log\n", encoding="utf-8")
    for rel in ("app.py", "secret/key", "run.log"):
        (context / rel).parent.mkdir(exist_ok=True)
        (context / rel).write_text("x", encoding="utf-8")

    patterns = dockerignore_patterns(context)

    assert patterns == ["secret", "*.log"]
    assert context_files(context, patterns, "Dockerfile") == {"Dockerfile", ".dockerignore", "app.py"}
    assert patterns == ["secret", "*.log"]  # docker-py adds the Dockerfile to a list of its own
    assert dockerignore_patterns(tmp_path) == []


def test_connect_to_missing_engine_says_how_to_start_one() -> None:
    with pytest.raises(EngineUnavailable) as caught:
        DockerEngine.connect(base_url="unix:///nonexistent.sock")
    assert "does not answer" in str(caught.value)
    assert "testbed.sh up" in str(caught.value)


def test_build_tags_and_labels(
    base_image: str, engine: DockerEngine, tmp_path: Path, log: Any, unique: str, image_cleanup: list[str]
) -> None:
    context = _write_dockerfile(tmp_path, "RUN python3 -c \"print('hello-from-build')\"\n")
    tags = [f"testbed/build-ok:{unique}", f"testbed/build-ok:{unique}-second"]
    image_cleanup.extend(tags)
    progress: list[str] = []

    image_id = engine.build(
        context,
        "Dockerfile",
        tags,
        buildargs={"PYTHON_IMAGE": base_image},
        labels={"org.example.inputs-hash": unique},
        log=log,
        progress=progress.append,
    )

    assert image_id.startswith("sha256:")
    assert "hello-from-build" in log.text
    assert any(line.startswith("Step ") for line in progress)
    assert engine.image_id(tags[0]) == image_id == engine.image_id(tags[1])
    assert engine.image_labels(image_id)["org.example.inputs-hash"] == unique


def test_failing_run_raises_with_the_engines_error(
    base_image: str, engine: DockerEngine, tmp_path: Path, log: Any, unique: str
) -> None:
    context = _write_dockerfile(tmp_path, "RUN echo about-to-fail && exit 3\n")

    with pytest.raises(ToolFailed) as caught:
        engine.build(
            context, "Dockerfile", [f"testbed/build-fails:{unique}"], {"PYTHON_IMAGE": base_image}, log=log
        )

    assert "returned a non-zero code: 3" in str(caught.value)
    assert "about-to-fail" in log.text
    assert engine.image_id(f"testbed/build-fails:{unique}") is None


def test_missing_base_image_fails_the_build(
    engine: DockerEngine, tmp_path: Path, log: Any, unique: str
) -> None:
    context = _write_dockerfile(tmp_path, "RUN true\n")

    with pytest.raises(ToolFailed) as caught:
        engine.build(
            context,
            "Dockerfile",
            [f"testbed/no-base:{unique}"],
            {"PYTHON_IMAGE": f"local/missing:{unique}"},
            log=log,
        )

    assert "docker build failed" in str(caught.value)


def _wait_http(url: str, timeout_s: float = 20.0) -> requests.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return requests.get(url, timeout=1)
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_container_runs_publishes_and_reports_its_user(
    base_image: str, engine: DockerEngine, tmp_path: Path, log: Any, unique: str, image_cleanup: list[str]
) -> None:
    context = _write_dockerfile(tmp_path, "RUN useradd --uid 10001 --no-create-home app\nUSER app\n")
    tag = f"testbed/non-root:{unique}"
    image_cleanup.append(tag)
    engine.build(context, "Dockerfile", [tag], {"PYTHON_IMAGE": base_image}, log=log)
    port = free_port()
    name = f"testbed-run-{unique}"
    container = engine.run_container(
        tag, name, ports={5000: ("127.0.0.1", port)}, command=["python3", "-m", "http.server", "5000"]
    )
    try:
        assert _wait_http(f"http://127.0.0.1:{port}/").status_code == 200
        assert engine.container_uid(container) == 10001
        assert engine.container_state(name).running
        assert "GET /" in engine.container_logs(container)
    finally:
        engine.remove_container(name)
    engine.remove_container(name)  # already gone: tolerated
    assert engine.containers_by_label("never.used", unique) == []


def test_container_of_base_image_runs_as_root(base_image: str, engine: DockerEngine, unique: str) -> None:
    container = engine.run_container(base_image, f"testbed-root-{unique}", command=["sleep", "30"])
    try:
        assert engine.container_uid(container) == 0
    finally:
        engine.remove_container(container)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("localhost:5000/svc:1.2", ("localhost:5000/svc", "1.2")),
        ("localhost:5000/svc", ("localhost:5000/svc", "latest")),
        ("svc", ("svc", "latest")),
        ("org/svc:abc", ("org/svc", "abc")),
    ],
)
def test_split_image_ref(ref: str, expected: tuple[str, str]) -> None:
    assert split_image_ref(ref) == expected


def test_an_interrupted_build_stops_at_once_even_in_a_silent_step(
    base_image: str, engine: DockerEngine, tmp_path: Path, log: Any, unique: str
) -> None:
    """``RUN sleep 120`` prints nothing; the cancel hangs up on the engine rather than waiting for output."""
    context = _write_dockerfile(tmp_path, f"RUN echo {unique} && sleep 120\n")
    cancel = threading.Event()
    cancelled_at: list[float] = []

    def cancel_once_the_step_runs() -> None:
        deadline = time.monotonic() + 60
        while unique not in log.text and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        cancelled_at.append(time.monotonic())
        cancel.set()

    threading.Thread(target=cancel_once_the_step_runs, daemon=True).start()
    with pytest.raises(Interrupted):
        engine.build(
            context,
            "Dockerfile",
            [f"testbed/build-cancel:{unique}"],
            buildargs={"PYTHON_IMAGE": base_image},
            log=log,
            cancel=cancel,
        )
    assert cancelled_at and time.monotonic() - cancelled_at[0] < 1.0  # was up to 15 s and more
    # The engine saw the client go and stopped the step: no container of it keeps sleeping. It may take the
    # engine a while under load (beside three other test processes it once needed more than 15 s); 45 s is
    # still far short of the step's own 120 s.
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and _sleeping_build_containers(engine, unique):
        time.sleep(0.5)
    assert not _sleeping_build_containers(engine, unique), "the build step kept running"


def _sleeping_build_containers(engine: DockerEngine, unique: str) -> list[str]:
    return [
        c["Id"] for c in engine.client.api.containers() if unique in " ".join(c.get("Command", "").split())
    ]
