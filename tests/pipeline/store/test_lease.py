"""Leases (``pipeline/store/lease.py``) on every backend: taken, refused naming the holder, expired and
taken over, raced for, renewed, lost and released. TTLs are short: a test waits a fraction of a second."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pipeline.errors import EXIT_USAGE, LeaseLost, LeaseTaken
from pipeline.store import Holder, Lease, LeaseRecord, LocalStore, Store, acquire
from pipeline.store.lease import lease_key
from tests.pipeline.store.conftest import race

ALICE = Holder("agent-a", "run-1", 101)
BOB = Holder("agent-b", "run-2", 202)


def test_a_free_lease_is_taken_and_recorded_as_json(store: Store) -> None:
    lease = acquire(store, "deploy-prod", ALICE, ttl_s=30)
    assert lease.held and lease.record.holder == ALICE
    record = json.loads(store.get(lease_key("deploy-prod")) or b"")
    assert {k: record[k] for k in ("hostname", "run_id", "pid")} == {
        "hostname": "agent-a",
        "run_id": "run-1",
        "pid": 101,
    }
    assert 29 < lease.record.expires - lease.record.started <= 30
    assert record["started"].endswith("+00:00") and record["expires"] > record["started"]


def test_a_held_lease_is_refused_naming_its_holder(store: Store) -> None:
    acquire(store, "deploy-prod", ALICE, ttl_s=30)
    says = r"held by agent-a \(run run-1, pid 101\), since .* until "
    with pytest.raises(LeaseTaken, match=says) as caught:
        acquire(store, "deploy-prod", BOB, ttl_s=30)
    assert caught.value.exit_code == EXIT_USAGE
    assert isinstance(caught.value.holder, LeaseRecord) and caught.value.holder.holder == ALICE
    acquire(store, "deploy-staging", BOB, ttl_s=30)  # another name is another lease


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    old = acquire(store, "train", ALICE, ttl_s=0.2)
    time.sleep(0.3)
    assert not old.held
    new = acquire(store, "train", BOB, ttl_s=30)
    assert new.record.holder == BOB
    with pytest.raises(LeaseLost, match="now held by agent-b") as caught:
        old.renew()  # the old holder learns it lost the lease; it does not take it back
    assert isinstance(caught.value, LeaseTaken)
    assert old.release() is False  # nothing to give up
    assert new.held


@pytest.mark.parametrize("expired", [False, True], ids=["free", "expired"])
def test_two_takers_of_a_lease_exactly_one_wins(store: Store, expired: bool) -> None:
    if expired:
        acquire(store, "raced", ALICE, ttl_s=0.1)
        time.sleep(0.2)
    takers = [Holder(f"agent-{n}", f"run-{n}", n) for n in range(8)]
    wins = race(8, lambda n: acquire(store, "raced", takers[n], ttl_s=30))
    assert len(wins) == 1
    record = LeaseRecord.from_json(store.get(lease_key("raced")) or b"")
    assert record is not None and record.holder == takers[wins[0]]


def test_renew_extends_and_release_frees(store: Store) -> None:
    lease = acquire(store, "build", ALICE, ttl_s=0.3)
    before = lease.record.expires
    time.sleep(0.1)
    lease.renew()
    assert lease.record.expires > before
    with pytest.raises(LeaseTaken):
        acquire(store, "build", BOB, ttl_s=30)
    assert lease.release() is True and not lease.held
    with pytest.raises(LeaseLost, match="released"):
        lease.renew()
    with acquire(store, "build", BOB, ttl_s=30) as taken:  # free at once, not at expiry
        assert taken.held
    assert not taken.held  # the block released it
    acquire(store, "build", ALICE, ttl_s=30)


def test_keep_alive_holds_a_lease_past_its_ttl(store: Store) -> None:
    lease = acquire(store, "long", ALICE, ttl_s=0.3)
    with lease, lease.keep_alive(interval_s=0.05):
        time.sleep(0.6)  # twice the TTL
        assert lease.held
        with pytest.raises(LeaseTaken, match="agent-a"):
            acquire(store, "long", BOB, ttl_s=30)
    acquire(store, "long", BOB, ttl_s=30)  # released at the end


def test_keep_alive_reports_a_lost_lease(store: Store) -> None:
    lease = acquire(store, "lost", ALICE, ttl_s=0.1)
    time.sleep(0.15)  # expired unrenewed ...
    acquire(store, "lost", BOB, ttl_s=30)  # ... and taken over
    with pytest.raises(LeaseLost, match="now held by agent-b"), lease.keep_alive(interval_s=0.05):
        time.sleep(0.2)  # the first renewal fails; the block's end says so
        assert not lease.held


def test_a_damaged_record_can_be_taken_over(store: Store) -> None:
    store.put(lease_key("junk"), b"not json")
    lease: Lease = acquire(store, "junk", BOB, ttl_s=30)
    assert lease.record.holder == BOB


def test_lease_names_are_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="not a store key"):
        acquire(store, "../escape", ALICE, ttl_s=1)


def test_this_process() -> None:
    holder = Holder.this_process("run-9")
    assert holder.run_id == "run-9" and holder.pid > 0 and holder.hostname
    assert str(holder).startswith(f"{holder.hostname} (run run-9, pid ")


class LostAnswers(LocalStore):
    """A folder store whose next ``swaps`` swaps are written but answered as lost: what a request looks
    like when its answer was lost and botocore's retry finds the condition broken by its own first write."""

    def __init__(self, root: Path, swaps: int) -> None:
        super().__init__(root)
        self.swaps = swaps

    def swap(self, key: str, data: bytes, expected_version: str | None) -> str | None:
        version = super().swap(key, data, expected_version)
        if self.swaps > 0:
            self.swaps -= 1
            return None
        return version


def test_a_write_whose_answer_was_lost_is_still_ours(tmp_path: Path) -> None:
    lossy = LostAnswers(tmp_path, swaps=3)
    lease = acquire(lossy, "retried", ALICE, ttl_s=30)  # created, "lost"
    lease.renew()  # renewed, "lost"
    assert lease.release() is True  # released, "lost"
    assert lossy.swaps == 0
    assert acquire(lossy, "retried", BOB, ttl_s=30).record.holder == BOB
