"""The releases of each deploy target identity: what ``deploy`` put live there, oldest first.

One accessor, :class:`Releases`, so that ``deploy``, ``rollback``, ``status`` and the promotion gate's
champion never ask where the releases are kept:

- without a shared store (``store.url`` is the checkout's own ``.pipeline``) they are the run state's
  (``RunState.releases``), as they always were;
- with one (:func:`pipeline.store.configured.shared_store`) they are the store's JSON document
  ``releases/<identity>.json`` (:func:`key_name` makes the identity a key), the same on every agent. An
  update reads it with its version and writes it back with a compare-and-swap on that version, again from
  the new version when another agent's write came first: both updates land, none is lost. The run state
  keeps a copy of what this checkout wrote (a cache, never read while the store is configured).

A store that does not answer is :class:`~pipeline.errors.StoreUnavailable` (exit 3): a rollback must never
act on releases that may be stale, and a deploy must never lose its release record silently.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Config
from pipeline.errors import StoreUnavailable, UsageError
from pipeline.state import RunState
from pipeline.store import Store

PREFIX = "releases"
KEEP = 20  # as many as the run state keeps per target
_ATTEMPTS = 40  # each lost round means another agent's update landed first: it is retried on top of that

Change = Callable[[list[Any]], list[Any]]


def key_name(identity: str) -> str:
    """A store key's name for ``identity`` (``ecs:eu-west-1/prod/iris`` ->
    ``ecs_eu-west-1_prod_iris-<hash>``): readable, and distinct for distinct identities by the hash."""
    readable = re.sub(r"[^A-Za-z0-9_=@+-]+", "_", identity).strip("_")[:80] or "target"
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def release_key(identity: str) -> str:
    return f"{PREFIX}/{key_name(identity)}.json"


class Releases:
    """The releases of every target identity, in ``store`` when there is one, else in ``state``."""

    def __init__(self, state: RunState, store: Store | None) -> None:
        self.state = state
        self.store = store

    @classmethod
    def of(cls, config: Config, state: RunState) -> Releases:
        from pipeline.store.configured import shared_store

        return cls(state, shared_store(config))

    @property
    def where(self) -> str:
        """Where they are kept, for messages."""
        return f"store {self.store.url}" if self.store else f"the run state {self.state.path}"

    def read(self, identity: str) -> list[Any]:
        """The releases of ``identity``, oldest first, as stored (``Release.from_state`` reads each)."""
        if self.store is None:
            return self.state.releases(identity)
        data, _ = self.store.read_versioned(release_key(identity))
        return self._parse(identity, data)

    def update(self, identity: str, change: Change) -> list[Any]:
        """Replace the releases of ``identity`` by ``change(the current ones)`` (the last :data:`KEEP`);
        the list written. ``change`` may be called more than once: each time from what is stored now."""
        if self.store is None:
            updated = change(self.state.releases(identity))
            self.state.set_releases(identity, updated, keep=KEEP)
            return updated[-KEEP:]
        key = release_key(identity)
        for attempt in range(_ATTEMPTS):
            data, version = self.store.read_versioned(key)
            updated = change(self._parse(identity, data))[-KEEP:]
            document = _document(identity, updated)
            if self.store.swap(key, document, version) is not None or self._ours(key, document):
                self.state.set_releases(identity, updated, keep=KEEP)  # this checkout's copy
                return updated
            time.sleep(random.uniform(0, min(0.5, 0.02 * 2**attempt)))  # let the other writers through
        raise StoreUnavailable(
            f"store {self.store.url}: the releases of {identity} could not be updated: {_ATTEMPTS} attempts "
            "lost to other agents' updates",
            hint="try again",
        )

    def append(self, identity: str, release: dict[str, Any]) -> list[Any]:
        """Add ``release`` as the newest of ``identity``."""
        return self.update(identity, lambda current: [*current, release])

    def _ours(self, key: str, document: bytes) -> bool:
        """Whether a swap reported lost was stored all the same: botocore retries a write whose answer was
        lost, and the retry finds the condition broken by that very write. The document holds its writer
        and the time to the microsecond, so the same bytes are this write."""
        assert self.store is not None
        found, _ = self.store.read_versioned(key)
        return found == document

    def _parse(self, identity: str, data: bytes | None) -> list[Any]:
        if data is None:
            return []
        try:
            raw = json.loads(data)
            items = raw["releases"]
            if not isinstance(items, list) or raw.get("identity") != identity:
                raise ValueError("not a list of releases of this identity")
        except (ValueError, KeyError, TypeError) as exc:
            assert self.store is not None
            raise UsageError(
                f"the releases of {identity} in store {self.store.url} ({release_key(identity)}) cannot be "
                f"read: {exc}",
                hint="delete that object to start a new history (a rollback will then know no release)",
            ) from None
        return [dict(item) if isinstance(item, dict) else item for item in items]


def after_rollback(read: list[Any], remaining: list[Any]) -> Change:
    """The change a rollback makes: from ``read`` (what it rolled back from) to ``remaining``; what another
    agent added meanwhile is kept (a deploy holds the target's lease, so there should be nothing)."""
    undone = list(read)
    for item in remaining:
        if item in undone:
            undone.remove(item)

    def change(current: list[Any]) -> list[Any]:
        if current == read:
            return list(remaining)
        kept = list(current)
        for item in undone:
            if item in kept:
                kept.remove(item)
        return kept

    return change


def _document(identity: str, releases: list[Any]) -> bytes:
    return json.dumps(
        {
            "identity": identity,
            "releases": releases,
            "updated_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "updated_by": socket.gethostname(),
        },
        indent=1,
        sort_keys=True,
    ).encode()
