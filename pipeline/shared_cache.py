"""The stage cache several agents share through the store (README, "Shared store").

A passed, cacheable stage leaves an entry under ``cache/STAGE/KEY.json``, where ``KEY`` is the key of its
input fingerprint (:mod:`pipeline.cache`): its typed outputs, summary and artifacts as the run state records
them, and the SHA-256 of each of its report files and of each file it produced (``train``'s model), whose
bytes are content-addressed blobs (``blobs/sha256/...``, checked on every read). Another agent whose stage
has the same key takes the entry instead of running the stage: the files are fetched, checked and put in
place, and the outputs recorded as its own run's.

Nothing here fails a run. A missing entry is a miss; an entry that cannot be read, does not parse, or names a
blob that is gone or damaged is a miss with one warning line; a store that cannot be reached is said once,
and the run goes on uncached. The entry is written after its blobs, in one ``put`` (atomic on every
backend), so no reader sees half of one. ``store.write = false`` reads entries and never writes one.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.errors import StoreCorrupt, StoreUnavailable
from pipeline.state import StageRecord, atomic_write_bytes
from pipeline.store import Store

ENTRY_VERSION = 1
_HEX = set("0123456789abcdef")


class EntryError(ValueError):
    """A stored entry that this pipeline would not have written."""


@dataclass(frozen=True)
class Entry:
    """One stage's pass, as the store keeps it for other agents: its run-state record, who made it, and the
    digests of its files."""

    stage: str
    agent: str
    record: StageRecord
    reports: dict[str, str] = field(default_factory=dict)
    """Report file name (in ``reports/stages/``) -> SHA-256 of its bytes."""
    files: dict[str, str] = field(default_factory=dict)
    """Produced file, relative to the checkout (``model/iris_model.onnx``) -> SHA-256 of its bytes."""

    @property
    def key(self) -> str:
        return self.record.key or ""

    def to_json(self) -> bytes:
        return json.dumps({"version": ENTRY_VERSION, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, stage: str, key: str) -> Entry:
        """The entry in ``data``; :class:`EntryError` for anything else, or one of another stage or key."""
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise EntryError(f"not JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("version") != ENTRY_VERSION:
            raise EntryError(f"not an entry of version {ENTRY_VERSION}")
        record = raw.get("record")
        if not isinstance(record, dict) or raw.get("stage") != stage or record.get("key") != key:
            raise EntryError("it names another stage or key than the one it is stored under")
        try:
            parsed = StageRecord(**record)
        except TypeError as exc:
            raise EntryError(f"its record is not one this pipeline writes ({exc})") from None
        for name in ("status", "finished_at", "run_id", "summary"):
            if not isinstance(getattr(parsed, name), str):
                raise EntryError(f"its {name} is not text")
        for name in ("outputs", "artifacts", "inputs"):
            if not isinstance(getattr(parsed, name), dict):
                raise EntryError(f"its {name} is not an object")
        reports, files = raw.get("reports", {}), raw.get("files", {})
        if (
            not isinstance(reports, dict)
            or not isinstance(files, dict)
            or not isinstance(raw.get("agent"), str)
        ):
            raise EntryError("its agent, reports or files are not what this pipeline writes")
        _check_names(reports, files)
        return cls(stage, raw["agent"], parsed, reports, files)


def _check_names(reports: dict[str, Any], files: dict[str, Any]) -> None:
    for name, digest in {**reports, **files}.items():
        if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX):
            raise EntryError(f"the digest of {name} is not a SHA-256")
    for name in reports:
        if "/" in name or name in ("", ".", ".."):
            raise EntryError(f"report name {name!r} is not a plain file name")
    for name in files:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise EntryError(f"file {name!r} is not a path inside the checkout")


def entry_key(stage: str, key: str) -> str:
    return f"cache/{stage}/{key}.json"


def _image_key(image_id: str) -> str:
    return f"images/{image_id.removeprefix('sha256:')}.json"


def agent_name() -> str:
    """Who wrote an entry: Jenkins' ``NODE_NAME`` when set, else the host name."""
    return os.environ.get("NODE_NAME") or socket.gethostname()


