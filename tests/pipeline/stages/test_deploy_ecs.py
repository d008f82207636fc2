"""Deploy target ``ecs`` against a real ECS API stand-in (``moto_server`` over HTTP), through the CLI.

moto cannot fail a rollout or roll one back by itself; those paths run against botocore's Stubber fed the
response shapes of the real API (``test_deploy_ecs_rollouts.py``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, interrupt_cli, run_cli
from tests.support.realtools import MotoServer

pytestmark = pytest.mark.integration

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}
DIGEST_A = "registry.example/iris@sha256:" + "a" * 64
DIGEST_B = "registry.example/iris@sha256:" + "b" * 64
DIGEST_C = "registry.example/iris@sha256:" + "c" * 64
DEPLOY_B = f"deploy.image={DIGEST_B}"


class EcsProject:
    """A repository whose deploy target is a fresh cluster and service on the given moto server."""

    def __init__(self, root: Path, server: MotoServer, *, desired: int = 2) -> None:
        self.root = root
        self.server = server
        self.ecs = server.ecs()
        self.cluster = f"c-{uuid.uuid4().hex[:8]}"
        self.service = "iris"
        (root / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")
        self.ecs.create_cluster(clusterName=self.cluster)
        first = self.ecs.register_task_definition(
            family=self.cluster,
            taskRoleArn="arn:aws:iam::123456789012:role/iris-task",
            executionRoleArn="arn:aws:iam::123456789012:role/iris-exec",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "iris-classifier",
                    "image": DIGEST_A,
                    "portMappings": [{"containerPort": 5000}],
                    "environment": [{"name": "GUNICORN_WORKERS", "value": "2"}],
                },
                {"name": "log-router", "image": "fluent/fluent-bit:3.0", "essential": False},
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        self.first = first
        self.ecs.create_service(
            cluster=self.cluster, serviceName=self.service, taskDefinition=first, desiredCount=desired
        )

    def sets(self, **extra: str) -> list[str]:
        values = {
            "deploy.target": "ecs",
            "deploy.ecs.cluster": self.cluster,
            "deploy.ecs.service": self.service,
            "deploy.ecs.region": "eu-west-1",
            "deploy.ecs.endpoint_url": self.server.url,
            "deploy.ecs.poll_interval_s": "0.2",
            **extra,
        }
        return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]

    def deploy(self, image: str, **extra: str) -> Any:
        return run_cli(
            ["run", "--stage", "deploy", *self.sets(**{"deploy.image": image, **extra})],
            self.root,
            env=FAKE_AWS,
        )

    def service_task_definition(self) -> str:
        found = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]
        return str(found["taskDefinition"])

    def images(self, arn: str) -> dict[str, str]:
        definition = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return {c["name"]: c["image"] for c in definition["containerDefinitions"]}

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / ".pipeline" / "state.json").read_text(encoding="utf-8"))

    def stage_log(self) -> str:
        return (self.root / "reports" / "stages" / "deploy.log").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def stable_server(moto_server: Callable[..., MotoServer]) -> MotoServer:
    """Every service reports 2 running tasks and a COMPLETED rollout."""
    return moto_server(running=2)


@pytest.fixture(scope="module")
def stuck_server(moto_server: Callable[..., MotoServer]) -> MotoServer:
    """Every rollout stays IN_PROGRESS with 0 running tasks, forever."""
    return moto_server(running=None)


def test_deploy_registers_a_revision_with_the_digest_and_updates_the_service(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)

    result = project.deploy(DIGEST_B)

    assert result.returncode == 0, result.stdout + result.stderr
    new = project.service_task_definition()
    assert new.endswith(f"{project.cluster}:2")
    assert project.images(new) == {"iris-classifier": DIGEST_B, "log-router": "fluent/fluent-bit:3.0"}
    definition = project.ecs.describe_task_definition(taskDefinition=new)["taskDefinition"]
    assert definition["taskRoleArn"].endswith("role/iris-task")
    assert definition["executionRoleArn"].endswith("role/iris-exec")
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == ("256", "512", "awsvpc")
    assert definition["containerDefinitions"][0]["environment"] == [
        {"name": "GUNICORN_WORKERS", "value": "2"}
    ]
    state = project.state()
    outputs = state["stages"]["deploy"]["outputs"]
    assert outputs["task_definition"] == new
    assert outputs["previous_task_definition"] == project.first
    assert [r["image"] for r in state["extra"]["releases"]["ecs"]] == [DIGEST_B]
    log = project.stage_log()
    assert f"registered {project.cluster}:2" in log
    assert "2/2 running" in log
    report = json.loads((tmp_path / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    assert f"live as {project.cluster}:2" in report["stages"][0]["summary"]


def test_deploying_the_running_image_again_registers_nothing(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0

    again = project.deploy(DIGEST_B)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "already live" in again.stdout
    revisions = project.ecs.list_task_definitions(familyPrefix=project.cluster)["taskDefinitionArns"]
    assert len(revisions) == 2


def test_rollback_puts_the_previous_revision_back(tmp_path: Path, stable_server: MotoServer) -> None:
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0
    assert project.deploy(DIGEST_C).returncode == 0
    assert project.images(project.service_task_definition())["iris-classifier"] == DIGEST_C

    result = run_cli(["rollback", *project.sets()], tmp_path, env=FAKE_AWS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"to {project.cluster}:2" in result.stdout
    assert project.service_task_definition().endswith(f"{project.cluster}:2")
    assert [r["image"] for r in project.state()["extra"]["releases"]["ecs"]] == [DIGEST_B]
    again = run_cli(["rollback", *project.sets()], tmp_path, env=FAKE_AWS)
    assert again.returncode == 2
    assert "no previous release" in again.stderr


def test_a_rollout_that_never_completes_times_out_and_is_rolled_back(
    tmp_path: Path, stuck_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stuck_server)

    result = project.deploy(DIGEST_B, **{"deploy.ecs.timeout_s": "1"})

    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert f"{project.cluster}:2 was not stable after 1 s: 0/2 running" in out
    assert "rolling back" in project.stage_log()
    # the stand-in's rollouts never finish, so the rollback is issued but cannot become stable either
    assert "the rollback to" in out and "failed too" in out
    assert project.service_task_definition() == project.first
    assert "releases" not in project.state()["extra"]


def test_with_rollback_off_a_stuck_rollout_stays_and_says_so(
    tmp_path: Path, stuck_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stuck_server)

    result = project.deploy(DIGEST_B, **{"deploy.ecs.timeout_s": "1", "deploy.ecs.rollback": "false"})

    assert result.returncode == 1
    assert "deploy.ecs.rollback is off" in result.stdout + result.stderr
    assert project.service_task_definition().endswith(f"{project.cluster}:2")


def test_a_container_name_not_in_the_task_definition_fails_naming_the_ones_there(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)

    result = project.deploy(DIGEST_B, **{"deploy.ecs.container": "web"})

    assert result.returncode == 1
    assert "has no container 'web' (it has: iris-classifier, log-router)" in result.stdout + result.stderr
    assert project.service_task_definition() == project.first


def test_a_missing_service_is_found_before_any_stage_runs(tmp_path: Path, stable_server: MotoServer) -> None:
    project = EcsProject(tmp_path, stable_server)

    result = project.deploy(DIGEST_B, **{"deploy.ecs.service": "nope"})

    assert result.returncode == 3
    assert f"ECS service 'nope' in cluster '{project.cluster}': MISSING" in result.stderr


def test_doctor_reports_the_service(tmp_path: Path, stable_server: MotoServer) -> None:
    project = EcsProject(tmp_path, stable_server)

    result = run_cli(["doctor", "--stage", "deploy", *project.sets()], tmp_path, env=FAKE_AWS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{project.cluster}/iris: ACTIVE, 2/2 running" in result.stdout
    assert "testing" not in result.stdout


def test_without_aws_credentials_deploy_stops_with_exit_3(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")
    no_credentials = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    sets = [
        "--profile",
        "aws",
        "--set",
        f"deploy.image={DIGEST_B}",
        "--set",
        "deploy.ecs.endpoint_url=http://127.0.0.1:9",
    ]

    result = run_cli(["run", "--stage", "deploy", *sets], tmp_path, env=no_credentials)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "boto3 finds no AWS credentials" in result.stderr
    assert "AWS_ACCESS_KEY_ID" in result.stderr


def test_an_empty_cluster_setting_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")

    result = run_cli(
        ["run", "--stage", "deploy", "--profile", "aws", "--set", "deploy.ecs.cluster=", "--set", DEPLOY_B],
        tmp_path,
        env=FAKE_AWS,
    )

    assert result.returncode == 2
    assert "deploy.ecs.cluster (from --set): is empty but deploy.target is 'ecs'" in result.stderr


def test_ctrl_c_while_ecs_rolls_out_exits_130_and_says_ecs_goes_on(
    tmp_path: Path, stuck_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stuck_server)
    args = ["run", "--stage", "deploy", *project.sets(**{"deploy.image": DIGEST_B})]
    log = tmp_path / "reports" / "stages" / "deploy.log"

    # "->" is logged once the service was updated and the wait began
    run = interrupt_cli(args, tmp_path, log=log, ready="->", env=FAKE_AWS)

    assert run.returncode == 130, run.output
    assert run.seconds_to_exit < 5
    assert "ECS goes on with it" in run.output
    assert project.service_task_definition().endswith(f"{project.cluster}:2")  # no rollback on Ctrl-C


def test_the_waits_end_inside_the_stage_timeout(tmp_path: Path, stuck_server: MotoServer) -> None:
    """deploy.ecs.timeout_s is 540 by default; a shorter stage timeout still gets a rollout verdict and a
    rollback attempt, not a stage killed mid-wait."""
    project = EcsProject(tmp_path, stuck_server)

    started = time.monotonic()
    result = project.deploy(DIGEST_B, **{"timeouts.deploy": "9"})

    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert re.search(
        rf"{project.cluster}:2 was not stable after [1-4] s", out
    ), out  # 9 s less start-up and 5
    assert "the rollback to" in out
    assert "timed out" not in out
    assert time.monotonic() - started < 20
    assert project.service_task_definition() == project.first
