"""The pipeline's store: what it remembers, in one place several agents can share (issue 25).

``open_store(url)`` picks the backend by the URL's form (:mod:`pipeline.store.location`): a folder
(:mod:`pipeline.store.local`, also for ``file://`` shares) or an S3 bucket (:mod:`pipeline.store.s3`). Every
backend offers the operations of :class:`~pipeline.store.base.Store`: whole-object ``get``/``put``,
``put_if_absent``, versioned reads and compare-and-swap, ``list``, ``delete`` and content-addressed blobs.
Leases (:mod:`pipeline.store.lease`) build a lock shared by the agents on top of them.

Failures: a bad URL is :class:`~pipeline.errors.ConfigError` (exit 2); a store that cannot be reached or
used is :class:`~pipeline.errors.StoreUnavailable` (exit 3); a damaged blob is
:class:`~pipeline.errors.StoreCorrupt` (a miss to the caller); a lease another holds is
:class:`~pipeline.errors.LeaseTaken`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.store.base import Store, Version
from pipeline.store.lease import Holder, Lease, LeaseRecord, acquire
from pipeline.store.local import LocalStore
from pipeline.store.location import LocalLocation, S3Location, parse
from pipeline.store.s3 import S3Settings, S3Store

__all__ = [
    "Holder",
    "Lease",
    "LeaseRecord",
    "LocalStore",
    "S3Settings",
    "S3Store",
    "Store",
    "Version",
    "acquire",
    "open_store",
]


def open_store(url: str, *, base_dir: Path, s3: S3Settings | None = None) -> Store:
    """The store ``url`` names; a relative folder is taken from ``base_dir`` (the checkout)."""
    location = parse(url, base_dir=base_dir)
    if isinstance(location, S3Location):
        return S3Store(location.bucket, location.prefix, s3 or S3Settings())
    assert isinstance(location, LocalLocation)
    return LocalStore(location.root, url=url, must_exist=location.must_exist)