class SharedCache:
    """Entries of the store, read and written for the runner and the dry run (thread-safe)."""

    def __init__(self, store: Store, *, write: bool, warn: Callable[[str], None]) -> None:
        self.store = store
        self.write = write
        self._warn = warn
        self._down: str | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.store.url

    def lookup(self, stage: str, key: str) -> Entry | None:
        """The entry of ``stage`` for ``key``, or None (a miss: quiet when there is none, a warning line
        when there is one that cannot be used)."""
        data = self._call(lambda: self.store.get(entry_key(stage, key)))
        if data is None:
            return None
        try:
            return Entry.from_json(data, stage, key)
        except EntryError as exc:
            self._warn(f"the shared cache entry of '{stage}' ({key[:12]}) is not used: {exc}")
            return None

    def restore(self, entry: Entry, stage_reports: Path, root: Path, produces: Iterable[Path]) -> str | None:
        """Put ``entry``'s reports in ``stage_reports`` and its files under ``root`` (each inside one of
        ``produces``); None when done, else why not (nothing is written then)."""
        allowed = [p.resolve() for p in produces]
        targets: list[tuple[Path, str]] = []
        for name, digest in entry.files.items():
            target = (root / name).resolve()
            if not any(target == a or a in target.parents for a in allowed):
                return f"its file {name} is not one this stage produces"
            targets.append((target, digest))
        # Its log is shown from the store (earlier_log), not put over this run's.
        targets += [(stage_reports / n, d) for n, d in entry.reports.items() if not n.endswith(".log")]
        fetched: list[tuple[Path, bytes]] = []
        for target, digest in targets:
            try:
                data = self._blob(digest)
            except StoreCorrupt:
                return f"its copy of {target.name} is damaged (it was removed from the store)"
            if data is None:
                return self._down or f"its copy of {target.name} is not in the store"
            fetched.append((target, data))
        for target, data in fetched:
            atomic_write_bytes(target, data)
        return None

    def save(
        self, stage: str, record: StageRecord, stage_reports: Path, root: Path, files: Iterable[Path]
    ) -> None:
        """Store the pass ``record`` of ``stage``: its report files in ``stage_reports`` and ``files``."""
        if not self.write or not record.key:
            return
        from pipeline.cache import stage_files

        def put_all() -> Entry:
            reports = {p.name: self.store.put_blob(p.read_bytes()) for p in stage_files(stage_reports, stage)}
            produced = {p.relative_to(root).as_posix(): self.store.put_blob(p.read_bytes()) for p in files}
            entry = Entry(stage, agent_name(), record, reports, produced)
            self.store.put(entry_key(stage, entry.key), entry.to_json())
            return entry

        try:
            self._call(put_all)
        except OSError as exc:  # a report that went away, a full disk: the entry is not written
            self._warn(f"the pass of '{stage}' is not in the shared store: {exc}")

    def remember_image(self, image_id: str, reference: str) -> None:
        """Say where ``image_id`` was pushed (``repo@sha256:...``), so an agent whose engine lacks it can pull
        it instead of building it again."""
        if not self.write:
            return
        data = json.dumps({"image_id": image_id, "reference": reference, "agent": agent_name()}).encode()
        self._call(lambda: self.store.put(_image_key(image_id), data))

    def image_reference(self, image_id: str) -> str | None:
        """Where ``image_id`` was pushed, as :meth:`remember_image` said; None when nobody said."""
        data = self._call(lambda: self.store.get(_image_key(image_id)))
        try:
            found = json.loads(data) if data else None
        except ValueError:
            return None
        if not isinstance(found, dict) or found.get("image_id") != image_id:
            return None
        reference = found.get("reference")
        return reference if isinstance(reference, str) and "@sha256:" in reference else None

    def earlier_log(self, entry: Entry) -> str:
        """The log of the run that made ``entry``, or "" (a log the store lost is no reason to run)."""
        digest = entry.reports.get(f"{entry.stage}.log")
        if digest is None:
            return ""
        try:
            data = self._blob(digest)
        except StoreCorrupt:
            return ""
        return data.decode("utf-8", errors="replace") if data else ""

    def _blob(self, digest: str) -> bytes | None:
        """The checked blob (None when gone or the store is down); :class:`StoreCorrupt` when damaged."""
        data: bytes | None = self._call(lambda: self.store.get_blob(digest))
        return data

    def _call(self, action: Callable[[], Any]) -> Any:
        """``action()``, or None once the store is down (said once, then not asked again). A damaged blob
        (:class:`StoreCorrupt`, only ``get_blob`` raises it) reaches the caller, which says which file."""
        if self._down is not None:
            return None
        try:
            return action()
        except StoreUnavailable as exc:
            with self._lock:
                if self._down is None:
                    self._down = f"the shared store {self.url} cannot be used: {exc.message}"
                    self._warn(f"{self._down}; this run goes on without the shared cache")
            return None


def files_under(folders: Iterable[Path]) -> list[Path]:
    """Every file under ``folders`` (what a stage produced), sorted; a folder that is not there has none."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_file():
            found.append(folder)
        elif folder.is_dir():
            found.extend(p for p in folder.rglob("*") if p.is_file())
    return sorted(found)


def describe(entry: Entry) -> str:
    """``run RUN on AGENT``: whose pass a shared hit is."""
    return f"run {entry.record.run_id} on {entry.agent}"
