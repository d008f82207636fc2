"""Showing a run: a Rich live view on a terminal, plain lines elsewhere, and the JSON and JUnit reports.

The report renders values (``RunResult``, ``StageRun``); it never calls a tool. Plain mode (not a TTY,
``NO_COLOR`` or ``CI``) prints one line per event with no colour codes and no redraw, which is what a
Jenkins console log wants.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from pipeline.errors import UsageError
from pipeline.results import RunResult, StageRun, Status
from pipeline.state import atomic_write_text

_STYLE = {
    Status.PASSED: "green",
    Status.CACHED: "cyan",
    Status.FAILED: "bold red",
    Status.SKIPPED: "yellow",
    Status.NOT_RUN: "dim",
}
_MARK = {Status.PASSED: "✓", Status.CACHED: "✓", Status.FAILED: "✗", Status.SKIPPED: "-", Status.NOT_RUN: "·"}


def detail(run: StageRun) -> str:
    """What a finished stage's line says: the error of a failed stage, else its summary."""
    return run.error if run.status == Status.FAILED and run.error else run.summary


def make_console(stream: TextIO | None = None, *, plain: bool) -> Console:
    if plain:
        return Console(
            file=stream,
            force_terminal=False,
            no_color=True,
            highlight=False,
            emoji=False,
            width=200,
            soft_wrap=True,
        )
    return Console(file=stream, highlight=False)


def summary_table(result: RunResult) -> Table:
    table = Table(
        title=f"pipeline run {result.run_id} ({result.profile}): {result.status}", title_justify="left"
    )
    table.add_column("stage")
    table.add_column("status")
    table.add_column("duration", justify="right")
    table.add_column("summary", overflow="fold")
    for run in result.stages:
        style = _STYLE.get(run.status, "")
        table.add_row(
            run.name,
            Text(run.status, style=style),
            f"{run.duration_s:.1f}s" if run.started_at else "-",
            detail(run),
        )
    return table


class PlainReporter:
    """One line per event; safe to interleave from several stage threads."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self._lock:
            self.console.print(text, markup=False)

    def run_started(self, result: RunResult) -> None:
        names = ", ".join(r.name for r in result.stages if r.status != Status.SKIPPED)
        self._print(f"pipeline run {result.run_id} (profile {result.profile}): {names}")

    def stage_started(self, run: StageRun) -> None:
        self._print(f"[{run.name}] started")

    def stage_progress(self, name: str, line: str) -> None:
        del name, line  # progress lines belong to the live view; the stage log has everything

    def stage_finished(self, run: StageRun) -> None:
        self._print(f"[{run.name}] {run.status} in {run.duration_s:.1f}s: {detail(run)}")

    def run_finished(self, result: RunResult) -> None:
        with self._lock:
            self.console.print(summary_table(result))


class LiveReporter(PlainReporter):
    """A Rich live view: finished stages above, one spinner line per running stage below."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._running: dict[str, tuple[float, str]] = {}
        self._spinners: dict[str, Spinner] = {}
        self._live = Live(console=console, refresh_per_second=8, transient=True, get_renderable=self._render)

    def _render(self) -> Group:
        now = time.monotonic()
        with self._lock:
            items = list(self._running.items())
        for name, (started, status) in items:
            # One Spinner per stage, kept across refreshes: a new one would always show its first frame.
            spinner = self._spinners.setdefault(name, Spinner("dots"))
            spinner.update(text=Text.assemble((name, "bold"), f"  {now - started:5.1f}s  ", (status, "dim")))
        return Group(*[self._spinners[name] for name, _ in items])

    def run_started(self, result: RunResult) -> None:
        super().run_started(result)
        self._live.start()

    def stage_started(self, run: StageRun) -> None:
        with self._lock:
            self._running[run.name] = (time.monotonic(), "")

    def stage_progress(self, name: str, line: str) -> None:
        with self._lock:
            if name in self._running:
                self._running[name] = (self._running[name][0], line[:100])

    def stage_finished(self, run: StageRun) -> None:
        with self._lock:
            self._running.pop(run.name, None)
        style = _STYLE.get(run.status, "")
        self._live.console.print(
            Text.assemble(
                (f"{_MARK.get(run.status, '?')} {run.name}", style), f"  {run.duration_s:.1f}s  ", detail(run)
            )
        )

    def run_finished(self, result: RunResult) -> None:
        self._live.stop()
        self.console.print(summary_table(result))


