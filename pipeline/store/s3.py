"""The store in an S3 bucket, under a key prefix (``s3://bucket/prefix``).

Each write is one PutObject, which S3 makes visible whole or not at all. Conditional writes are S3's own:
``IfNoneMatch='*'`` to create, ``IfMatch=<ETag>`` to swap, and a version is the object's ETag (where this
was checked: :mod:`pipeline.adapters.s3`). S3 reads are strongly consistent (since December 2020), so a
read after a write sees it, on every agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.store.base import Keys, Store, Version, check_key, check_prefix


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3: as for ECS, boto3's chain unless ``credentials`` (``boto3.session.Session``'s
    keywords) are given; ``endpoint_url`` for MinIO or moto."""

    region: str = ""
    endpoint_url: str = ""
    credentials: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int = 4
    connect_timeout_s: float = 5
    read_timeout_s: float = 30


class S3Store(Store):
    """The objects under ``prefix`` in ``bucket``; ``objects`` replaces the adapter (tests)."""

    def __init__(self, bucket: str, prefix: str, settings: S3Settings, *, objects: Any = None) -> None:
        from pipeline.adapters.s3 import S3Objects

        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._root = f"{prefix}/" if prefix else ""
        self._objects = objects or S3Objects(
            bucket=bucket,
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            credentials=settings.credentials,
            max_attempts=settings.max_attempts,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
        )

    def get(self, key: str) -> bytes | None:
        found = self._objects.get(self._root + check_key(key))
        return None if found is None else bytes(found[0])

    def put(self, key: str, data: bytes) -> None:
        self._objects.put(self._root + check_key(key), data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.swap(key, data, None) is not None

    def read_versioned(self, key: str) -> tuple[bytes, Version] | tuple[None, None]:
        found = self._objects.get(self._root + check_key(key))
        if found is None:
            return None, None
        return bytes(found[0]), str(found[1])

    def swap(self, key: str, data: bytes, expected_version: Version | None) -> Version | None:
        full = self._root + check_key(key)
        if expected_version is None:
            etag = self._objects.put(full, data, if_none_match=True)
        else:
            etag = self._objects.put(full, data, if_match=expected_version)
        return None if etag is None else str(etag)

    def list(self, prefix: str = "") -> Keys:
        start = len(self._root)
        return sorted(key[start:] for key in self._objects.keys(self._root + check_prefix(prefix)))

    def delete(self, key: str) -> None:
        self._objects.delete(self._root + check_key(key))
