"""A store that cannot be used is :class:`StoreUnavailable` (exit 3) saying what to do, never a raw
botocore or OS traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.adapters.docker_containers import free_port
from pipeline.errors import EXIT_PREREQUISITE, StoreUnavailable
from pipeline.store import LocalStore, S3Store
from tests.pipeline.store.conftest import BUCKET, S3Server


def _unavailable(call: object) -> StoreUnavailable:
    with pytest.raises(StoreUnavailable) as caught:
        call()  # type: ignore[operator]
    error = caught.value
    assert error.exit_code == EXIT_PREREQUISITE
    assert error.__cause__ is None and error.__suppress_context__  # no chained botocore traceback
    return error


def test_s3_that_does_not_answer(s3_server: S3Server) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    store = S3Store(BUCKET, "p", s3_server.settings(endpoint_url=closed, max_attempts=2, connect_timeout_s=1))
    for call in (lambda: store.get("a"), lambda: store.put("a", b"x"), store.list):
        error = _unavailable(call)
        assert f"s3://{BUCKET}/p/a" in str(error) or "ListObjectsV2" in str(error)
        assert closed in str(error)  # botocore's message names the endpoint it could not reach
        assert "check the store URL's bucket, the S3 endpoint (AWS_ENDPOINT_URL)" in str(error)


def test_a_bucket_that_does_not_exist(s3_server: S3Server) -> None:
    store = S3Store("no-such-bucket", "", s3_server.settings())
    error = _unavailable(lambda: store.put("a", b"x"))
    assert "NoSuchBucket" in str(error) and "create the bucket 'no-such-bucket'" in str(error)


def test_no_credentials(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = S3Store(BUCKET, "", s3_server.settings(credentials={}))
    error = _unavailable(lambda: store.get("a"))
    assert "no AWS credentials found" in str(error) and "AWS_ACCESS_KEY_ID" in str(error)


def test_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the store's folder should be")
    error = _unavailable(lambda: LocalStore(tmp_path / "taken"))
    assert "cannot open" in str(error)
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "cache").write_text("a file where a folder of keys should be")
    error = _unavailable(lambda: store.put("cache/key", b"x"))
    assert "cannot write cache/key" in str(error) and str(tmp_path / "store") in str(error)
