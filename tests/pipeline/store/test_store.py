"""The store's operations, the same on every backend (``backend`` fixture: folder, ``file://``, S3)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict

import pytest

from pipeline.errors import StoreCorrupt
from pipeline.store import Store
from pipeline.store.base import blob_key
from tests.conftest import ROOT
from tests.pipeline.store.conftest import Backend, race


def test_a_missing_key_is_none(store: Store) -> None:
    assert store.get("cache/nothing.json") is None
    assert store.read_versioned("cache/nothing.json") == (None, None)
    assert store.get_blob("0" * 64) is None
    store.delete("cache/nothing.json")  # nothing to do, no error


def test_put_then_get_and_overwrite(store: Store) -> None:
    store.put("history/run-1.json", b"one")
    store.put("history/run-1.json", b"two")
    assert store.get("history/run-1.json") == b"two"


def test_put_if_absent_writes_only_a_free_key(store: Store) -> None:
    assert store.put_if_absent("state/first", b"a") is True
    assert store.put_if_absent("state/first", b"b") is False
    assert store.get("state/first") == b"a"


def test_list_and_delete(store: Store) -> None:
    for key in ("cache/ab/1", "cache/ab/2", "cache/b", "history/x"):
        store.put(key, b"-")
    assert store.list("cache/") == ["cache/ab/1", "cache/ab/2", "cache/b"]
    assert store.list("cache/a") == ["cache/ab/1", "cache/ab/2"]
    assert store.list() == ["cache/ab/1", "cache/ab/2", "cache/b", "history/x"]
    store.delete("cache/ab/1")
    assert store.get("cache/ab/1") is None
    assert store.list("cache/ab/") == ["cache/ab/2"]


def test_keys_are_checked(store: Store) -> None:
    for bad in ("", "/abs", "a//b", "../up", "a/.hidden", "sp ace"):
        with pytest.raises(ValueError, match="not a store key"):
            store.get(bad)


def test_a_reader_never_sees_half_an_object(store: Store) -> None:
    """A reader polling while another writes large objects sees one of them whole, every time."""
    payloads = [bytes([n]) * (1 << 20) for n in (1, 2)]
    store.put("big", payloads[0])
    done = threading.Event()
    seen: list[bytes | None] = []

    def read() -> None:
        while not done.is_set():
            seen.append(store.get("big"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(12):
            store.put("big", payloads[n % 2])
    finally:
        done.set()
        reader.join()
    assert seen
    assert all(data in payloads for data in seen)


def test_swap_from_the_version_read(store: Store) -> None:
    assert store.swap("doc.json", b'{"n": 0}', None) is not None  # create when absent
    assert store.swap("doc.json", b'{"n": 9}', None) is None  # ... only when absent
    data, version = store.read_versioned("doc.json")
    assert data == b'{"n": 0}' and version
    new = store.swap("doc.json", b'{"n": 1}', version)
    assert new and new != version
    assert store.swap("doc.json", b'{"n": 2}', version) is None  # stale version
    assert store.read_versioned("doc.json") == (b'{"n": 1}', new)
    store.delete("doc.json")
    assert store.swap("doc.json", b'{"n": 3}', new) is None  # gone: nothing to swap from


def test_two_writers_with_one_version_exactly_one_wins(store: Store) -> None:
    store.put("doc.json", b"{}")
    for round_ in range(5):
        _, version = store.read_versioned("doc.json")
        assert version is not None
        wins = race(8, lambda n, v=version, r=round_: store.swap("doc.json", json.dumps([r, n]).encode(), v))
        assert len(wins) == 1, f"round {round_}: writers {wins} all won"
        assert store.get("doc.json") == json.dumps([round_, wins[0]]).encode()


# A process that adds 1 to the store's counter N times, each by read + swap, again when the swap loses.
_COUNTER = """
import json, sys
from pathlib import Path
from pipeline.store import S3Settings, open_store
url, base, s3, times = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
store = open_store(url, base_dir=base, s3=S3Settings(**s3) if s3 else None)
lost = 0
for _ in range(times):
    while True:
        data, version = store.read_versioned("counter")
        if store.swap("counter", str(int(data) + 1).encode(), version):
            break
        lost += 1
print(lost)
"""


def test_two_processes_counting_by_swaps_lose_no_update(backend: Backend) -> None:
    backend.open().put("counter", b"0")
    s3 = json.dumps(asdict(backend.s3) if backend.s3 else None)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", _COUNTER, backend.url, str(backend.base_dir), s3, "40"]
    # pylint: disable-next=consider-using-with  # waited for below
    counters = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120)[0] for process in counters]
    assert [process.returncode for process in counters] == [0, 0], outputs
    assert backend.open().get("counter") == b"80"


def test_a_blob_is_stored_under_its_hash(store: Store) -> None:
    digest = store.put_blob(b"model bytes")
    assert digest == hashlib.sha256(b"model bytes").hexdigest()
    assert store.list("blobs/") == [f"blobs/sha256/{digest[:2]}/{digest}"]
    assert store.get_blob(digest) == b"model bytes"
    assert store.put_blob(b"model bytes") == digest  # already there: nothing changes


def test_a_damaged_blob_is_reported_never_returned(store: Store) -> None:
    digest = store.put_blob(b"model bytes")
    store.put(blob_key(digest), b"model byte")  # torn on its way, or damaged at rest
    with pytest.raises(StoreCorrupt, match=f"blob {digest} is damaged") as caught:
        store.get_blob(digest)
    assert caught.value.exit_code == 3
    assert store.get_blob(digest) is None  # it was removed: a miss from now on
    assert store.put_blob(b"model bytes") == digest
    assert store.get_blob(digest) == b"model bytes"


def test_a_blob_digest_is_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.get_blob("abc")
