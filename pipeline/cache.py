"""One cache for every stage: the fingerprint of a stage's declared inputs, and what a cache hit restores.

A stage declares what its result depends on (:class:`Inputs`): files of the tree, config keys, the
tools it runs, outputs of earlier stages, and digests of its own (build: its Docker context; Trivy:
the vulnerability database). :func:`fingerprint` turns them into named components, each a short
digest (``file:app/model.py``, ``config:trivy.severity``, ``tool:pylint``, ``upstream:train.model_version``,
``extra:trivy-db``), and :func:`key` into one key. A stage's record in the run state keeps both, so a
later run can tell whether the stage is up to date and, when it is not, say which input changed.

The same fingerprint tells whether a prerequisite that is not selected still counts: a stage that
passed for other inputs than the tree's is stale, and the runner refuses to build on it.

A passed stage's report files (``reports/stages/NAME*``) are kept in ``.pipeline/cache/NAME/``, with
their sha256 in a manifest, and put back on a hit: Jenkins publishes them from ``reports/``, which it
deletes after each build. An entry that does not match its manifest is ignored (the stage runs).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import platform
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.adapters import git, process
from pipeline.config import GENERATED_DIRS, SCHEMA, Config
from pipeline.state import atomic_write_text

_GLOB_CHARS = set("*?[")
_SHORT = 16  # hex digits kept per component: collisions are not a concern at this size


@dataclass(frozen=True)
class Inputs:
    """What a stage's result depends on.

    - ``files``: paths relative to the root. A plain path is that file or every file under that
      directory; a pattern is matched with :func:`fnmatch.fnmatch` against the whole relative path
      (``*`` crosses ``/``); a leading ``!`` excludes. Files are those git tracks or would track
      (``git ls-files --cached --others --exclude-standard``), or every file outside a checkout;
      with ``scope="all"`` every file but the generated folders, git-ignored ones too (what a
      scanner of the tree reads, ``.env`` included).
    - ``config``: dotted keys, or a section (``trivy`` is every ``trivy.*`` key).
    - ``tools``: Python distributions (their version) or executables (their path and ``--version``).
    - ``upstream``: ``STAGE`` (all its recorded outputs) or ``STAGE.KEY``.
    - ``named``: files a tool looks up by name (its settings files, an ignore file): relative to the root
      or absolute; each one that exists counts (``file:NAME``), whether git tracks it, ignores it, or it
      lies outside the tree.
    - ``extra``: digests the stage computes itself, by name. A value starting with :data:`UNRESOLVED`
      (an input that cannot be known now) never matches: the stage runs.
    """

    files: tuple[str, ...] = ()
    scope: str = "git"
    config: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)
    named: tuple[str, ...] = ()


# The value of an input that cannot be known now (a base image the engine does not hold yet): a miss.
UNRESOLVED = "unresolved: "


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_SHORT]


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


class Fingerprinter:
    """Computes fingerprints for one invocation; file hashes and tool versions are remembered."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._files: list[str] | None = None
        self._all_files: list[str] | None = None
        self._hashes: dict[str, tuple[int, int, str]] = {}
        self._tools: dict[str, str] = {}

    # -- files ------------------------------------------------------------------------------------
    def tree(self, scope: str = "git") -> list[str]:
        """Every file of the tree that counts, relative, sorted."""
        with self._lock:
            if scope == "all":
                if self._all_files is None:
                    self._all_files = _walk_files(self.root)
                return self._all_files
            if self._files is None:
                self._files = git.files(self.root) or _walk_files(self.root)
            return self._files

    def select(self, patterns: tuple[str, ...], scope: str = "git") -> list[str]:
        include = [p for p in patterns if not p.startswith("!")]
        exclude = [p[1:] for p in patterns if p.startswith("!")]
        return [rel for rel in self.tree(scope) if _matches(rel, include) and not _matches(rel, exclude)]

    def file_digest(self, rel: str) -> str:
        path = self.root / rel
        try:
            stat = path.stat()
        except OSError:
            return "missing"
        with self._lock:
            known = self._hashes.get(rel)
        if known and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        try:
            value = _digest(path.read_bytes())
        except OSError:
            return "unreadable"
        with self._lock:
            self._hashes[rel] = (stat.st_mtime_ns, stat.st_size, value)
        return value

    # -- tools ------------------------------------------------------------------------------------
    def tool(self, name: str) -> str:
        with self._lock:
            if name in self._tools:
                return self._tools[name]
        value = _tool_identity(name)
        with self._lock:
            self._tools[name] = value
        return value


def _matches(rel: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if _GLOB_CHARS & set(pattern):
            if fnmatch.fnmatch(rel, pattern):
                return True
        elif pattern in (".", "") or rel == pattern or rel.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def _walk_files(root: Path) -> list[str]:
    found = []
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in GENERATED_DIRS and d not in ("__pycache__", ".ruff_cache")]
        for name in files:
            found.append((Path(current) / name).relative_to(root).as_posix())
    return sorted(found)


def _tool_identity(name: str) -> str:
    if name == "python":
        return platform.python_version()
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    path = process.find_tool(name)
    if path is None:
        return "missing"
    version = process.version_line([path, "--version"], timeout_s=30)
    return f"{path} {version}".strip() if version is not None else f"{path} (no version)"


