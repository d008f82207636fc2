"""Fixtures shared by the whole suite: the repository root and small throw-away repositories."""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipeline.adapters.docker_containers import free_port

if TYPE_CHECKING:
    from model_training import TrainingResult

ROOT = Path(__file__).resolve().parent.parent


def hermetic_environ() -> dict[str, str]:
    """What keeps the suite off what the user has running: set for this process and every pipeline it starts.

    ``scripts/run-local.sh`` leaves the service deployed as container ``iris-classifier`` on port 8000, its
    image tagged ``localhost:5000/iris-classifier`` in the engine, and Trivy's cache in ``~/.cache``. A
    pipeline a test runs with the defaults would read that service as its champion, replace that container
    or retag that image. So every test process gets its own container name, port and image repository (per
    pytest-xdist worker: two workers never share one), and its tools their own cache folder under
    ``.testbed/`` (Trivy's and Go's caches follow ``XDG_CACHE_HOME``). A test that sets these keys itself
    (``--set``) still wins; one that needs the documented defaults deletes the variables (``monkeypatch``).
    """
    run = os.environ.get("IRIS_TEST_RUN") or uuid.uuid4().hex[:8]  # the same in every xdist worker
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    name = f"iris-test-{run}-{worker}"
    return {
        "IRIS_TEST_RUN": run,
        "PIPELINE_DEPLOY__LOCAL__CONTAINER_NAME": name,
        "PIPELINE_DEPLOY__LOCAL__PORT": str(free_port()),
        "PIPELINE_IMAGE__REPOSITORY": name,
        "XDG_CACHE_HOME": str(ROOT / ".testbed" / "cache"),
    }


HERMETIC = hermetic_environ()
os.environ.update(HERMETIC)

pytest_plugins = (
    "tests.support.realtools",
    "tests.support.browser",
    "tests.support.s3",
    "tests.support.second_engine",
)

# The stages of the README's "Stages", in order: what `list`, the registry and the reports must agree on.
README_STAGES = (
    "lint",
    "train",
    "promotion",
    "test",
    "trivy-fs",
    "build",
    "trivy-image",
    "smoke",
    "push",
    "deploy",
)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def write_tree(base: Path, files: dict[str, str]) -> Path:
    """Create ``files`` (path -> text, dedented) under ``base``."""
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return base


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """A fresh directory holding the given files, a pipeline.toml among them."""

    def make(files: dict[str, str]) -> Path:
        return write_tree(tmp_path / "repo", files)

    return make


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline ARGS`` as a real subprocess, not on a terminal."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("PIPELINE_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class InterruptedRun:
    """What ``python -m pipeline`` did after SIGINT."""

    returncode: int
    output: str  # stdout and stderr together
    seconds_to_exit: float


def interrupt_cli(
    args: list[str],
    cwd: Path,
    *,
    log: Path,
    ready: str,
    settle_s: float = 0.0,
    env: dict[str, str] | None = None,
    signum: int = signal.SIGINT,
    again_after_s: float | None = None,
) -> InterruptedRun:
    """``python -m pipeline ARGS`` as a real subprocess, sent SIGINT (Ctrl-C; or ``signum``, e.g. Jenkins'
    SIGTERM) once ``log`` contains ``ready`` (and ``settle_s`` more seconds have passed); the same signal
    once more ``again_after_s`` later when given (an abort rarely comes as one signal)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", **(env or {})}
    full_env.pop("PIPELINE_PROFILE", None)
    log.unlink(missing_ok=True)  # an earlier run's log may hold ``ready`` already: wait for this run's
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # signalled, then communicate()
        [sys.executable, "-c", _WITH_CTRL_C, *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ready not in (log.read_text("utf-8") if log.exists() else ""):
            time.sleep(0.1)
        time.sleep(settle_s)
        started = time.monotonic()
        proc.send_signal(signum)
        if again_after_s is not None:
            time.sleep(again_after_s)
            proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # never leave a run behind when the test fails
            proc.kill()
            proc.communicate()
    return InterruptedRun(proc.returncode, out, time.monotonic() - started)


# ``python -m pipeline ARGS`` with Python's own SIGINT handler: a suite started from a shell with '&' inherits
# SIGINT ignored, and so would the child, but Ctrl-C is what interrupt_cli tests.
_WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'pipeline'; runpy.run_module('pipeline', run_name='__main__', alter_sys=True)"
)


@pytest.fixture
def ctrl_c_works() -> Iterator[None]:
    """Python's own SIGINT handler for the test, even when the suite was started with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def record_passes(repo: Path, **stages: dict) -> None:
    """Write ``repo``'s run state as if each named stage (``trivy_fs`` for ``trivy-fs``) had just passed
    for the repository's inputs as they are now, leaving the given outputs: what a real earlier run
    records, so a stage selected alone finds its prerequisites fresh."""
    from pipeline import cache, planning
    from pipeline import config as config_mod
    from pipeline.stages import BY_NAME, ORDER
    from pipeline.state import RunState, StageRecord

    cfg = config_mod.load(repo, environ=dict(os.environ))  # the hermetic settings the run will see
    state = RunState.load(cfg.state_file)
    named = {name.replace("_", "-"): outputs for name, outputs in stages.items()}
    for name, outputs in named.items():
        state.stages[name] = StageRecord("passed", "t", "r0", outputs=outputs)
    fingerprinter = cache.Fingerprinter(repo)
    for name in (n for n in ORDER if n in named):
        inputs = planning.fingerprint(BY_NAME[name], cfg, state, fingerprinter)
        state.stages[name] = StageRecord(
            "passed", "t", "r0", outputs=named[name], inputs=inputs, key=cache.key(inputs)
        )
    state.save()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """One real training run for the whole session, for tests that only read it.

    Under pytest-xdist the workers share it: the first to get here trains (under coverage, in the test stage,
    that costs seconds of CPU) while the others wait on the lock, then read what it left.
    """
    from model_training import run_training

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return run_training(tmp_path_factory.mktemp("trained") / "model")
    shared = tmp_path_factory.getbasetemp().parent  # this session's, the same for all its workers
    with (shared / "trained.lock").open("w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "trained.pickle"
        if not done.exists():
            done.write_bytes(pickle.dumps(run_training(shared / "trained" / "model")))
        result: TrainingResult = pickle.loads(done.read_bytes())
    return result


@pytest.fixture(scope="session")
def model_dir(trained: TrainingResult) -> Path:
    """The directory of the session's trained model: read it, never change it."""
    return trained.output_dir
