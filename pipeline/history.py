"""The run history: one entry per finished run.

``python -m pipeline history`` shows the last runs: when, how it ended, how long it took, the model it
trained or used, the image it pushed and where it deployed. Only what a stage of that very run recorded is
shown (a run that only linted has no model or image), so an old push never passes for a new one.

Each checkout keeps its own, ``.pipeline/history.jsonl`` (one line per run, newest last, the last
:data:`KEEP`; rewritten whole, atomically, when it grows past that). With a shared store
(:func:`pipeline.store.configured.shared_store`) every run is also one object there,
``history/<finished>-<written>-<run id>.json``, written once (a conditional create: no agent ever overwrites
another's), and ``history`` lists the newest of those: the runs of every agent, the same on each. The
checkout's file is then a copy that nothing reads. :func:`record` and :func:`recent` choose.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.outputs import run_facts
from pipeline.results import RunResult
from pipeline.state import RunState, atomic_write_text
from pipeline.store import Store
from pipeline.store.configured import shared_store

KEEP = 200
FILE_NAME = "history.jsonl"
PREFIX = "history"

Warn = Callable[[str], None]


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
    def parse(cls, data: bytes) -> RunEntry | None:
        """An entry from its JSON bytes; None for bytes that are not one."""
        try:
            return cls.from_json(json.loads(data.decode("utf-8")))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return None

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
    found = [RunEntry.parse(raw) for raw in path.read_bytes().splitlines() if raw.strip()]
    entries = [entry for entry in found if entry is not None]
    bad = len(found) - len(entries)
    if bad and warn is not None:
        warn(f"warning: {bad} line(s) of {path} are not runs (torn or damaged); skipped")
    return list(reversed(entries))[:limit]


def record(config: Config, entry: RunEntry, warn: Warn) -> None:
    """Add ``entry`` to the checkout's history and, when there is one, to the shared store's. The history is
    a convenience: what fails is said through ``warn``, never a failure of the run."""
    state_dir = config.state_file.parent
    try:
        append(state_dir, entry)
    except OSError as exc:
        warn(f"warning: the run is not in the history: {exc}")
    try:
        store = shared_store(config)
        if store is not None:
            append_shared(store, entry)
    except PipelineError as exc:
        warn(f"warning: the run is not in the shared history: {exc.message}")


def recent(config: Config, limit: int, warn: Warn) -> tuple[list[RunEntry], str]:
    """The last ``limit`` runs, newest first, and where they were read: the shared store's when there is
    one (:class:`~pipeline.errors.StoreUnavailable` when it does not answer), else the checkout's."""
    store = shared_store(config)
    if store is None:
        state_dir = config.state_file.parent
        return read(state_dir, limit, warn), str(state_dir / FILE_NAME)
    return read_shared(store, limit, warn), f"store {store.url}"


def entry_key(entry: RunEntry, written_ns: int) -> str:
    """``history/20261130T210544Z-<written, ns>-<run id>.json``: sorted by key is sorted by the time the run
    finished. ``finished_at`` has whole seconds: two runs that finish within one (two agents) are told apart
    by when their entries were written, not by their random run ids."""
    finished = "".join(ch for ch in entry.finished_at if ch.isalnum())[:32] or "0"
    run_id = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in entry.run_id)[:80] or "run"
    return f"{PREFIX}/{finished}-{written_ns:020d}-{run_id}.json"


def append_shared(store: Store, entry: RunEntry) -> None:
    """Write ``entry`` as its own object, once; keep the newest :data:`KEEP` (older ones are deleted)."""
    store.put_if_absent(
        entry_key(entry, time.time_ns()), json.dumps(asdict(entry), sort_keys=True).encode("utf-8")
    )
    keys = store.list(f"{PREFIX}/")
    for key in keys[: max(0, len(keys) - KEEP)]:
        store.delete(key)


def read_shared(store: Store, limit: int, warn: Warn | None = None) -> list[RunEntry]:
    """The newest ``limit`` runs in ``store``, newest first; objects that are not runs are skipped, and
    ``warn`` hears how many, once (a run deleted meanwhile, by another agent's pruning, is just left out)."""
    entries: list[RunEntry] = []
    bad = 0
    for key in reversed(store.list(f"{PREFIX}/")):
        if len(entries) >= limit:
            break
        data = store.get(key)
        if data is None:
            continue
        entry = RunEntry.parse(data)
        if entry is None:
            bad += 1
        else:
            entries.append(entry)
    if bad and warn is not None:
        warn(f"warning: {bad} object(s) under {store.url}/{PREFIX}/ are not runs (damaged); skipped")
    return entries
