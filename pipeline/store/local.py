"""The store in a folder: this machine's (``.pipeline``) or one every agent mounts (``file://``).

- A write goes to a temporary file in the object's own folder, is flushed to disk (``fsync``) and renamed
  over the object (``os.replace``, atomic on one file system, NFS included), and the folder is synced: a
  reader sees the old bytes or the new, never part of them, even after a crash.
- Conditional writes (:meth:`LocalStore.put_if_absent`, :meth:`LocalStore.swap`) and every plain write and
  delete take an exclusive ``flock(2)`` on the store's ``.lock`` file around their check and rename, so a
  compare and its write are one step for every process of every agent. On NFS, Linux carries ``flock``
  over as a lock of the whole file (NFSv4, or v3 with ``lockd``): a share mounted with ``nolock`` is not
  safe for several agents. The bytes are written before the lock is taken: it is held for a rename only.
- A version is ``sha256:`` and the hash of the bytes. Readers take no lock.

Temporary files and the lock begin with a dot, which no key does, so they never show in :meth:`list`. A
temporary file left by a killed writer stays, unseen, until someone removes it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import StoreUnavailable
from pipeline.store.base import Keys, Store, Version, check_key, check_prefix

LOCK_FILE = ".lock"

_HINTS = {
    errno.EACCES: "the pipeline's user needs read and write access to the store's folder",
    errno.EPERM: "the pipeline's user needs read and write access to the store's folder",
    errno.EROFS: "the store's folder is on a read-only file system: mount it read-write",
    errno.ENOSPC: "the store's disk is full: free some space",
    errno.EDQUOT: "the store's disk quota is spent: free some space",
    errno.ESTALE: "the share went away: check that it is mounted and that its server answers",
    errno.EIO: "the store's disk or share fails: check that it is mounted and that its server answers",
    errno.ENOTCONN: "the share went away: check that it is mounted and that its server answers",
    errno.EHOSTDOWN: "the share's server does not answer",
    errno.ENOLCK: "the share gives no locks (an NFS mount with 'nolock'?): mount it with locking",
}


def version_of(data: bytes) -> Version:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LocalStore(Store):
    """The store in the folder ``root``; ``must_exist`` (a share) refuses to create it."""

    def __init__(self, root: Path, *, url: str | None = None, must_exist: bool = False) -> None:
        self.root = root
        self.url = url or str(root)
        with self._disk("open"):
            if must_exist and not root.is_dir():
                raise StoreUnavailable(
                    f"store {self.url}: the folder {root} does not exist",
                    hint="mount the shared folder (or create it) before the run; a file:// store is never "
                    "created, so that an unmounted share does not become a folder only this agent sees",
                )
            root.mkdir(parents=True, exist_ok=True)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        with self._disk(f"read {key}"):
            try:
                return path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None

    def read_versioned(self, key: str) -> tuple[bytes, Version] | tuple[None, None]:
        data = self.get(key)
        if data is None:
            return None, None
        return data, version_of(data)

    def list(self, prefix: str = "") -> Keys:
        check_prefix(prefix)
        # Walk only the folder the prefix's complete parts name.
        folder = prefix.rpartition("/")[0]
        start = self.root / folder if folder else self.root
        keys: Keys = []
        with self._disk(f"list {prefix or '/'}"):
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                base = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    key = name if base == "." else f"{base}/{name}"
                    if not name.startswith(".") and key.startswith(prefix):
                        keys.append(key)
        return sorted(keys)

    # --- writes ---------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with self._staged(key, path, data) as temp, self._locked(f"write {key}"):
            os.replace(temp, path)
            _sync_folder(path.parent)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.swap(key, data, None) is not None

    def swap(self, key: str, data: bytes, expected_version: Version | None) -> Version | None:
        path = self._path(key)
        with self._staged(key, path, data) as temp, self._locked(f"write {key}"):
            _, version = self.read_versioned(key)
            if version != expected_version:
                return None
            os.replace(temp, path)
            _sync_folder(path.parent)
        return version_of(data)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._locked(f"delete {key}"):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return
            _sync_folder(path.parent)

    # --- helpers --------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextmanager
    def _staged(self, key: str, path: Path, data: bytes) -> Iterator[Path]:
        """A temporary file beside ``path`` holding ``data`` on disk; removed unless renamed."""
        with self._disk(f"write {key}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
            with temp.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        try:
            yield temp
        finally:
            temp.unlink(missing_ok=True)

    @contextmanager
    def _locked(self, what: str) -> Iterator[None]:
        with self._disk(what):
            descriptor = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                yield
            finally:
                os.close(descriptor)  # closing it releases the lock

    @contextmanager
    def _disk(self, what: str) -> Iterator[None]:
        """Turn the file system's errors into :class:`StoreUnavailable`."""
        try:
            yield
        except OSError as exc:
            hint = _HINTS.get(exc.errno or 0, f"check the store's folder {self.root}")
            where = f" ({exc.filename})" if exc.filename else ""
            raise StoreUnavailable(
                f"store {self.url}: cannot {what}: {exc.strerror or exc}{where}", hint=hint
            ) from None


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` survive a crash (the folder's entry is on disk too)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
