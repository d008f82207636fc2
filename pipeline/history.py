"""The local run history, ``.pipeline/history.jsonl``: one line per finished run, newest last.

``python -m pipeline history`` shows the last runs: when, how it ended, how long it took, the model it
trained or used, the image it pushed and where it deployed. Only what a stage of that very run recorded is
shown (a run that only linted has no model or image), so an old push never passes for a new one. The file
keeps the last :data:`KEEP` runs; it is rewritten whole (atomically) when it grows past that.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.outputs import run_facts
from pipeline.results import RunResult
from pipeline.state import RunState, atomic_write_text

KEEP = 200
FILE_NAME = "history.jsonl"


@dataclass(frozen=True)
class RunEntry:
    """One line of the history."""

    run_id: str
    started_at: str
    finished_at: str
    status: str
    duration_s: float
    profile: str
    git_sha: str | None
    stages: dict[str, str]
    model_version: str | None = None
    cv_accuracy: float | None = None
    promotion: str | None = None  # the promotion stage's verdict line, when it ran in this run
    image: str | None = None
    deployed_to: str | None = None

    @classmethod
    def from_json(cls, raw: Any) -> RunEntry | None:
        """An entry from one line; None for a line that is not one (a torn or foreign line is skipped)."""
        if not isinstance(raw, dict):
            return None
        text = {key: raw.get(key) for key in ("run_id", "started_at", "finished_at", "status", "profile")}
        if not all(isinstance(value, str) for value in text.values()):
            return None
        duration, stages, accuracy = raw.get("duration_s"), raw.get("stages"), raw.get("cv_accuracy")

        def optional(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) else None

        return cls(
            run_id=str(text["run_id"]),
            started_at=str(text["started_at"]),
            finished_at=str(text["finished_at"]),
            status=str(text["status"]),
            duration_s=float(duration) if isinstance(duration, (int, float)) else 0.0,
            profile=str(text["profile"]),
            git_sha=optional("git_sha"),
            stages={str(k): str(v) for k, v in stages.items()} if isinstance(stages, dict) else {},
            model_version=optional("model_version"),
            cv_accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None,
            promotion=optional("promotion"),
            image=optional("image"),
            deployed_to=optional("deployed_to"),
        )


def _seconds(started: str, finished: str) -> float:
    try:
        return round((datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds(), 1)
    except ValueError:
        return 0.0


def entry_for(result: RunResult, state: RunState) -> RunEntry:
    """What ``result`` adds to the history; model, image and target only from stages of this run."""

    facts = run_facts(state, result.run_id)
    finished = result.finished_at or result.started_at
    return RunEntry(
        run_id=result.run_id,
        started_at=result.started_at,
        finished_at=finished,
        status=str(result.status),
        duration_s=_seconds(result.started_at, finished),
        profile=result.profile,
        git_sha=result.git_sha,
        stages={run.name: str(run.status) for run in result.stages},
        model_version=facts.model_version,
        cv_accuracy=facts.cv_accuracy,
        promotion=facts.promotion,
        image=facts.image,
        deployed_to=facts.deployed_to,
    )


def append(state_dir: Path, entry: RunEntry) -> None:
    """Add ``entry`` as one line; keep the last :data:`KEEP`.

    Append-only and line-atomic: the line goes out in one ``write`` on an ``O_APPEND`` descriptor, after a
    newline when the file ends in a torn line (a run killed while writing), so a torn line never swallows
    the next entry. The file is handled as bytes: a byte that is not UTF-8 is a bad line that :func:`read`
    skips, never a failure of the run."""
    path = state_dir / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(entry), sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)
    lines = path.read_bytes().splitlines(keepends=True)
    if len(lines) > KEEP:
        # surrogateescape: the kept lines go back byte for byte, whatever they hold
        atomic_write_text(path, b"".join(lines[-KEEP:]).decode("utf-8", "surrogateescape"))


def read(state_dir: Path, limit: int, warn: Callable[[str], None] | None = None) -> list[RunEntry]:
    """The last ``limit`` runs, newest first. Lines that are not runs (torn, not UTF-8, not JSON, foreign)
    are skipped; ``warn`` hears how many, once."""
    path = state_dir / FILE_NAME
    if not path.exists():
        return []
    entries: list[RunEntry] = []
    bad = 0
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        try:
            entry = RunEntry.from_json(json.loads(raw.decode("utf-8")))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            entry = None
        if entry is None:
            bad += 1
        else:
            entries.append(entry)
    if bad and warn is not None:
        warn(f"warning: {bad} line(s) of {path} are not runs (torn or damaged); skipped")
    return list(reversed(entries))[:limit]
