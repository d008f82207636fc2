"""Which store a URL names (``pipeline/store/location.py``), and the URLs that are refused (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import EXIT_USAGE, ConfigError, StoreUnavailable
from pipeline.store import LocalStore, S3Settings, S3Store, open_store
from pipeline.store.location import LocalLocation, S3Location, parse


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (".pipeline", LocalLocation(Path("/repo/.pipeline"), must_exist=False)),
        ("/var/lib/pipeline", LocalLocation(Path("/var/lib/pipeline"), must_exist=False)),
        ("file:///mnt/share/pipeline", LocalLocation(Path("/mnt/share/pipeline"), must_exist=True)),
        ("file://localhost/mnt/share/", LocalLocation(Path("/mnt/share"), must_exist=True)),
        ("s3://my-bucket", S3Location("my-bucket", "")),
        ("s3://my-bucket/", S3Location("my-bucket", "")),
        ("s3://my.bucket-1/team/pipeline/", S3Location("my.bucket-1", "team/pipeline")),
    ],
)
def test_a_url_names_a_location(url: str, expected: object) -> None:
    assert parse(url, base_dir=Path("/repo")) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "the store URL is empty"),
        ("gs://bucket/x", "unknown store scheme 'gs://'"),
        ("https://bucket.s3.amazonaws.com/x", "unknown store scheme 'https://'"),
        ("file://nas/share", "names host 'nas'"),
        ("file:///", "has no folder"),
        ("s3://", "is not an S3 bucket name"),
        ("s3://My_Bucket/x", "'My_Bucket' is not an S3 bucket name"),
        ("s3://bucket/a//b", "has an empty, '.' or '..' part"),
        ("s3://bucket/x?versionId=1", "has a query or fragment"),
    ],
)
def test_a_bad_url_is_a_config_error(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match="store.url: .*" + says) as caught:
        open_store(url, base_dir=Path("/repo"))
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.hint  # what to write instead


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    local = open_store("state", base_dir=tmp_path)
    assert isinstance(local, LocalStore) and local.root == tmp_path / "state" and local.root.is_dir()
    s3 = open_store("s3://bucket-a/p", base_dir=tmp_path, s3=S3Settings(region="eu-west-1"))
    assert isinstance(s3, S3Store) and s3.url == "s3://bucket-a/p"


def test_a_share_that_is_not_mounted_is_never_created(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist") as caught:
        open_store(f"file://{tmp_path}/not-mounted", base_dir=tmp_path)
    assert "mount the shared folder" in str(caught.value)
    assert not (tmp_path / "not-mounted").exists()
