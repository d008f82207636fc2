"""SIGINT and SIGTERM, as a run should take them: the first one stops the run, later ones cannot cut short
the stopping.

An abort rarely comes as one signal. Jenkins sends SIGTERM to every process of the build (it finds them
by the ``JENKINS_SERVER_COOKIE``/``JENKINS_NODE_COOKIE`` in their environment, children first), so the
pipeline gets its own and often feels its children's; a person presses Ctrl-C twice. Jenkins follows with
SIGKILL about 5 s later (core's ``hudson.util.ProcessTree``: ``SoftKillWaitSeconds``, default 5). Hence:

- :func:`install` (first thing in ``python -m pipeline``) turns the first SIGINT or SIGTERM into
  ``KeyboardInterrupt`` in the main thread, so SIGTERM before any stage started also ends in exit 130 (the
  documented "interrupted"), not in Python's default death by signal (143).
- :func:`shield` marks the wind-down (putting back what a stage changed, writing the reports): a signal
  there, or any signal after the first, is noted on stderr and otherwise ignored.

A put-back that SIGKILL cuts short is finished by the next command that touches the target (for the
``local`` target: ``pipeline.stages.targets.local``, its "interrupted swap").
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Signals:  # pylint: disable=too-few-public-methods
    """What this process received, and how many shields are up (one instance: signals are per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[int] = []
        self.shielded = 0


_STATE = _Signals()


def install() -> dict[int, Any]:
    """Take over SIGINT and SIGTERM for this process (main thread only; elsewhere a no-op); the handlers
    they had, for :func:`restore`."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, _on_signal) for signum in _SIGNALS}


def restore(previous: dict[int, Any]) -> None:
    """Give SIGINT and SIGTERM back the handlers :func:`install` replaced (an in-process caller's own)."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def received() -> int | None:
    """The first signal this process got, or None."""
    return _STATE.received[0] if _STATE.received else None


@contextlib.contextmanager
def shield() -> Iterator[None]:
    """While inside, a signal does not raise: what is stopping or reporting goes on to its end."""
    with _STATE.lock:
        _STATE.shielded += 1
    try:
        yield
    finally:
        with _STATE.lock:
            _STATE.shielded -= 1


def reset() -> None:
    """Forget the signals received (a run starts afresh; tests run the CLI in-process several times)."""
    with _STATE.lock:
        _STATE.received.clear()
        _STATE.shielded = 0


def _on_signal(signum: int, frame: Any) -> None:
    del frame
    with _STATE.lock:
        first = not _STATE.received
        _STATE.received.append(signum)
        raise_now = first and not _STATE.shielded
    name = signal.Signals(signum).name
    # os.write, not print: the main thread may be inside a write to stderr (a reentrant call would raise).
    if raise_now:
        os.write(2, f"pipeline: {name} received: stopping\n".encode())
        raise KeyboardInterrupt
    os.write(
        2, f"pipeline: {name} noted; finishing what is under way first (putting back, reports)\n".encode()
    )
