"""Amazon ECR logins through boto3: a registry host like ``123456789012.dkr.ecr.eu-west-1.amazonaws.com``
needs no stored password; ``GetAuthorizationToken`` gives one valid for 12 hours.

Credentials and endpoint come from boto3's own chain (``AWS_ENDPOINT_URL_ECR`` or ``AWS_ENDPOINT_URL``
point it at a stand-in). The token is fetched once per process and never logged.
"""

from __future__ import annotations

import base64
import functools
import re

from pipeline.adapters.aws import aws_call
from pipeline.errors import ToolFailed

_ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)


def parse_host(registry_url: str) -> tuple[str, str] | None:
    """``(account, region)`` of an ECR registry URL, None for any other registry."""
    host = registry_url.removeprefix("https://").split("/", 1)[0]
    match = _ECR_HOST.match(host)
    return (match.group("account"), match.group("region")) if match else None


@functools.lru_cache(maxsize=8)
def login(registry_url: str, credentials: tuple[tuple[str, str], ...] = ()) -> tuple[str, str]:
    """``(username, password)`` for docker and the registry API, from ECR's GetAuthorizationToken;
    ``credentials`` are ``boto3.session.Session``'s keywords (none: boto3's own chain)."""
    parsed = parse_host(registry_url)
    if parsed is None:
        raise ValueError(f"{registry_url} is not an ECR registry")
    account, region = parsed
    import boto3

    with aws_call("ECR", "GetAuthorizationToken"):
        client = boto3.session.Session(region_name=region, **dict(credentials)).client("ecr")
        answer = client.get_authorization_token(registryIds=[account])
    try:
        token = answer["authorizationData"][0]["authorizationToken"]
        username, password = base64.b64decode(token).decode("utf-8").split(":", 1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ToolFailed(
            f"ECR GetAuthorizationToken answered no usable token ({type(exc).__name__})"
        ) from None
    return username, password
