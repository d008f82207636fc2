"""``custom_jenkins/manage.sh check`` and the image's ``check-secrets``: the controller is refused before
anything starts when a setting or a secret file is missing, or when Jenkins (uid 1000) could not read a secret
file, which JCasC would otherwise turn into an empty credential with only a warning. No secret value is ever
printed. The in-image check runs against the stand-in (stage ``tools`` of custom_jenkins/Dockerfile, which
carries the same ``check-secrets``). (``build`` and ``up`` need Docker Hub and jenkins.io, which this machine
cannot reach.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.standin import run_in

pytestmark = pytest.mark.integration  # `check` wants the test bed's Docker engine socket

SCRIPT = ROOT / "custom_jenkins" / "manage.sh"
# An image that does not exist: `check` then leaves the in-image check to `up` (tests without the stand-in).
NO_IMAGE = "iris-jenkins-no-such-image:test"
JENKINS_UID = 1000
SECRETS = {
    "JENKINS_ADMIN_ID": "admin",
    "JENKINS_ADMIN_PASSWORD": "s3cret-admin-pw",
    "REGISTRY_USERNAME": "ci-user",
    "REGISTRY_PASSWORD": "s3cret-registry-pw",
}


def manage(
    *args: str, secrets: Path, repo: str = "https://git.example/iris.git", image: str = NO_IMAGE
) -> subprocess.CompletedProcess:
    env = {**os.environ, "JENKINS_SECRETS": str(secrets), "GIT_REPO_URL": repo, "JENKINS_IMAGE": image}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def give_to_jenkins(directory: Path) -> None:
    """What custom_jenkins/README.md tells the operator: everything owned by uid 1000, dir 700, files 600."""
    os.chown(directory, JENKINS_UID, JENKINS_UID)
    directory.chmod(0o700)
    for path in directory.iterdir():
        os.chown(path, JENKINS_UID, JENKINS_UID)
        path.chmod(0o600)


def assert_no_secret_shown(*outputs: str) -> None:
    for value in SECRETS.values():
        for output in outputs:
            assert value not in output


@pytest.fixture
def as_root() -> None:
    """The tests that hand the secrets to uid 1000 chown them: the test bed runs as root (TESTBED.md)."""
    if os.geteuid() != 0:
        pytest.fail(
            "these tests chown files to uid 1000: run them as root, as on the test bed", pytrace=False
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


def test_without_the_image_the_in_image_check_is_left_to_up(secrets: Path) -> None:
    result = manage("check", secrets=secrets)

    assert result.returncode == 0, result.stderr
    assert f"no image {NO_IMAGE} yet: the check inside it, as uid 1000, runs at 'up'" in result.stdout
    assert f"belongs to uid {os.getuid()}, not 1000: Jenkins will not be able to read it" in result.stdout


# --- the check inside the image, as uid 1000 (against the stand-in) ----------------------------------


@pytest.mark.usefixtures("as_root")
def test_a_root_only_secrets_directory_is_refused_inside_the_image(
    secrets: Path, jenkins_standin: str
) -> None:
    """Mode 700, owned by root: the host (root) reads every file, Jenkins (uid 1000) none of them."""
    assert secrets.stat().st_uid == 0 and secrets.stat().st_mode & 0o777 == 0o700

    result = manage("check", secrets=secrets, image=jenkins_standin)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "uid 1000 (gid 1000) cannot use these secrets in /run/secrets" in result.stderr
    assert "the directory /run/secrets itself is not readable by uid 1000" in result.stderr
    assert f"unreadable: {' '.join(SECRETS)}" in result.stderr
    assert f"manage: error: Jenkins (uid 1000) cannot use the secrets in {secrets} inside" in result.stderr
    assert f"chown -R 1000:1000 {secrets}; chmod 700 {secrets}; chmod 600 {secrets}/*" in result.stderr
    assert "settings and secrets are complete" not in result.stdout
    assert_no_secret_shown(result.stdout, result.stderr)


@pytest.mark.usefixtures("as_root")
def test_a_secrets_directory_owned_by_jenkins_passes_inside_the_image(
    secrets: Path, jenkins_standin: str
) -> None:
    give_to_jenkins(secrets)

    result = manage("check", secrets=secrets, image=jenkins_standin)

    assert result.returncode == 0, result.stderr
    assert f"uid 1000 reads every required secret inside {jenkins_standin}" in result.stdout
    assert "settings and secrets are complete" in result.stdout
    assert_no_secret_shown(result.stdout, result.stderr)


@pytest.mark.usefixtures("as_root")
def test_one_unreadable_file_is_named_inside_the_image(secrets: Path, jenkins_standin: str) -> None:
    give_to_jenkins(secrets)
    os.chown(secrets / "REGISTRY_PASSWORD", 0, 0)  # e.g. rewritten later by root, mode 600
    optional = secrets / "AWS_ACCESS_KEY_ID"  # present, so it must be readable too: root's, mode 600
    optional.write_text("AKIA-not-a-key", encoding="utf-8")
    optional.chmod(0o600)

    result = manage("check", secrets=secrets, image=jenkins_standin)

    assert result.returncode == 2
    assert "unreadable: REGISTRY_PASSWORD AWS_ACCESS_KEY_ID" in result.stderr
    assert "  missing:" not in result.stderr and "itself is not readable" not in result.stderr
    assert_no_secret_shown(result.stdout, result.stderr, "AKIA-not-a-key")


# --- check-secrets as the entrypoint: Jenkins does not start ------------------------------------------

# Stands for jenkins.sh: it prints, so the tests see whether it ran (`true` would leave no trace).
STARTED = ("bash", "-c", "echo JENKINS-STARTED as $(id -u)")


def start_with_entrypoint(image: str, secrets: Path, *command: str) -> subprocess.CompletedProcess:
    """The controller's start: ``check-secrets COMMAND`` with the secrets mounted where Jenkins reads them."""
    return run_in(
        image, *command, mounts={str(secrets): "/run/secrets"}, entrypoint="/usr/local/bin/check-secrets"
    )


