"""One deploy at a time per target, across agents: ``deploy`` and ``rollback`` hold the target's lease.

With a shared store, :func:`hold` takes the lease ``deploy-<identity>`` (:mod:`pipeline.store.lease`) for
``store.lease_ttl_s``, renews it while the block runs and gives it up at the end. Another agent's deploy or
rollback of the same target meanwhile is refused with :class:`~pipeline.errors.LeaseTaken` (exit 2) naming
the holder: its host, run, pid and since when. A holder that died (``kill -9``, a lost agent) stops renewing:
its lease lapses after the TTL, and the next taker takes it over. Without a shared store nothing is taken:
the checkout's own ``flock`` (``pipeline.lock``) is all there is, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline.errors import LeaseTaken, StoreUnavailable
from pipeline.releases import key_name
from pipeline.store import Holder, Store, acquire

Log = Callable[[str], None]


def lease_name(identity: str) -> str:
    return f"deploy-{key_name(identity)}"


@contextmanager
def hold(store: Store | None, identity: str, *, run_id: str, ttl_s: float, log: Log) -> Iterator[None]:
    """Hold the deploy lease of ``identity`` in ``store`` while the block runs (nothing when ``store`` is
    None). :class:`LeaseTaken` when another holds it; the block's end raises
    :class:`~pipeline.errors.LeaseLost` when the lease was lost while it ran."""
    if store is None:
        yield
        return
    try:
        lease = acquire(store, lease_name(identity), Holder.this_process(run_id), ttl_s)
    except LeaseTaken as exc:
        raise LeaseTaken(
            f"deploy target {identity} is being changed by another run: {exc.message}",
            holder=exc.holder,
            hint=exc.hint,
        ) from None
    log(f"lease {lease.name} taken in store {store.url} (for {ttl_s:g} s, renewed while this runs)")
    try:
        with lease.keep_alive():
            yield
    finally:
        try:
            lease.release()
        except StoreUnavailable as exc:  # it lapses by itself after the TTL
            log(f"warning: lease {lease.name} not given up ({exc.message}); it lapses in {ttl_s:g} s")
