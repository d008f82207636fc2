"""``custom_jenkins/manage.sh check``: the controller is refused before anything starts when a setting or
a secret file is missing, and no secret value is ever printed. (``build`` and ``up`` need Docker Hub and
jenkins.io, which this machine cannot reach.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration  # `check` wants the test bed's Docker engine socket

SCRIPT = ROOT / "custom_jenkins" / "manage.sh"
SECRETS = {
    "JENKINS_ADMIN_ID": "admin",
    "JENKINS_ADMIN_PASSWORD": "s3cret-admin-pw",
    "REGISTRY_USERNAME": "ci-user",
    "REGISTRY_PASSWORD": "s3cret-registry-pw",
}


def manage(
    *args: str, secrets: Path, repo: str = "https://git.example/iris.git"
) -> subprocess.CompletedProcess:
    env = {**os.environ, "JENKINS_SECRETS": str(secrets), "GIT_REPO_URL": repo}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir(mode=0o700)
    directory.chmod(0o700)
    for name, value in SECRETS.items():
        (directory / name).write_text(value, encoding="utf-8")
    return directory


def test_complete_settings_pass_without_showing_a_secret(secrets: Path) -> None:
    result = manage("check", secrets=secrets)

    assert result.returncode == 0, result.stderr
    assert "settings and secrets are complete" in result.stdout
    assert "credential 'aws' is empty" in result.stdout
    for value in SECRETS.values():
        assert value not in result.stdout + result.stderr


def test_a_missing_secret_is_named(secrets: Path) -> None:
    (secrets / "REGISTRY_PASSWORD").unlink()
    (secrets / "JENKINS_ADMIN_ID").write_text("", encoding="utf-8")

    result = manage("check", secrets=secrets)

    assert result.returncode == 2
    assert "missing or empty secret file(s)" in result.stderr
    assert "JENKINS_ADMIN_ID REGISTRY_PASSWORD" in result.stderr


def test_a_readable_secrets_directory_is_refused(secrets: Path) -> None:
    secrets.chmod(0o755)

    result = manage("check", secrets=secrets)

    assert result.returncode == 2
    assert "must be mode 700" in result.stderr


def test_without_a_repository_url_nothing_starts(secrets: Path) -> None:
    result = manage("up", secrets=secrets, repo="")

    assert result.returncode == 2
    assert "set GIT_REPO_URL" in result.stderr


def test_an_unknown_command_prints_the_usage(secrets: Path) -> None:
    result = manage("restart", secrets=secrets)

    assert result.returncode == 2
    assert "usage: bash custom_jenkins/manage.sh build|check|up|down|status|logs" in result.stderr
