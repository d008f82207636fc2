"""The store's backends, each a fixture: a folder (``tmp_path``), a ``file://`` share, and S3 on a real
``moto_server`` (``tests.support.moto_s3``) that this session starts on a free port."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.store import S3Settings, Store, open_store
from tests.support.realtools import start_moto

BUCKET = "pipeline-store-tests"
BACKENDS = ("local", "file", "s3")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def settings(self, **overrides: object) -> S3Settings:
        keywords: dict[str, object] = {
            "region": "us-east-1",
            "endpoint_url": self.endpoint_url,
            "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
            **overrides,
        }
        return S3Settings(**keywords)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A ``moto_server`` with the bucket :data:`BUCKET`, for the whole session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTO_", "AWS_"))}
    moto = start_moto("tests.support.moto_s3", tmp_path_factory.mktemp("moto-s3"), env)
    try:
        import boto3

        server = S3Server(moto.url)
        settings = server.settings()
        boto3.client(
            "s3", region_name=settings.region, endpoint_url=server.endpoint_url, **settings.credentials
        ).create_bucket(Bucket=BUCKET)
        yield server
    finally:
        moto.process.terminate()
        moto.process.wait(timeout=20)


@dataclass(frozen=True)
class Backend:
    """How to open one test's store again: the URL, the folder it is taken from and the S3 settings."""

    name: str
    url: str
    base_dir: Path
    s3: S3Settings | None

    def open(self) -> Store:
        return open_store(self.url, base_dir=self.base_dir, s3=self.s3)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend in turn, empty: a folder, a share, and a fresh prefix of the moto bucket."""
    if request.param == "local":
        return Backend("local", ".pipeline", tmp_path, None)
    if request.param == "file":
        (tmp_path / "share").mkdir()
        return Backend("file", f"file://{tmp_path}/share/", tmp_path, None)
    server: S3Server = request.getfixturevalue("s3_server")
    return Backend("s3", f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}", tmp_path, server.settings())


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def race(takers: int, take: Callable[[int], object]) -> list[int]:
    """Start ``takers`` threads at once, each calling ``take(its number)``; the numbers of those whose call
    returned something true (a won swap, a lease) or did not raise."""
    barrier = threading.Barrier(takers)
    won: list[int] = []

    def run(number: int) -> None:
        barrier.wait()
        try:
            if take(number):
                won.append(number)
        except Exception:  # pylint: disable=broad-exception-caught  # losing may be an exception
            pass

    threads = [threading.Thread(target=run, args=(n,)) for n in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won
