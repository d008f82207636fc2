"""Amazon S3 (or MinIO, moto) through boto3: the objects of one bucket, for :mod:`pipeline.store.s3`.

The only module that talks to S3. Like :mod:`pipeline.adapters.ecs`: credentials come from boto3's standard
chain (environment, shared config and profile, container or instance role) unless given; ``endpoint_url``
points boto3 at a stand-in (MinIO, ``moto_server``), with path-style addressing since a stand-in has no
per-bucket host names; retries are botocore's ``standard`` mode. boto3 is imported only when a client is
made. Every failure is :class:`~pipeline.errors.StoreUnavailable`, naming the call and what to do.

Conditional writes, as checked at the source:

- botocore 1.44.8 (``botocore/data/s3/2006-03-01/service-2.json.gz``, shape ``PutObjectRequest``) has
  ``IfMatch`` (header ``If-Match``: write only when the object's ETag is this one) and ``IfNoneMatch``
  (``If-None-Match``, only ``'*'``: write only when the key is free); S3 answers ``412 PreconditionFailed``
  when the condition fails, and ``409 ConditionalRequestConflict`` when a concurrent write to the key was
  under way (the botocore documentation of both members). ``DeleteObjectRequest`` has ``IfMatch`` too.
- moto 5.2.5 (``moto/s3/responses.py``, ``S3Response.put_object``) honours both: ``PreconditionFailed``
  (412) for an ETag that differs or a key that is taken, and ``NoSuchKey`` (404) for ``If-Match`` on a key
  that is gone (S3 answers the same). It checks and then stores without a lock, so its check-and-write is
  not one step under concurrent requests; the tests run it with a lock around ``put_object``
  (``tests/support/moto_s3.py``), as S3 itself guarantees.

A lost condition (412, 409, or 404 under ``If-Match``) is not an error here: :meth:`S3Objects.put` returns
None and the caller reads again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pipeline.adapters.aws import CREDENTIALS_HINT
from pipeline.errors import StoreUnavailable

# What S3 answers when a conditional write loses (see the module's docstring).
_CONDITION_LOST = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_PERMISSIONS = "s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket"
_NETWORK_HINT = "check the store URL's bucket, the S3 endpoint (AWS_ENDPOINT_URL), the region and the network"


class S3Objects:
    """The objects of ``bucket`` under the calls the store makes; keys are full object keys."""

    def __init__(
        self,
        *,
        bucket: str,
        region: str = "",
        endpoint_url: str = "",
        credentials: Mapping[str, str] | None = None,
        max_attempts: int = 4,
        connect_timeout_s: float = 5,
        read_timeout_s: float = 30,
    ) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        session = boto3.session.Session(region_name=region or None, **(credentials or {}))
        config = BotoConfig(
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"mode": "standard", "max_attempts": max_attempts},
            user_agent_extra="mlops-pipeline",
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self._client = session.client("s3", endpoint_url=endpoint_url or None, config=config)

    def get(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when there is none."""
        from botocore.exceptions import ClientError

        with _s3_call("GetObject", self.bucket, key):
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            return answer["Body"].read(), str(answer["ETag"])

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str | None:
        """Write the object in one PutObject; its new ETag, or None when the condition was lost."""
        from botocore.exceptions import ClientError

        conditions: dict[str, str] = {}
        if if_match is not None:
            conditions["IfMatch"] = if_match
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        with _s3_call("PutObject", self.bucket, key):
            try:
                answer = self._client.put_object(Bucket=self.bucket, Key=key, Body=data, **conditions)
            except ClientError as exc:
                if conditions and _code(exc) in _CONDITION_LOST:
                    return None
                raise
            return str(answer["ETag"])

    def keys(self, prefix: str) -> list[str]:
        """Every key that begins with ``prefix``."""
        found: list[str] = []
        with _s3_call("ListObjectsV2", self.bucket, prefix):
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                found.extend(str(item["Key"]) for item in page.get("Contents", []))
        return found

    def delete(self, key: str) -> None:
        with _s3_call("DeleteObject", self.bucket, key):
            self._client.delete_object(Bucket=self.bucket, Key=key)


def _code(exc: Any) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")


@contextmanager
def _s3_call(what: str, bucket: str, key: str) -> Iterator[None]:
    """Run one S3 call on ``s3://bucket/key``, turning every failure into :class:`StoreUnavailable`."""
    from botocore import exceptions as boto

    where = f"S3 {what} s3://{bucket}/{key}"
    try:
        yield
    except boto.NoCredentialsError:
        raise StoreUnavailable(f"{where}: no AWS credentials found", hint=CREDENTIALS_HINT) from None
    except boto.ClientError as exc:
        code = _code(exc)
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        if code == "NoSuchBucket":
            hint = f"create the bucket '{bucket}', or fix the store URL"
        elif code in _DENIED:
            hint = f"the AWS identity needs {_PERMISSIONS} on s3://{bucket}"
        elif code in _EXPIRED:
            hint = "refresh the AWS credentials"
        else:
            hint = _NETWORK_HINT
        raise StoreUnavailable(f"{where} failed: {code}: {message}", hint=hint) from None
    except boto.BotoCoreError as exc:  # refused, reset, timed out (retries spent), bad region, ...
        raise StoreUnavailable(f"{where} failed: {exc}", hint=_NETWORK_HINT) from None
