"""Processes of this machine, read from ``/proc``: ``pgrep -f`` without procps.

The Jenkins controller image (``custom_jenkins/``) has no procps, and no test may need a tool that
image lacks, so tests that look for a leftover child scan ``/proc/PID/cmdline`` themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    command_line: str  # the arguments joined by single spaces, as `pgrep -f` matches them


def processes() -> list[Process]:
    """Every process with a command line (kernel threads and zombies have none), this one excluded."""
    found: list[Process] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # it exited meanwhile, or it is not ours to read
            continue
        args = raw.rstrip(b"\0").split(b"\0")
        if args != [b""]:
            found.append(Process(int(entry.name), " ".join(a.decode(errors="replace") for a in args)))
    return found


def find_processes(needle: str) -> list[Process]:
    """The processes whose command line contains ``needle`` (a plain substring, not a regex)."""
    return [p for p in processes() if needle in p.command_line]
