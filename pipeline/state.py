"""The run state, ``.pipeline/state.json``: what each stage left for later stages and later runs.

It is written after every stage by writing a temporary file beside it, flushing it to disk and
renaming it over the old one, so a crash mid-write leaves the previous state readable. A state file
that cannot be read is kept aside (``state.json.corrupt``) rather than silently overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.outputs import OutputsError, OutputsT

STATE_VERSION = 1


def utcnow() -> str:
    """Now, as the state and the reports write times: ``2026-11-30T21:05:44Z``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class StageRecord:
    """The last result of one stage, as later invocations see it."""

    status: str
    finished_at: str
    run_id: str
    summary: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    # The fingerprint of the stage's declared inputs when it ran (``pipeline.cache``), and its key.
    inputs: dict[str, str] = field(default_factory=dict)
    key: str | None = None


class RunState:
    """Stage outputs keyed by stage name, plus free-form sections (``releases`` for deploy)."""

    def __init__(
        self, path: Path, stages: dict[str, StageRecord] | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        self.path = path
        self.stages: dict[str, StageRecord] = stages or {}
        self.extra: dict[str, Any] = extra or {}
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> RunState:
        if not path.exists():
            return cls(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
                raise ValueError("unknown state format")
            stages = {
                name: StageRecord(
                    status=rec["status"],
                    finished_at=rec["finished_at"],
                    run_id=rec["run_id"],
                    summary=rec.get("summary", ""),
                    outputs=dict(rec.get("outputs", {})),
                    artifacts=dict(rec.get("artifacts", {})),
                    inputs={str(k): str(v) for k, v in dict(rec.get("inputs", {})).items()},
                    key=rec.get("key"),
                )
                for name, rec in doc.get("stages", {}).items()
            }
            extra = dict(doc.get("extra", {}))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"the run state {path} cannot be read ({exc})",
                hint=f"move it aside (mv {path} {path}.old) to start from an empty state",
            ) from exc
        return cls(path, stages, extra)

    def record(self, stage: str) -> StageRecord | None:
        return self.stages.get(stage)

    def outputs(self, kind: type[OutputsT]) -> OutputsT | None:
        """The outputs of ``kind.stage``'s last pass (or cache hit), typed; None when it has not passed.

        :class:`ConfigError` (exit 2) when what is recorded is not what this pipeline records (a state file
        from another version, a hand edit): it is never half-used."""
        rec = self.stages.get(kind.stage)
        if rec is None or not self.passed(kind.stage):
            return None
        try:
            return kind.from_json(rec.outputs)
        except OutputsError as exc:
            raise ConfigError(
                f"the run state {self.path} cannot be used: {exc}",
                hint=f"run '{kind.stage}' again (--rerun {kind.stage}), or move the file aside to start "
                "from an empty state",
            ) from None

    def outputs_of_run(self, run_id: str, kind: type[OutputsT]) -> OutputsT | None:
        """:meth:`outputs` if ``kind.stage`` passed (or was cached) in run ``run_id``, else None: what a run
        made itself, never an earlier run's value that is still in the state."""
        rec = self.stages.get(kind.stage)
        if rec is None or rec.run_id != run_id:
            return None
        return self.outputs(kind)

    def passed(self, stage: str) -> bool:
        rec = self.stages.get(stage)
        return rec is not None and rec.status in ("passed", "cached")  # Status.ok, as stored

    # -- writing -------------------------------------------------------------------------------
    def put(self, stage: str, record: StageRecord) -> None:
        """Record a stage's result and save the whole state at once."""
        with self._lock:
            self.stages[stage] = record
            self._save_locked()

    def releases(self, target: str) -> list[Any]:
        """What deploy put live on ``target`` (a target identity), oldest first, as stored: the deploy
        targets read each with ``Release.from_state``, which refuses what is not a release."""
        found = self.extra.get("releases", {})
        items = found.get(target, []) if isinstance(found, dict) else []
        if not isinstance(items, list):
            return [items]  # not a list of releases: let the reader say so
        return [dict(item) if isinstance(item, dict) else item for item in items]

    def set_releases(self, target: str, releases: list[dict[str, Any]], keep: int = 20) -> None:
        with self._lock:
            found = self.extra.get("releases")
            all_releases = dict(found) if isinstance(found, dict) else {}
            all_releases[target] = releases[-keep:]
            self.extra["releases"] = all_releases
            self._save_locked()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "stages": {
                name: {
                    "status": rec.status,
                    "finished_at": rec.finished_at,
                    "run_id": rec.run_id,
                    "summary": rec.summary,
                    "outputs": rec.outputs,
                    "artifacts": rec.artifacts,
                    "inputs": rec.inputs,
                    "key": rec.key,
                }
                for name, rec in sorted(self.stages.items())
            },
            "extra": self.extra,
        }

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        atomic_write_text(self.path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old or the new file, whole."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
