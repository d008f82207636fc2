"""Where the store lives, parsed once from its URL.

- a plain path (``.pipeline``, ``/var/lib/pipeline``): a folder on this machine, relative to the checkout;
  created when missing (today's default, one agent's own memory);
- ``file:///shared/path``: a folder every agent mounts (NFS, a shared volume). It must exist already: a
  share that is not mounted must not silently become a local folder nobody else sees;
- ``s3://bucket/prefix``: an S3 bucket (or MinIO, moto) under a key prefix.

Anything else is a :class:`~pipeline.errors.ConfigError` (exit 2) that shows the three forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.errors import ConfigError

FORMS = "a folder (.pipeline, /srv/pipeline), file:///shared/folder or s3://bucket/prefix"
# S3's rules for a bucket name (general purpose buckets): 3 to 63 lowercase letters, digits, '.' and '-',
# beginning and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class LocalLocation:
    """A folder; ``must_exist`` for a shared one (``file://``), which the store never creates."""

    root: Path
    must_exist: bool


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing '/'; '' for the whole bucket


Location = LocalLocation | S3Location


def parse(url: str, *, base_dir: Path, key: str = "store.url") -> Location:
    """The location ``url`` names; a relative plain path is taken from ``base_dir`` (the checkout)."""
    text = url.strip()
    if not text:
        raise ConfigError("the store URL is empty", key=key, hint=f"give {FORMS}")
    if not _SCHEME.match(text):
        return LocalLocation((base_dir / text).resolve(), must_exist=False)
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise ConfigError(
            f"'{url}' has a query or fragment, which a store URL never has", key=key, hint=FORMS
        )
    if parts.scheme == "file":
        return _file(url, parts.netloc, unquote(parts.path), key)
    if parts.scheme == "s3":
        return _s3(url, parts.netloc, unquote(parts.path), key)
    raise ConfigError(f"'{url}': unknown store scheme '{parts.scheme}://'", key=key, hint=f"give {FORMS}")


def _file(url: str, host: str, path: str, key: str) -> LocalLocation:
    if host not in ("", "localhost"):
        raise ConfigError(
            f"'{url}' names host '{host}'; a file:// store is a folder this machine mounts",
            key=key,
            hint="mount the share and give its path: file:///mnt/share/pipeline (three slashes)",
        )
    if not path.startswith("/") or path.strip("/") == "":
        raise ConfigError(
            f"'{url}' has no folder", key=key, hint="give an absolute path: file:///mnt/share/pipeline"
        )
    return LocalLocation(Path(path).resolve(), must_exist=True)


def _s3(url: str, bucket: str, path: str, key: str) -> S3Location:
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"'{url}': '{bucket}' is not an S3 bucket name",
            key=key,
            hint="3 to 63 lowercase letters, digits, '.' and '-': s3://my-bucket/pipeline",
        )
    prefix = path.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(
            f"'{url}': the key prefix '{prefix}' has an empty, '.' or '..' part",
            key=key,
            hint="give a plain prefix: s3://my-bucket/team/pipeline",
        )
    return S3Location(bucket, prefix)
