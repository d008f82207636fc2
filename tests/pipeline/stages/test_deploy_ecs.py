"""Deploy target ``ecs`` against a real ECS API stand-in (``moto_server`` over HTTP), through the CLI.

moto cannot fail a rollout or roll one back by itself; those paths run against botocore's Stubber fed the
response shapes of the real API (``test_deploy_ecs_rollouts.py``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.adapters.docker_containers import free_port
from pipeline.errors import LeftBroken, StageFailed
from tests.conftest import ROOT, interrupt_cli, run_cli
from tests.support.realtools import MotoServer, Registry

pytestmark = pytest.mark.integration

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# A registry address where nothing answers: deploy's check that the image exists is logged and skipped,
# without DNS or any network.
DIGEST_A = "127.0.0.1:9/iris@sha256:" + "a" * 64
DIGEST_B = "127.0.0.1:9/iris@sha256:" + "b" * 64
DIGEST_C = "127.0.0.1:9/iris@sha256:" + "c" * 64
DEPLOY_B = f"deploy.image={DIGEST_B}"


class EcsProject:
    """A repository whose deploy target is a fresh cluster and service on the given moto server."""

    def __init__(
        self,
        root: Path,
        server: MotoServer,
        *,
        desired: int = 2,
        cluster: str = "",
        service: str = "iris",
        configuration: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.server = server
        self.ecs = server.ecs()
        self.cluster = cluster or f"c-{uuid.uuid4().hex[:8]}"
        self.service = service
        self.family = f"{self.cluster}-{service}"
        root.mkdir(exist_ok=True)
        (root / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")
        if not cluster:
            self.ecs.create_cluster(clusterName=self.cluster)
        first = self.ecs.register_task_definition(
            family=self.family,
            tags=[{"key": "team", "value": "ml"}, {"key": "cost-centre", "value": "42"}],
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
                    "environment": [{"name": "SERVER_WORKERS", "value": "2"}],
                },
                {"name": "log-router", "image": "fluent/fluent-bit:3.0", "essential": False},
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        self.first = first
        self.ecs.create_service(
            cluster=self.cluster,
            serviceName=self.service,
            taskDefinition=first,
            desiredCount=desired,
            deploymentConfiguration=configuration or {},
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

    @property
    def identity(self) -> str:
        return f"ecs:eu-west-1/{self.cluster}/{self.service}"

    def releases(self) -> list[dict[str, Any]]:
        return list(self.state()["extra"].get("releases", {}).get(self.identity, []))

    def rollback(self, **extra: str) -> Any:
        return run_cli(["rollback", *self.sets(**extra)], self.root, env=FAKE_AWS)

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
    assert new.endswith(f"{project.family}:2")
    assert project.images(new) == {"iris-classifier": DIGEST_B, "log-router": "fluent/fluent-bit:3.0"}
    definition = project.ecs.describe_task_definition(taskDefinition=new)["taskDefinition"]
    assert definition["taskRoleArn"].endswith("role/iris-task")
    assert definition["executionRoleArn"].endswith("role/iris-exec")
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == ("256", "512", "awsvpc")
    assert definition["containerDefinitions"][0]["environment"] == [{"name": "SERVER_WORKERS", "value": "2"}]
    state = project.state()
    outputs = state["stages"]["deploy"]["outputs"]
    assert outputs["ref"] == new
    assert outputs["previous_ref"] == project.first
    assert [(r["image"], r["previous"], r["previous_ref"]) for r in project.releases()] == [
        (DIGEST_B, DIGEST_A, project.first)
    ]
    log = project.stage_log()
    assert f"registered {project.family}:2" in log
    assert "2/2 running" in log
    report = json.loads((tmp_path / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    assert f"live as {project.family}:2" in report["stages"][0]["summary"]


def test_deploying_the_running_image_again_registers_nothing(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0

    again = project.deploy(DIGEST_B)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "already live" in again.stdout
    revisions = project.ecs.list_task_definitions(familyPrefix=project.family)["taskDefinitionArns"]
    assert len(revisions) == 2


def test_rollback_puts_the_previous_revision_back(tmp_path: Path, stable_server: MotoServer) -> None:
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0
    assert project.deploy(DIGEST_C).returncode == 0
    assert project.images(project.service_task_definition())["iris-classifier"] == DIGEST_C

    result = run_cli(["rollback", *project.sets()], tmp_path, env=FAKE_AWS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"to {project.family}:2" in result.stdout
    assert project.service_task_definition().endswith(f"{project.family}:2")
    assert [r["image"] for r in project.releases()] == [DIGEST_B]
    assert "rolling" in result.stdout  # progress while it waits
    first = project.rollback()  # the first deploy can be undone too
    assert first.returncode == 0, first.stdout + first.stderr
    assert project.service_task_definition() == project.first
    assert not project.releases()
    again = project.rollback()
    assert again.returncode == 2
    assert "which this pipeline did not deploy to it" in again.stderr


def test_a_rollout_that_never_completes_times_out_and_is_rolled_back(
    tmp_path: Path, stuck_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stuck_server)

    result = project.deploy(DIGEST_B, **{"deploy.ecs.timeout_s": "1", "deploy.ecs.rollback_timeout_s": "1"})

    assert result.returncode == 4  # the rollback could not be confirmed: nobody knows what runs
    out = result.stdout + result.stderr
    assert f"{project.family}:2 was not stable after 1 s: 0/2 running" in out
    assert "rolling back" in project.stage_log()
    # the stand-in's rollouts never finish, so the rollback is issued but cannot become stable either
    assert "the rollback to" in out and "failed too" in out
    assert project.service_task_definition() == project.first
    assert not project.releases()


def test_with_rollback_off_a_stuck_rollout_stays_and_says_so(
    tmp_path: Path, stuck_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stuck_server)

    result = project.deploy(DIGEST_B, **{"deploy.ecs.timeout_s": "1", "deploy.ecs.rollback": "false"})

    assert result.returncode == 1
    assert "deploy.ecs.rollback is off" in result.stdout + result.stderr
    assert project.service_task_definition().endswith(f"{project.family}:2")


def test_a_container_name_not_in_the_task_definition_is_found_before_any_stage_runs(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)

    result = project.deploy(DIGEST_B, **{"deploy.ecs.container": "web"})

    assert result.returncode == 3
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
    assert "arn:aws:sts::123456789012:user/moto" in result.stdout  # who the credentials are
    assert "deployment controller ECS, strategy ROLLING" in result.stdout
    assert "container iris-classifier runs 127.0.0.1:9/iris@sha256:aaaa" in result.stdout
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


def test_a_deploy_timeout_without_room_for_the_rollback_says_the_least_that_works(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")
    sets = ["--set", "timeouts.deploy=100", "--set", "deploy.ecs.rollback_timeout_s=300"]

    result = run_cli(["run", "--stage", "deploy", "--profile", "aws", *sets, "--set", DEPLOY_B], tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "leaves no room for a rollback's wait" in result.stderr
    assert "raise timeouts.deploy to at least 310 (deploy.ecs.rollback_timeout_s + 10 s)" in result.stderr


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
    assert project.service_task_definition().endswith(f"{project.family}:2")  # no rollback on Ctrl-C


def test_the_waits_end_inside_the_stage_timeout(tmp_path: Path, stuck_server: MotoServer) -> None:
    """deploy.ecs.timeout_s is 540 by default; a shorter stage timeout still gets a rollout verdict and a
    rollback attempt, not a stage killed mid-wait."""
    project = EcsProject(tmp_path, stuck_server)

    started = time.monotonic()
    result = project.deploy(DIGEST_B, **{"timeouts.deploy": "12", "deploy.ecs.rollback_timeout_s": "2"})

    assert result.returncode == 4
    out = result.stdout + result.stderr
    assert re.search(
        rf"{project.family}:2 was not stable after [1-5] s", out
    ), out  # 12 s less start-up, the rollback's 2 s and 5
    assert "the rollback to" in out
    assert "timed out" not in out
    assert time.monotonic() - started < 20
    assert project.service_task_definition() == project.first


def test_the_new_revision_keeps_the_familys_tags_and_names_its_service_and_predecessor(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)

    assert project.deploy(DIGEST_B).returncode == 0

    new = project.service_task_definition()
    tags = project.ecs.describe_task_definition(taskDefinition=new, include=["TAGS"])["tags"]
    service_arn = project.ecs.describe_services(cluster=project.cluster, services=["iris"])["services"][0]
    assert {t["key"]: t["value"] for t in tags} == {
        "team": "ml",
        "cost-centre": "42",
        "mlops-pipeline:service": service_arn["serviceArn"],
        "mlops-pipeline:previous": project.first,
    }


def test_rollback_acts_only_on_the_service_it_is_given_across_services_and_profiles(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    """staging and prod deployed from one checkout: rolling back prod puts prod's own revision back and
    leaves staging alone (the old code put staging's task definition on prod)."""
    staging = EcsProject(tmp_path, stable_server, service="staging")
    prod = EcsProject(tmp_path, stable_server, cluster=staging.cluster, service="prod")
    assert prod.deploy(DIGEST_B).returncode == 0
    assert staging.deploy(DIGEST_B).returncode == 0
    assert staging.deploy(DIGEST_C).returncode == 0
    staging_now = staging.service_task_definition()

    result = prod.rollback()

    assert result.returncode == 0, result.stdout + result.stderr
    assert prod.service_task_definition() == prod.first  # prod's family, prod's first revision
    assert staging.service_task_definition() == staging_now
    assert [r["image"] for r in staging.releases()] == [DIGEST_B, DIGEST_C]
    assert not prod.releases()
    # staging's record is rolled back on staging
    assert staging.rollback().returncode == 0
    assert staging.images(staging.service_task_definition())["iris-classifier"] == DIGEST_B


def test_a_fresh_checkout_rolls_back_from_ecss_own_record(tmp_path: Path, stable_server: MotoServer) -> None:
    """A fresh Jenkins agent has no .pipeline/state.json: the revision's tags say what ran before."""
    project = EcsProject(tmp_path / "agent-1", stable_server)
    assert project.deploy(DIGEST_B).returncode == 0
    assert project.deploy(DIGEST_C).returncode == 0
    fresh = EcsProject.__new__(EcsProject)
    fresh.__dict__.update(project.__dict__, root=tmp_path / "agent-2")
    fresh.root.mkdir()
    (fresh.root / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")

    first = fresh.rollback()
    second = fresh.rollback()
    third = fresh.rollback()

    assert first.returncode == 0, first.stdout + first.stderr
    assert "tags name" in first.stdout and f"to {project.family}:2" in first.stdout
    assert second.returncode == 0, second.stdout + second.stderr
    assert fresh.service_task_definition() == project.first
    assert third.returncode == 2
    assert "which this pipeline did not deploy to it" in third.stderr


def test_rollback_refuses_when_someone_else_deployed_since(tmp_path: Path, stable_server: MotoServer) -> None:
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0
    project.ecs.update_service(cluster=project.cluster, service="iris", taskDefinition=project.first)

    result = project.rollback()

    assert result.returncode == 2
    assert "someone else deployed since" in result.stderr
    assert project.service_task_definition() == project.first


def test_rollback_right_after_the_pipelines_own_failed_deploy_goes_back_to_the_last_release(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    """A failed deploy is not recorded, yet the service runs its revision (rollback off, Ctrl-C, exit 4):
    the revision's tags say it was deployed over the last recorded release, so that is put back."""
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0
    recorded = project.releases()
    nobody = f"http://127.0.0.1:{free_port()}"  # verification fails: nothing answers there
    failed = project.deploy(
        DIGEST_C,
        **{
            "deploy.ecs.rollback": "false",
            "deploy.ecs.verify_url": nobody,
            "deploy.ecs.verify_timeout_s": "1",
        },
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "python -m pipeline rollback" in failed.stdout
    assert project.service_task_definition().endswith(f"{project.family}:3")

    result = project.rollback()

    assert result.returncode == 0, result.stdout + result.stderr
    assert "by a deploy that failed or was cut short" in result.stdout
    assert project.service_task_definition().endswith(f"{project.family}:2")
    assert project.releases() == recorded  # B is still the last release: a second rollback goes to A
    assert project.rollback().returncode == 0
    assert project.service_task_definition() == project.first


def test_rollback_to_a_deregistered_revision_registers_a_copy_of_it(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    """fabfuel/ecs-deploy deregisters old revisions by default; ECS will not point a service at one (the
    stand-in refuses it as ECS does: tests/support/moto_ecs.py)."""
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0
    project.ecs.deregister_task_definition(taskDefinition=project.first)

    result = project.rollback()

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{project.family}:1 is INACTIVE (deregistered)" in result.stdout
    running = project.service_task_definition()
    assert running.endswith(f"{project.family}:3")
    assert project.images(running) == project.images(project.first)
    tags = project.ecs.describe_task_definition(taskDefinition=running, include=["TAGS"])["tags"]
    assert {"key": "team", "value": "ml"} in tags


def test_a_strategy_whose_bake_cannot_fit_is_refused_with_exit_2_before_any_stage_runs(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server, configuration={"strategy": "LINEAR"})

    doctor = run_cli(["doctor", *project.sets()], project.root, env=FAKE_AWS)
    result = project.deploy(DIGEST_B)

    assert "ecs time budget" in doctor.stdout and "4090 s" in doctor.stdout, doctor.stdout
    assert result.returncode == 2, result.stdout + result.stderr
    assert "raise timeouts.deploy to at least 4090" in result.stderr
    revisions = project.ecs.list_task_definitions(familyPrefix=project.family)["taskDefinitionArns"]
    assert len(revisions) == 1  # nothing registered


def test_force_new_deployment_replaces_the_tasks_of_the_running_image_without_a_new_revision(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0
    before = project.ecs.describe_services(cluster=project.cluster, services=["iris"])["services"][0]

    result = project.deploy(DIGEST_B, **{"deploy.ecs.force_new_deployment": "true"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"{project.family}:2 already runs {DIGEST_B}; forcing a new deployment of it" in project.stage_log()
    )
    after = project.ecs.describe_services(cluster=project.cluster, services=["iris"])["services"][0]
    assert after["deployments"][0]["id"] != before["deployments"][0]["id"]  # ECS started a new deployment
    assert after["taskDefinition"] == before["taskDefinition"]
    revisions = project.ecs.list_task_definitions(familyPrefix=project.family)["taskDefinitionArns"]
    assert len(revisions) == 2  # nothing registered
    assert len(project.releases()) == 1  # not a new release


def test_extra_containers_get_the_same_image_and_a_missing_one_is_found_first(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    """An app and its worker (here the second container) from one image, as fabfuel's ``-i`` per container."""
    project = EcsProject(tmp_path, stable_server)

    missing = project.deploy(DIGEST_B, **{"deploy.ecs.extra_containers": "log-router,worker"})
    result = project.deploy(DIGEST_B, **{"deploy.ecs.extra_containers": "log-router"})

    assert missing.returncode == 3, missing.stdout + missing.stderr
    assert "has no container 'worker' (it has: iris-classifier, log-router)" in missing.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    running = project.service_task_definition()
    assert project.images(running) == {"iris-classifier": DIGEST_B, "log-router": DIGEST_B}
    again = project.deploy(DIGEST_B, **{"deploy.ecs.extra_containers": "log-router"})
    assert again.returncode == 0 and project.service_task_definition() == running  # nothing to change


def test_an_image_its_registry_does_not_hold_is_refused_before_anything_is_registered(
    tmp_path: Path, stable_server: MotoServer, start_registry: Callable[..., Registry]
) -> None:
    """A mistyped deploy.image: the registry (a real docker-registry of this test's) has no such manifest."""
    registry = start_registry()
    project = EcsProject(tmp_path, stable_server)
    mistyped = f"{registry.address}/iris@sha256:" + "d" * 64

    result = project.deploy(mistyped)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{mistyped} is not in its registry: http://{registry.address} has no manifest" in result.stdout
    assert "nothing was changed" in result.stdout
    revisions = project.ecs.list_task_definitions(familyPrefix=project.family)["taskDefinitionArns"]
    assert revisions == [project.first]
    assert "could not check that" in project.deploy(DIGEST_B).stdout + project.stage_log()  # unreachable


def test_the_dry_run_shows_the_task_definition_change_and_changes_nothing(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)
    args = ["run", "--stage", "deploy", "--dry-run", *project.sets(**{"deploy.image": DIGEST_B})]

    result = run_cli(args, project.root, env=FAKE_AWS)

    assert result.returncode == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())  # Rich wraps long lines
    assert f"{project.family}:1 -> a new revision of {project.family}, changed:" in out
    assert f"containerDefinitions[iris-classifier].image {DIGEST_A} -> {DIGEST_B}" in out
    assert f"mlops-pipeline:previous = {project.first}" in out
    revisions = project.ecs.list_task_definitions(familyPrefix=project.family)["taskDefinitionArns"]
    assert revisions == [project.first]
    unchanged = run_cli([*args[:-1], f"deploy.image={DIGEST_A}"], project.root, env=FAKE_AWS)
    assert f"{project.family}:1 already runs {DIGEST_A}: register nothing" in " ".join(
        unchanged.stdout.split()
    )


def test_old_revisions_are_cleaned_up_but_never_one_a_release_or_the_service_names(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server)
    assert project.deploy(DIGEST_B).returncode == 0  # revision 2, recorded over revision 1
    by_hand = [  # revisions 3 and 4, registered by someone else and never run
        project.ecs.register_task_definition(
            family=project.family,
            containerDefinitions=[{"name": "iris-classifier", "image": DIGEST_A, "memory": 256}],
        )["taskDefinition"]["taskDefinitionArn"]
        for _ in range(2)
    ]

    result = project.deploy(DIGEST_C, **{"deploy.ecs.keep_revisions": "1"})  # revision 5

    assert result.returncode == 0, result.stdout + result.stderr
    active = project.ecs.list_task_definitions(familyPrefix=project.family)["taskDefinitionArns"]
    assert sorted(a.rsplit(":", 1)[1] for a in active) == ["1", "2", "5"]  # 1 and 2: the recorded release
    assert f"deregistered 2 old revision(s) of {project.family}" in project.stage_log()
    for arn in by_hand:
        status = project.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"]
        assert status == "INACTIVE"
    assert project.rollback().returncode == 0  # the chain the releases name is whole
    assert project.rollback().returncode == 0
    assert project.service_task_definition() == project.first


def test_a_service_scaled_to_zero_is_refused_before_anything_is_registered(
    tmp_path: Path, stable_server: MotoServer
) -> None:
    project = EcsProject(tmp_path, stable_server, desired=0)

    result = project.deploy(DIGEST_B)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "desired count of 0" in result.stderr
    revisions = project.ecs.list_task_definitions(familyPrefix=project.family)["taskDefinitionArns"]
    assert len(revisions) == 1


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The real service (``python -m app.serve``, a trained model) on loopback: its URL, the model version."""
    from model_training import run_training
    from tests.app.conftest import start_server, wait_ready

    scratch = tmp_path_factory.mktemp("verify")
    run_training(scratch / "model")
    server = start_server(scratch / "model", scratch / "server.log")
    try:
        wait_ready(server)
        version = requests.get(server.url + "/api/v1/model", timeout=5).json()["model_version"]
        yield server.url, str(version)
    finally:
        server.stop()


def verifying_target(project: EcsProject, url: str, monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> Any:
    from pipeline.config import load as load_config
    from pipeline.stages.targets.ecs import EcsTarget

    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    sets = project.sets(**{"deploy.ecs.verify_url": url, "deploy.ecs.verify_timeout_s": "1"})
    config = load_config(project.root, overrides=sets[1::2], environ=dict(FAKE_AWS))
    return EcsTarget(config, lines.append)


def test_the_deploy_asks_the_live_service_for_the_model_this_run_built(
    tmp_path: Path, stable_server: MotoServer, live_service: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, version = live_service
    project = EcsProject(tmp_path, stable_server)
    lines: list[str] = []

    done = verifying_target(project, url, monkeypatch, lines).deploy(DIGEST_B, "run-1", version)

    assert done.release.ref == project.service_task_definition()
    assert f"{url} reports model {version} after" in "\n".join(lines)


def test_a_live_service_that_never_reports_the_new_model_is_rolled_back(
    tmp_path: Path, stable_server: MotoServer, live_service: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = live_service
    project = EcsProject(tmp_path, stable_server)
    target = verifying_target(project, url, monkeypatch, [])

    with pytest.raises(StageFailed) as caught:
        target.deploy(DIGEST_B, "run-1", "a-model-nobody-serves")

    assert not isinstance(caught.value, LeftBroken)
    assert (
        f"{project.family}:2 is stable, but {url}/api/v1/model did not report model a-model-nobody-serves"
        in (caught.value.message)
    )
    assert caught.value.message.endswith(f"rolled back to {project.family}:1")
    assert project.service_task_definition() == project.first
