"""The process adapter: a tool the pipeline started does not outlive a pipeline killed with SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

KEEPS_RUNNING = "import time; time.sleep(120)  # a tool that would run long"


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in found.split()]


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_tool_dies_with_a_pipeline_killed_by_sigkill() -> None:
    parent_code = (
        "import sys; from pipeline.adapters import process; "
        f"process.run([sys.executable, '-c', {KEEPS_RUNNING!r}], log=lambda line: None)"
    )
    parent = subprocess.Popen(  # pylint: disable=consider-using-with  # killed below
        [sys.executable, "-c", parent_code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        deadline = time.monotonic() + 20
        while not (tools := _children(parent.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tools, "the tool did not start"
        time.sleep(0.3)  # setpriv has exec'd the tool

        parent.kill()  # kill -9: no handler runs, nothing is cleaned up by the pipeline
        parent.wait()

        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in tools) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in tools), "the tool outlived the pipeline"
    finally:
        parent.kill()
        for pid in _children(parent.pid):
            os.kill(pid, 9)
