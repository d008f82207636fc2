"""ECR logins: the registry host is recognised, and the token comes from a real ECR API (moto_server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.adapters import ecr
from pipeline.config import load
from pipeline.errors import EnvironmentProblem
from pipeline.stages import _images
from pipeline.stages.push import _ecr_check
from tests.support.realtools import MotoServer

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (ECR, ("123456789012", "eu-west-1")),
        (f"https://{ECR}/iris", ("123456789012", "eu-west-1")),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", ("123456789012", "us-east-1")),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ("123456789012", "cn-north-1")),
        ("docker.io", None),
        ("localhost:5000", None),
        ("12345.dkr.ecr.eu-west-1.amazonaws.com", None),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example", None),
    ],
)
def test_ecr_hosts_are_recognised(url: str, expected: tuple[str, str] | None) -> None:
    assert ecr.parse_host(url) == expected


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    ecr.login.cache_clear()
    return monkeypatch


@pytest.mark.integration
def test_an_ecr_registry_gets_its_credentials_from_boto3(
    aws_env: pytest.MonkeyPatch, moto_server: Callable[..., MotoServer], tmp_path: Path
) -> None:
    server = moto_server(running=2)
    aws_env.setenv("AWS_ENDPOINT_URL_ECR", server.url)
    aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "pipeline.toml").write_text("", encoding="utf-8")
    config = load(tmp_path, overrides=[f"registry.url={ECR}"], environ={})

    username, password = _images.credentials(config) or ("", "")

    assert username == "AWS"
    assert len(password) > 8
    assert _images.auth_config(config) == {"username": "AWS", "password": password, "serveraddress": ECR}
    assert _ecr_check(config).ok


def test_without_aws_credentials_the_push_check_says_what_to_set(
    aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws_env.delenv("AWS_ACCESS_KEY_ID", raising=False)
    aws_env.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    (tmp_path / "pipeline.toml").write_text("", encoding="utf-8")
    config = load(tmp_path, overrides=[f"registry.url={ECR}"], environ={})

    check = _ecr_check(config)

    assert not check.ok
    assert check.detail == "ECR GetAuthorizationToken: no AWS credentials found"
    assert "AWS_ACCESS_KEY_ID" in check.fix
    with pytest.raises(EnvironmentProblem):
        _images.credentials(config)
