"""One run at a time per checkout (``pipeline/lock.py``): real processes, a real ``flock``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.lock import RunLock
from tests.conftest import ROOT, record_passes, run_cli

# Holds the run (and its lock) until the test creates `release` in the checkout, or 60 s have passed.
SLOW_SUITE = (
    "import pathlib, time\n\n"
    "def test_slow():\n"
    "    deadline = time.monotonic() + 60\n"
    "    while not pathlib.Path('release').exists() and time.monotonic() < deadline:\n"
    "        time.sleep(0.05)\n"
)


def start_run(repo: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    env.pop("PIPELINE_PROFILE", None)
    return subprocess.Popen(  # pylint: disable=consider-using-with  # waited for below
        [sys.executable, "-m", "pipeline", "run", "--stage", "test", "--set", "test.workers=1"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8"):
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {path}")


def test_a_second_run_is_refused_while_the_first_holds_the_checkout(make_repo) -> None:
    repo = make_repo({"pipeline.toml": "", "tests/test_slow.py": SLOW_SUITE})
    record_passes(repo, train={})
    first = start_run(repo)
    try:
        wait_for(repo / "reports" / "stages" / "test.log", "$ ")
        state_before = (repo / ".pipeline" / "state.json").read_text(encoding="utf-8")

        second = run_cli(["run", "--stage", "test"], repo)
        rollback = run_cli(["rollback"], repo)

        assert second.returncode == 2, second.stdout + second.stderr
        assert "another run of this checkout is in progress" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "python -m pipeline run --stage test" in second.stderr
        assert rollback.returncode == 2 and "another run of this checkout" in rollback.stderr
        assert (repo / ".pipeline" / "state.json").read_text(encoding="utf-8") == state_before
        (repo / "release").touch()
        out, _ = first.communicate(timeout=120)
        assert first.returncode == 0, out
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["status"] == "passed"
    assert run_cli(["run", "--stage", "test", "--dry-run"], repo).returncode == 0


def test_the_lock_of_a_killed_run_is_free_at_once(make_repo) -> None:
    repo = make_repo({"pipeline.toml": "", "tests/test_slow.py": SLOW_SUITE})
    record_passes(repo, train={})
    first = start_run(repo)
    wait_for(repo / "reports" / "stages" / "test.log", "$ ")
    first.send_signal(signal.SIGKILL)  # kill -9: no cleanup at all
    first.wait()
    assert "pid" in (repo / ".pipeline" / "run.lock").read_text(encoding="utf-8"), "the holder's note remains"

    with RunLock(repo / ".pipeline", "test"):
        note = json.loads((repo / ".pipeline" / "run.lock").read_text(encoding="utf-8"))
        assert note["pid"] == os.getpid() and note["command"] == "test"


def test_a_state_directory_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be", encoding="utf-8")
    (tmp_path / "pipeline.toml").write_text(f'[pipeline]\nstate_dir = "{blocker}"\n', encoding="utf-8")
    proc = run_cli(["run", "--stage", "lint"], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot open the run lock" in proc.stderr and "Traceback" not in proc.stderr
