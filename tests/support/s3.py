"""S3 on a real ``moto_server`` (``tests.support.moto_s3``), started once a session on a free port, with the
bucket :data:`BUCKET`: the ``s3_server`` fixture (a plugin of ``tests/conftest.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pipeline.store import S3Settings
from tests.support.realtools import start_moto

BUCKET = "pipeline-store-tests"


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
