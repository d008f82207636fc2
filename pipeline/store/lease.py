"""Leases: a lock on a name that the agents sharing a store respect, and that frees itself when its holder
stops renewing it.

A lease is the JSON record ``leases/<name>.json``: who holds it (agent host name, run id, pid), since when,
and until when. :func:`acquire` creates it with a conditional create (of two takers of a free lease exactly
one wins); a lease past its expiry (or released) is taken over with a compare-and-swap from the version
read, so of two takers of an expired lease exactly one wins too. A live holder renews it by a swap from its
own last version: a holder that finds another's version has lost it (:class:`~pipeline.errors.LeaseLost`).
:meth:`Lease.keep_alive` renews it from a background thread for as long as a block runs.

Expiry is wall-clock time (UTC), compared across agents: their clocks must agree to much better than the
TTL (NTP does).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType

from pipeline.errors import LeaseLost, LeaseTaken
from pipeline.store.base import Store, Version, check_key

PREFIX = "leases"
_ATTEMPTS = 5  # create, or read and swap; each lost round means another holder moved first

Clock = Callable[[], float]


@dataclass(frozen=True)
class Holder:
    """Who holds a lease."""

    hostname: str
    run_id: str
    pid: int

    @classmethod
    def this_process(cls, run_id: str) -> Holder:
        return cls(socket.gethostname(), run_id, os.getpid())

    def __str__(self) -> str:
        return f"{self.hostname} (run {self.run_id}, pid {self.pid})"


@dataclass(frozen=True)
class LeaseRecord:
    """A lease as stored: its holder, since when and until when (seconds since the epoch)."""

    holder: Holder
    started: float
    expires: float

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "hostname": self.holder.hostname,
                "run_id": self.holder.run_id,
                "pid": self.holder.pid,
                "started": _iso(self.started),
                "expires": _iso(self.expires),
            },
            indent=1,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseRecord | None:
        """The record, or None when ``data`` is not one (a damaged record is free to take over)."""
        try:
            raw = json.loads(data)
            holder = Holder(str(raw["hostname"]), str(raw["run_id"]), int(raw["pid"]))
            return cls(holder, _epoch(raw["started"]), _epoch(raw["expires"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"{self.holder}, since {_iso(self.started)}, until {_iso(self.expires)}"


def lease_key(name: str) -> str:
    return check_key(f"{PREFIX}/{name}.json")


def acquire(store: Store, name: str, holder: Holder, ttl_s: float, *, clock: Clock = time.time) -> Lease:
    """Take the lease ``name`` for ``ttl_s`` seconds, or raise :class:`LeaseTaken` naming its holder."""
    key = lease_key(name)
    for _ in range(_ATTEMPTS):
        now = clock()
        record = LeaseRecord(holder, now, now + ttl_s)
        version = _swap(store, key, record.to_json(), None)
        if version is not None:
            return Lease(store, name, record, version, ttl_s, clock)
        data, current = store.read_versioned(key)
        if data is None:
            continue  # released and removed meanwhile: create it again
        found = LeaseRecord.from_json(data)
        if found is not None and found.expires > now:
            raise LeaseTaken(
                f"lease '{name}' in store {store.url} is held by {found.describe()}",
                holder=found,
                hint="wait for that run to end, or for the lease to expire if that run is gone",
            )
        version = _swap(store, key, record.to_json(), current)
        if version is not None:
            return Lease(store, name, record, version, ttl_s, clock)
    raise LeaseTaken(
        f"lease '{name}' in store {store.url}: {_ATTEMPTS} attempts lost to other takers",
        hint="try again",
    )


class Lease:
    """A lease this process holds. ``with lease:`` releases it at the end of the block."""

    def __init__(
        self, store: Store, name: str, record: LeaseRecord, version: Version, ttl_s: float, clock: Clock
    ) -> None:
        self.store = store
        self.name = name
        self.ttl_s = ttl_s
        self._record = record
        self._version: Version | None = version
        self._clock = clock
        self._lock = threading.Lock()  # renewals from keep_alive's thread, release from the holder's

    @property
    def record(self) -> LeaseRecord:
        return self._record

    @property
    def held(self) -> bool:
        """Whether this holder still has it as far as it knows (released and lost leases are not held)."""
        return self._version is not None and self._record.expires > self._clock()

    def renew(self, ttl_s: float | None = None) -> None:
        """Extend the lease to ``ttl_s`` (the lease's own TTL by default) from now; :class:`LeaseLost` when
        another holder has taken it over meanwhile (or it was released)."""
        with self._lock:
            if self._version is None:
                raise LeaseLost(f"lease '{self.name}' was released", hint="acquire it again")
            record = replace(self._record, expires=self._clock() + (ttl_s or self.ttl_s))
            version = _swap(self.store, lease_key(self.name), record.to_json(), self._version)
            if version is None:
                self._version = None
                raise self._lost()
            self._record, self._version = record, version

    def release(self) -> bool:
        """Give the lease up (it is marked expired, so the next taker swaps it at once); False when it was
        not held any more (released already, or taken over)."""
        with self._lock:
            if self._version is None:
                return False
            record = replace(self._record, expires=self._record.started)
            version = _swap(self.store, lease_key(self.name), record.to_json(), self._version)
            self._version = None
            return version is not None

    @contextmanager
    def keep_alive(self, interval_s: float | None = None) -> Iterator[Lease]:
        """Renew the lease every ``interval_s`` (a third of the TTL by default) while the block runs.

        When a renewal fails, the thread stops and the block's end raises that error (:class:`LeaseLost`,
        or :class:`~pipeline.errors.StoreUnavailable`): work done after losing a lease is unprotected. A
        long block can look at :attr:`held` meanwhile.
        """
        stop = threading.Event()
        failures: list[Exception] = []

        def renew_until_stopped() -> None:
            while not stop.wait(interval_s or self.ttl_s / 3):
                try:
                    self.renew()
                except Exception as exc:  # pylint: disable=broad-exception-caught  # raised at the end
                    failures.append(exc)
                    return

        thread = threading.Thread(target=renew_until_stopped, name=f"lease-{self.name}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
        if failures:
            raise failures[0]

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()

    def _lost(self) -> LeaseLost:
        data = self.store.get(lease_key(self.name))
        found = LeaseRecord.from_json(data) if data is not None else None
        who = f"now held by {found.describe()}" if found else "gone"
        return LeaseLost(
            f"lease '{self.name}' in store {self.store.url} was lost: {who}",
            holder=found,
            hint="it expired before it was renewed: renew more often than its TTL (Lease.keep_alive)",
        )


def _swap(store: Store, key: str, data: bytes, expected: Version | None) -> Version | None:
    """:meth:`Store.swap`, and when it says it lost, a look whether the record is ours all the same.

    botocore retries a request whose answer was lost (a reset, a timeout, a 5xx): when the first attempt was
    stored, the retry finds the condition broken by that very write. A record holds its holder and its times
    to the microsecond, so the same bytes are this holder's write, not another's.
    """
    version = store.swap(key, data, expected)
    if version is not None:
        return version
    found, current = store.read_versioned(key)
    return current if found == data else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


def _epoch(text: object) -> float:
    return datetime.fromisoformat(str(text)).timestamp()
