"""The store's interface: what every backend does, and the content-addressed blobs built on it.

Keys are ``/``-separated paths of plain names (letters, digits, ``_ - . = @ +``, never beginning with a
dot): the same key means the same object on every backend, and a local backend keeps its temporary and
lock files out of the key space by their leading dot.

A version (:data:`Version`) is an opaque string that changes whenever the object's bytes do: S3's ETag, or
a hash of the bytes on a folder. Versioned reads and :meth:`Store.swap` (compare-and-swap) are for small
JSON documents several agents update: of two writers that swap from the same version, exactly one wins.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod

from pipeline.errors import StoreCorrupt

Version = str
Keys = list[str]

BLOBS = "blobs/sha256"
_KEY = re.compile(r"[A-Za-z0-9_=@+-][A-Za-z0-9._=@+-]*(/[A-Za-z0-9_=@+-][A-Za-z0-9._=@+-]*)*")
_DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_KEY = 900  # S3 allows 1024 bytes, the bucket's prefix included


def check_key(key: str) -> str:
    """``key`` when it is a valid key; ``ValueError`` (a bug of the caller) when not."""
    if len(key) > MAX_KEY or not _KEY.fullmatch(key):
        raise ValueError(f"not a store key: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """``prefix`` when it could begin a key (or is empty: every key)."""
    if prefix and not _KEY.fullmatch(prefix.rstrip("/")):
        raise ValueError(f"not a store key prefix: {prefix!r}")
    return prefix


def blob_key(digest: str) -> str:
    """``blobs/sha256/ab/abcd...``: the key of the blob whose bytes hash to ``digest`` (SHA-256, hex)."""
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return f"{BLOBS}/{digest[:2]}/{digest}"


class Store(ABC):
    """A key-value store for what the pipeline remembers, shared by the agents that open the same URL.

    Every failure to reach or use it is :class:`~pipeline.errors.StoreUnavailable`.
    """

    url: str  # as the user gave it, for messages

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write the object whole: a reader sees the old bytes or the new, never part of them."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write the object only when the key is free; False when it was taken (by anyone, even now)."""

    @abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes, Version] | tuple[None, None]:
        """The object's bytes and version, or ``(None, None)`` when there is none."""

    @abstractmethod
    def swap(self, key: str, data: bytes, expected_version: Version | None) -> Version | None:
        """Write the object only when its version is still ``expected_version`` (None: only when absent).

        The new version when this write won, None when the object had changed (or appeared, or gone).
        """

    @abstractmethod
    def list(self, prefix: str = "") -> Keys:
        """The keys that begin with ``prefix``, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when there is none."""

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` under its SHA-256 (``blobs/sha256/ab/abcd...``) and return that hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        self.put_if_absent(blob_key(digest), data)
        return digest

    def get_blob(self, digest: str) -> bytes | None:
        """The blob's bytes, checked against ``digest``; None when there is none.

        Bytes that do not hash to ``digest`` (a torn or damaged copy) raise :class:`StoreCorrupt`, which
        a caller takes as a miss. The damaged copy is removed, so the next :meth:`put_blob` writes it anew.
        """
        key = blob_key(digest)
        data = self.get(key)
        if data is None:
            return None
        found = hashlib.sha256(data).hexdigest()
        if found != digest:
            self.delete(key)
            raise StoreCorrupt(
                f"store {self.url}: blob {digest} is damaged (its bytes hash to {found}); it was removed",
                hint="take it as a miss: whoever made it can store it again",
            )
        return data
