"""pipeline.secret_env: credentials out of the environment block /proc shows, still there for botocore."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline import secret_env
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("REGISTRY_PASSWORD", True),
        ("CUSTOM_DEPLOY_TOKEN", True),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", True),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", False),  # an address, which botocore must find
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", False),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", False),
        ("SSH_AUTH_SOCK", False),
        ("PATH", False),
    ],
)
def test_what_counts_as_a_credential(name: str, secret: bool) -> None:
    assert secret_env.is_secret_name(name) is secret


def test_after_the_start_again_aws_credentials_are_in_this_process_only() -> None:
    """An ECS task role or EKS Pod Identity agent: botocore reads the token from os.environ in-process."""
    program = (
        "from pipeline import secret_env; secret_env.reexec_without_secrets(); import os; "
        "block = open('/proc/self/environ', 'rb').read(); "
        "print(os.environ.get('AWS_CONTAINER_AUTHORIZATION_TOKEN'), os.environ.get('REGISTRY_PASSWORD'), "
        "os.environ.get('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'), "
        "b'tok-123' in block, b'reg-456' in block)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "tok-123",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc",
        "REGISTRY_PASSWORD": "reg-456",
    }
    out = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["tok-123", "None", "/v2/credentials/abc", "False", "False"], out.stderr
