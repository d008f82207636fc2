"""One run at a time per checkout: an exclusive lock on ``.pipeline/run.lock`` for the whole run.

Two runs of one checkout at once would overwrite each other's run state and reports and race each
other's deploys. The lock is ``flock(2)`` on a file in the state directory, so the kernel releases it
when its holder exits, however it exits: a lock left by a killed run is free at once, and there is
no stale-lock guessing. The file also says who holds it (pid, start time, command), for the message.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from pipeline.errors import RunLocked, UsageError

LOCK_FILE = "run.lock"


class RunLock:
    """``with RunLock(state_dir):`` holds the checkout's lock, or raises :class:`RunLocked` (exit 2)."""

    def __init__(self, state_dir: Path, command: str | None = None) -> None:
        self.path = state_dir / LOCK_FILE
        self.command = command or " ".join(["python -m pipeline", *sys.argv[1:]])
        self._file: IO[str] | None = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot open the run lock {self.path}: {exc.strerror}",
                hint="the state directory (pipeline.state_dir) must be writable",
            ) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(handle)
            handle.close()
            raise RunLocked(
                f"another run of this checkout is in progress ({holder})",
                hint="wait for it to finish; runs of one checkout share its state, reports and deploy target",
            ) from None
        handle.seek(0)
        handle.truncate()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(json.dumps({"pid": os.getpid(), "started_at": started, "command": self.command}) + "\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


def _describe(handle: IO[str]) -> str:
    try:
        handle.seek(0)
        holder = json.loads(handle.read() or "{}")
        return f"pid {holder['pid']}, started {holder['started_at']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