@pytest.mark.usefixtures("as_root")
def test_the_entrypoint_refuses_to_start_with_unreadable_secrets(secrets: Path, jenkins_standin: str) -> None:
    result = start_with_entrypoint(jenkins_standin, secrets, *STARTED)

    assert result.returncode == 2
    assert "JENKINS-STARTED" not in result.stdout + result.stderr
    assert "uid 1000 (gid 1000) cannot use these secrets in /run/secrets" in result.stderr
    assert "chown -R 1000:1000 secrets; chmod 700 secrets; chmod 600 secrets/*" in result.stderr
    assert "check-secrets: refusing to start bash" in result.stderr
    assert_no_secret_shown(result.stdout, result.stderr)


@pytest.mark.usefixtures("as_root")
def test_the_entrypoint_refuses_missing_and_empty_secrets(secrets: Path, jenkins_standin: str) -> None:
    give_to_jenkins(secrets)
    (secrets / "JENKINS_ADMIN_PASSWORD").unlink()
    (secrets / "REGISTRY_USERNAME").write_text("", encoding="utf-8")

    result = start_with_entrypoint(jenkins_standin, secrets, "true")

    assert result.returncode == 2
    assert "missing:    JENKINS_ADMIN_PASSWORD" in result.stderr
    assert "empty:      REGISTRY_USERNAME" in result.stderr
    assert "check-secrets: refusing to start true" in result.stderr
    assert_no_secret_shown(result.stdout, result.stderr)


@pytest.mark.usefixtures("as_root")
def test_the_entrypoint_starts_jenkins_with_readable_secrets(secrets: Path, jenkins_standin: str) -> None:
    give_to_jenkins(secrets)

    result = start_with_entrypoint(jenkins_standin, secrets, *STARTED)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "JENKINS-STARTED as 1000"
    assert "the 4 required secrets in /run/secrets are readable by uid 1000" in result.stderr
    assert_no_secret_shown(result.stdout, result.stderr)
