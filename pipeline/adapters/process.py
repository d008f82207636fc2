"""Run an outside command, streaming its output line by line to a log.

The one place the pipeline starts child processes. Each child gets its own process group so a
timeout or Ctrl-C stops the whole tree it started, not just the first process. Where util-linux's
``setpriv`` is on PATH (Debian, the Jenkins image), the child is also started with a parent-death signal:
if the pipeline itself is killed (``kill -9``, an agent lost), the kernel kills the tool too instead of
leaving it running as an orphan.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import secret_env
from pipeline.errors import Interrupted, StageTimeout, ToolNotFound

LineSink = Callable[[str], None]

_GRACE_S = 5.0
# PR_SET_PDEATHSIG through setpriv(1): the kernel sends SIGKILL to the tool when the pipeline dies.
_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT: tuple[str, ...] = (_SETPRIV, "--pdeathsig", "KILL", "--") if _SETPRIV else ()


@dataclass(frozen=True)
class ProcessResult:
    """What a finished command left: its exit code and its combined output."""

    argv: tuple[str, ...]
    returncode: int
    output: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def last_line(self) -> str:
        """The output's last line that is not blank (a CLI's closing error or summary), or ""."""
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""


def which(tool: str, path: str | None = None) -> str | None:
    """Where ``tool`` is on PATH (or ``None``)."""
    return shutil.which(tool, path=path)


def find_tool(tool: str) -> str | None:
    """``tool`` on PATH, else beside this interpreter (a venv's ``bin/`` when it is not activated)."""
    found = which(tool)
    if found:
        return found
    beside = Path(sys.executable).parent / tool
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def version_line(argv: list[str], *, timeout_s: float = 20) -> str | None:
    """The first line a tool prints of its version (``tool --version``): stdout, else stderr; "" when it
    prints nothing, ``None`` when it cannot be run or does not end in ``timeout_s``."""
    try:
        out = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=secret_env.without_secrets(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else ""


def run(
    argv: Sequence[str],
    *,
    log: LineSink,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
    hint: str | None = None,
) -> ProcessResult:
    """Run ``argv`` to completion and return its result; a non-zero exit is not an exception.

    The process gets ``env`` (default: this one's environment) without credentials
    (``secret_env.without_secrets``). Raises ``ToolNotFound`` when the executable is missing, ``StageTimeout``
    past ``timeout_s`` and ``Interrupted`` when ``cancel`` is set; in both last cases the process group is
    stopped first.
    """
    argv = [str(a) for a in argv]
    env = secret_env.without_secrets(env)
    search_path = env.get("PATH")
    if os.sep not in argv[0] and which(argv[0], search_path) is None:
        raise ToolNotFound(argv[0], hint=hint)
    if os.sep in argv[0] and not os.access(argv[0], os.X_OK):  # setpriv would start and then fail (127)
        raise ToolNotFound(argv[0], hint=hint)
    started = time.monotonic()
    log(f"$ {' '.join(argv)}")
    try:
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [*_DIE_WITH_PARENT, *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ToolNotFound(argv[0], hint=hint) from exc

    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            log(line)

    reader = threading.Thread(target=pump, name=f"pump-{os.path.basename(argv[0])}", daemon=True)
    reader.start()
    deadline = started + timeout_s if timeout_s else None
    while True:
        try:
            proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancel is not None and cancel.is_set():
            _stop(proc)
            reader.join(timeout=_GRACE_S)
            raise Interrupted(f"'{argv[0]}' was stopped: the run was interrupted")
        if deadline is not None and time.monotonic() > deadline:
            _stop(proc)
            reader.join(timeout=_GRACE_S)
            raise StageTimeout(
                f"'{argv[0]}' ran past its timeout of {timeout_s:g} s and was stopped",
                hint="raise the stage's timeout in pipeline.toml [timeouts] if this is expected",
            )
    reader.join(timeout=_GRACE_S)
    return ProcessResult(tuple(argv), proc.returncode, "\n".join(lines), time.monotonic() - started)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the process group, then SIGKILL it after a grace period."""
    for sig, wait_s in ((signal.SIGTERM, _GRACE_S), (signal.SIGKILL, _GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