# --- machine-readable reports --------------------------------------------------------------------


def result_dict(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "status": result.status,
        "profile": result.profile,
        "git_sha": result.git_sha,
        "build_url": result.build_url,
        "stages": [
            {
                "name": r.name,
                "status": r.status,
                "started_at": r.started_at,
                "duration_s": r.duration_s,
                "summary": r.summary,
                "artifacts": r.artifacts,
                "error": r.error,
            }
            for r in result.stages
        ],
    }


def write_json(result: RunResult, path: Path) -> None:
    atomic_write_text(path, json.dumps(result_dict(result), indent=2, default=str) + "\n")


def write_junit(result: RunResult, path: Path) -> None:
    """One testcase per stage; a failure element with the error for a failed stage."""
    failures = sum(1 for r in result.stages if r.status == Status.FAILED)
    skipped = sum(1 for r in result.stages if r.status in (Status.SKIPPED, Status.NOT_RUN))
    total = sum(r.duration_s for r in result.stages)
    suite = ET.Element(
        "testsuite",
        {
            "name": "pipeline",
            "tests": str(len(result.stages)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
            "time": f"{total:.3f}",
            "timestamp": result.started_at,
        },
    )
    for r in result.stages:
        case = ET.SubElement(
            suite, "testcase", {"classname": "pipeline", "name": r.name, "time": f"{r.duration_s:.3f}"}
        )
        if r.status == Status.FAILED:
            failure = ET.SubElement(
                case, "failure", {"message": (r.error or r.summary)[:500], "type": "StageFailed"}
            )
            failure.text = r.error or r.summary
        elif r.status in (Status.SKIPPED, Status.NOT_RUN):
            ET.SubElement(case, "skipped", {"message": r.summary or r.status})
        out = ET.SubElement(case, "system-out")
        out.text = f"{r.status}: {r.summary}\nlog: stages/{r.name}.log"
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    atomic_write_text(path, ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")


# The space a run's reports need at least: logs, JUnit, SARIF and coverage of one run take a few MiB.
MIN_FREE_BYTES = 16 * 1024 * 1024
# What the write probe writes: an empty file needs no space, so a full disk would pass with one.
_PROBE_BYTES = 64 * 1024
_DISK_FULL_HINT = "free some space there, or give --report-dir (or pipeline.report_dir) another disk"


def prepare_dir(stage_reports: Path, report_dir: Path) -> None:
    """Make the report folders and prove they take data, before any stage runs: a run whose reports cannot
    be written (no permission, a full disk) stops with exit 2 here, not with a traceback after its stages."""
    probe = report_dir / ".write-test"
    try:
        stage_reports.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as fh:
            fh.write(b"\0" * _PROBE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
        free = shutil.disk_usage(report_dir).free
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise report_error(report_dir, exc) from None
    probe.unlink()
    if free < MIN_FREE_BYTES:
        raise UsageError(
            f"disk full: {report_dir} has {free // 1024} KiB free; "
            f"a run's reports need {MIN_FREE_BYTES >> 20} MiB",
            hint=_DISK_FULL_HINT,
        )


def report_error(path: Path, exc: OSError) -> UsageError:
    """Exit 2 for reports that cannot be written, saying "disk full" when that is why."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UsageError(
            f"disk full: cannot write the reports to {path}",
            hint=_DISK_FULL_HINT,
        )
    return UsageError(
        f"cannot write reports to {path}: {exc.strerror or exc}",
        hint="give --report-dir (or pipeline.report_dir) a folder this user can write",
    )


def write_reports(result: RunResult, report_dir: Path) -> list[Path]:
    json_path = report_dir / "pipeline.json"
    junit_path = report_dir / "pipeline-junit.xml"
    write_json(result, json_path)
    write_junit(result, junit_path)
    return [json_path, junit_path]


__all__ = [
    "LiveReporter",
    "PlainReporter",
    "make_console",
    "prepare_dir",
    "report_error",
    "result_dict",
    "write_reports",
]
