"""The store's backends, each a fixture: a folder (``tmp_path``), a ``file://`` share, and S3 on a real
``moto_server`` (``tests.support.moto_s3``) that this session starts on a free port."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.store import S3Settings, Store, open_store
from tests.support.s3 import BUCKET, S3Server

BACKENDS = ("local", "file", "s3")


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
