"""pipeline.config: layers, types, sources, and the errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline import config
from pipeline.errors import EXIT_USAGE, ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pipeline.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert cfg.profile == "local"
    assert cfg.deploy.target == "local"
    assert cfg.sources["trivy.severity"] == "default"


def test_precedence_file_profile_env_set(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        """
[trivy]
severity = "LOW"
[registry]
url = "file:5000"
[profiles.ci]
trivy.severity = "MEDIUM"
registry.url = "profile:5000"
deploy.local.port = 9000
""",
    )
    cfg = config.load(
        root,
        profile="ci",
        environ={"PIPELINE_TRIVY__SEVERITY": "HIGH", "PIPELINE_DEPLOY__LOCAL__PORT": "9100"},
        overrides=["trivy.severity=CRITICAL"],
    )
    assert cfg.trivy.severity == "CRITICAL" and cfg.sources["trivy.severity"] == "--set"
    assert (
        cfg.deploy.local.port == 9100
        and cfg.sources["deploy.local.port"] == "env PIPELINE_DEPLOY__LOCAL__PORT"
    )
    assert cfg.registry.url == "profile:5000"
    assert cfg.sources["registry.url"] == "pipeline.toml [profiles.ci]"


def test_profile_from_environment(tmp_path: Path) -> None:
    root = _write(tmp_path, '[profiles.aws]\ndeploy.target = "ecs"\n')
    assert config.load(root, environ={"PIPELINE_PROFILE": "aws"}).deploy.target == "ecs"


def test_aws_aliases_and_lists(tmp_path: Path) -> None:
    cfg = config.load(
        tmp_path,
        environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:5999", "AWS_REGION": "eu-west-1"},
        overrides=["trivy.scanners=secret,misconfig", 'lint.paths=["a", "b"]', "deploy.ecs.rollback=false"],
    )
    assert cfg.deploy.ecs.endpoint_url == "http://127.0.0.1:5999"
    assert cfg.deploy.ecs.region == "eu-west-1"
    assert cfg.trivy.scanners == ("secret", "misconfig")
    assert cfg.lint.paths == ("a", "b")
    assert cfg.deploy.ecs.rollback is False


@pytest.mark.parametrize(
    ("toml", "overrides", "key"),
    [
        ("[trivy]\nseverity_level = 'HIGH'\n", [], "trivy.severity_level"),
        ("[nosuch]\nx = 1\n", [], "nosuch"),
        ("[pipeline]\njobs = 'two'\n", [], "pipeline.jobs"),
        ("[trivy]\nignore_unfixed = 'yes'\n", [], "trivy.ignore_unfixed"),
        ("[lint]\npaths = 'pipeline'\n", [], "lint.paths"),
        ("[deploy]\nimage = 'repo:latest'\n", [], "deploy.image"),
        ("", ["pipeline.jobs=-1"], "pipeline.jobs"),
        ("", ["deploy.local.port=99999"], "deploy.local.port"),
        ("", ["timeouts.build=-1"], "timeouts.build"),
        ("", ["trivy.ignore_unfixed=maybe"], "trivy.ignore_unfixed"),
        ("", ["no.such.key=1"], "no.such.key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, overrides: list[str], key: str) -> None:
    root = _write(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        config.load(root, overrides=overrides)
    assert info.value.key == key
    assert key in str(info.value)
    assert info.value.exit_code == EXIT_USAGE


def test_unknown_profile_lists_known_ones(tmp_path: Path) -> None:
    root = _write(tmp_path, "[profiles.aws]\n[profiles.local]\n")
    with pytest.raises(ConfigError, match=r"unknown profile 'prod'.*aws, local"):
        config.load(root, profile="prod")


def test_malformed_set_and_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        config.load(tmp_path, overrides=["trivy.severity"])
    root = _write(tmp_path, "[trivy\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(root)


def test_unknown_env_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PIPELINE_TRIVY__SEVERTY"):
        config.load(tmp_path, environ={"PIPELINE_TRIVY__SEVERTY": "LOW"})


def test_secrets_come_from_env_and_are_redacted(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, environ={"DOCKERHUB_USERNAME": "bob", "DOCKERHUB_TOKEN": "s3cr3t-token"})
    assert cfg.secrets.registry_username == "bob"
    assert cfg.secrets.registry_password == "s3cr3t-token"
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in repr(cfg.secrets)
    rows = config.redacted(cfg)
    assert all("s3cr3t" not in str(value) for _, value, _ in rows)
    # REGISTRY_* wins over DOCKERHUB_*
    cfg = config.load(tmp_path, environ={"REGISTRY_PASSWORD": "a", "DOCKERHUB_TOKEN": "b"})
    assert cfg.secrets.registry_password == "a"


def test_the_shipped_file_is_valid_for_both_profiles(repo_root: Path) -> None:
    assert config.load(repo_root, profile="local").registry.url == "localhost:5000"
    aws = config.load(repo_root, profile="aws")
    assert aws.deploy.target == "ecs"


def test_a_file_that_is_not_utf8_is_a_config_error_naming_the_byte(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_bytes(b'[trivy]\nseverity = "HIGH"\n# caf\xe9\n')

    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)

    assert "is not UTF-8 text (byte 31 is 0xe9)" in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_an_unknown_key_in_a_profile_not_selected_is_found_now(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text(
        '[profiles.local]\ndeploy.target = "local"\n[profiles.aws]\ndeploy.ecs.clutser = "prod"\n', "utf-8"
    )

    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path, profile="local")

    assert caught.value.key == "deploy.ecs.clutser"
    assert "[profiles.aws]" in caught.value.message


def test_a_wrong_type_in_a_profile_not_selected_is_found_now(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text('[profiles.aws]\ndeploy.ecs.timeout_s = "soon"\n', "utf-8")

    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path)

    assert caught.value.key == "deploy.ecs.timeout_s"


def test_tools_get_an_allowlisted_environment_without_anything_that_looks_like_a_credential() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/ci",
        "LC_ALL": "C.UTF-8",
        "TRIVY_CACHE_DIR": "/cache",
        "TRIVY_PASSWORD": "registry-secret",
        "REGISTRY_PASSWORD": "p4ssw0rd",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "GITHUB_TOKEN": "ghp_x",
        "JENKINS_API_TOKEN": "jenkins",
        "BUILD_URL": "http://jenkins/job/1",
        "PIPELINE_TEST__WORKERS": "1",
    }

    cfg = config.load(Path("/nonexistent"), environ=environ)

    assert dict(cfg.tool_environ) == {
        "PATH": "/usr/bin",
        "HOME": "/home/ci",
        "LC_ALL": "C.UTF-8",
        "TRIVY_CACHE_DIR": "/cache",
    }


def test_every_stage_has_a_timeout_and_no_other_name_does() -> None:
    """``timeouts`` is keyed by the stage registry: a stage without a field there would be a bug."""
    from pipeline.stages import ORDER

    fields = {f.name for f in dataclasses.fields(config.TimeoutsSection)}
    assert fields == {name.replace("-", "_") for name in ORDER}
    assert config.TimeoutsSection().for_stage("trivy-image") == 900


def test_a_removed_key_says_why_it_is_gone(tmp_path: Path) -> None:
    root = _write(tmp_path, '[deploy.ecs]\nmode = "rolling"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(root, environ={})
    assert "deploy.ecs.mode" in caught.value.message and "never read" in caught.value.message


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ("pipeline.jobs=-1", "must be 0 or more (0: one per CPU core)"),
        ("deploy.local.port=0", "must be between 1 and 65535 (a TCP port)"),
        ("timeouts.lint=0", "must be greater than 0"),
        ("deploy.ecs.poll_interval_s=-2", "must be greater than 0"),
        ("promotion.tolerance=1.5", "must be between 0 and 1"),
        ("trivy.scanners=vuln,malware", "'malware' is not one of vuln, secret, misconfig, license"),
        ("docker.reach=carrier-pigeon", "'carrier-pigeon' is not one of auto, host, network"),
    ],
)
def test_each_fields_rule_is_on_the_field(tmp_path: Path, override: str, said: str) -> None:
    root = _write(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        config.load(root, overrides=[override], environ={})
    assert said in caught.value.message and override.split("=", maxsplit=1)[0] in caught.value.message