def config_keys(names: tuple[str, ...]) -> list[str]:
    """Dotted keys, sections expanded to their keys."""
    keys: list[str] = []
    for name in names:
        if name in SCHEMA:
            keys.append(name)
        else:
            expanded = sorted(k for k in SCHEMA if k.startswith(name + "."))
            if not expanded:
                raise KeyError(f"no config key or section {name!r}")
            keys.extend(expanded)
    return keys


def fingerprint(
    inputs: Inputs,
    config: Config,
    outputs_of: Callable[[str], Mapping[str, Any] | None],
    fingerprinter: Fingerprinter,
) -> dict[str, str]:
    """The named components of ``inputs``; ``outputs_of(stage)`` gives a stage's recorded outputs."""
    components: dict[str, str] = {}
    for rel in fingerprinter.select(inputs.files, inputs.scope):
        components[f"file:{rel}"] = fingerprinter.file_digest(rel)
    for rel in inputs.named:
        if (fingerprinter.root / rel).is_file():
            components[f"file:{rel}"] = fingerprinter.file_digest(rel)
    for key in config_keys(inputs.config):
        components[f"config:{key}"] = canonical(config.get(key))
    for tool in inputs.tools:
        components[f"tool:{tool}"] = fingerprinter.tool(tool)
    for ref in inputs.upstream:
        stage, _, key = ref.partition(".")
        outputs = outputs_of(stage)
        if outputs is None:
            value = "absent"
        elif key:
            value = canonical(outputs.get(key))
        else:
            value = _digest(canonical(dict(outputs)).encode())
        components[f"upstream:{ref}"] = value
    for name, value in inputs.extra.items():
        components[f"extra:{name}"] = value
    return components


def unresolved(components: Mapping[str, str]) -> list[str]:
    """The inputs that cannot be known now, each with why: ``base-image: x is not in the engine yet``."""
    return [
        f"{name.partition(':')[2]}: {value[len(UNRESOLVED):]}"
        for name, value in sorted(components.items())
        if value.startswith(UNRESOLVED)
    ]


def settle(components: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    """``components`` with each unresolved value replaced by the one ``known`` has, if any."""
    return {
        name: known.get(name, value) if value.startswith(UNRESOLVED) else value
        for name, value in components.items()
    }


def key(components: Mapping[str, str]) -> str:
    return hashlib.sha256(canonical(dict(components)).encode()).hexdigest()


def explain(before: Mapping[str, str] | None, after: Mapping[str, str], limit: int = 4) -> str:
    """Which inputs differ, in a few words: ``app/model.py changed, config trivy.severity changed``."""
    if not before:
        return "its record holds no fingerprint of its inputs"
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        kind, _, what = name.partition(":")
        label = what if kind == "file" else f"{kind} {what}"
        if old is None:
            changes.append(f"{label} added")
        elif new is None:
            changes.append(f"{label} removed")
        elif kind in ("tool", "config"):
            changes.append(f"{label} {old} -> {new}")
        else:
            changes.append(f"{label} changed")
    if not changes:
        return "inputs unchanged"
    more = f" (+{len(changes) - limit} more)" if len(changes) > limit else ""
    return ", ".join(changes[:limit]) + more


# --- the stored report files of a passed stage ------------------------------------------------------


def stage_files(folder: Path, stage: str) -> list[Path]:
    """A stage's files in the stage reports folder: ``NAME.log``, and tool reports ``NAME-*``, ``NAME.*``."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.name.startswith(stage + "-") or p.name.startswith(stage + "."))
    )


@dataclass(frozen=True)
class CacheStore:
    """``.pipeline/cache/NAME/``: the report files of the stage's last pass, and their manifest."""

    folder: Path

    def _entry(self, stage: str) -> Path:
        return self.folder / stage

    def save(self, stage: str, cache_key: str, stage_reports: Path) -> None:
        entry = self._entry(stage)
        staging = entry.with_name(f".{stage}.new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        files = {}
        for path in stage_files(stage_reports, stage):
            shutil.copy2(path, staging / path.name)
            files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        atomic_write_text(staging / "manifest.json", canonical({"key": cache_key, "files": files}) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        staging.rename(entry)

    def restore(self, stage: str, cache_key: str, stage_reports: Path) -> tuple[bool, str]:
        """Put the stored files back into ``stage_reports``; ``(False, why)`` if the entry cannot be used."""
        entry = self._entry(stage)
        try:
            manifest = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
            files = manifest["files"]
            if manifest["key"] != cache_key or not isinstance(files, dict):
                return False, "its stored reports belong to other inputs"
            for name, sha in files.items():
                if "/" in name or hashlib.sha256((entry / name).read_bytes()).hexdigest() != sha:
                    return False, f"its stored report {name} does not match its manifest"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return False, f"its stored reports cannot be read ({type(exc).__name__})"
        target = stage_reports
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if not name.endswith(".log"):
                shutil.copy2(entry / name, target / name)
        return True, ""

    def earlier_log(self, stage: str) -> str:
        try:
            return (self._entry(stage) / f"{stage}.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
