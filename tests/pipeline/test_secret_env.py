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


def test_processes_started_without_an_environment_of_their_own_do_not_inherit_the_credentials(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.environ holds the AWS_* credentials for botocore; Trivy (process.run without env), git and the
    version probes start from it, and must not get them: a child's own /proc/PID/environ is read here."""
    from pipeline.adapters import git, process

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-789")
    monkeypatch.setenv("CUSTOM_DEPLOY_TOKEN", "custom-tok-012")
    monkeypatch.setenv("KEEP_ME", "visible")
    probe = tmp_path / "bin" / "git"
    probe.parent.mkdir()
    probe.write_text(f"#!/bin/sh\ntr '\\0' '\\n' < /proc/$$/environ > {tmp_path}/git-env\necho 0123abcd\n")
    probe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{probe.parent}{os.pathsep}{os.environ['PATH']}")

    lines: list[str] = []
    result = process.run(["sh", "-c", "tr '\\0' '\\n' < /proc/$$/environ"], log=lines.append)
    version = process.version_line(["sh", "-c", "tr '\\0' '\\n' < /proc/$$/environ | sort"])
    assert git.head_sha(tmp_path) == "0123abcd"

    for seen in (result.output, str(version), (tmp_path / "git-env").read_text()):
        assert "aws-secret-789" not in seen and "custom-tok-012" not in seen
    assert "KEEP_ME=visible" in result.output
    assert "KEEP_ME=visible" in (tmp_path / "git-env").read_text()
