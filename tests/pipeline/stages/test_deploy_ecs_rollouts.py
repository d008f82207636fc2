"""Rollouts moto cannot produce: a FAILED rollout, ECS's circuit breaker rolling back by itself, a
deployment replaced under us. botocore's Stubber checks every request against the ECS API model and
answers with the response shapes the real API returns (DescribeServices ``deployments``)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from pipeline.adapters.ecs import EcsClient
from pipeline.adapters.ecs_model import Service
from pipeline.config import load as load_config
from pipeline.errors import LeftBroken, StageFailed
from pipeline.stages.targets.ecs import EcsTarget
from tests.conftest import ROOT

ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/iris:{}"
IMAGE_OLD = "r.example/iris@sha256:" + "a" * 64
IMAGE_NEW = "r.example/iris@sha256:" + "b" * 64


def deployment(dep_id: str, revision: int, *, status: str, rollout: str, running: int = 2, reason: str = ""):
    return {
        "id": dep_id,
        "status": status,
        "taskDefinition": ARN.format(revision),
        "desiredCount": 2,
        "pendingCount": 2 - running,
        "runningCount": running,
        "failedTasks": 0 if rollout != "FAILED" else 4,
        "rolloutState": rollout,
        "rolloutStateReason": reason,
    }


def service(revision: int, *deployments: dict[str, Any], events: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/iris",
        "serviceName": "iris",
        "status": "ACTIVE",
        "taskDefinition": ARN.format(revision),
        "desiredCount": 2,
        "runningCount": 2,
        "deployments": list(deployments),
        "events": [{"id": f"event-{m}", "message": m} for m in events],
    }


TASK_DEFINITION = {
    "taskDefinitionArn": ARN.format(1),
    "family": "iris",
    "revision": 1,
    "status": "ACTIVE",
    "containerDefinitions": [{"name": "iris-classifier", "image": IMAGE_OLD, "memory": 256}],
}
STEADY = deployment("ecs-svc/1", 1, status="PRIMARY", rollout="COMPLETED")


class Scripted:
    """An EcsTarget whose boto3 client answers from a script of (operation, response)."""

    def __init__(self, rollback: bool = True, **settings: str) -> None:
        self.boto = boto3.client(
            "ecs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        self.stubber = Stubber(self.boto)
        self.lines: list[str] = []
        overrides = {
            "deploy.ecs.cluster": "prod",
            "deploy.ecs.poll_interval_s": "0.01",
            "deploy.ecs.timeout_s": "5",
            "deploy.ecs.rollback_timeout_s": "5",
            "deploy.ecs.rollback": str(rollback).lower(),
            **settings,
        }
        config = load_config(
            ROOT, profile="aws", overrides=[f"{k}={v}" for k, v in overrides.items()], environ={}
        )
        ecs = EcsClient(cluster="prod", service="iris", region="eu-west-1", boto_client=self.boto)
        self.target = EcsTarget(config, self.lines.append, threading.Event(), ecs_client=ecs)

    def describe(self, body: dict[str, Any]) -> None:
        self.stubber.add_response(
            "describe_services", {"services": [body]}, {"cluster": "prod", "services": ["iris"]}
        )

    def describe_task_definition(self, revision: int = 1, tags: list[dict[str, str]] | None = None) -> None:
        answer: dict[str, Any] = {
            "taskDefinition": {
                **TASK_DEFINITION,
                "taskDefinitionArn": ARN.format(revision),
                "revision": revision,
            }
        }
        if tags is not None:
            answer["tags"] = tags
        self.stubber.add_response(
            "describe_task_definition", answer, {"taskDefinition": ARN.format(revision), "include": ["TAGS"]}
        )

    def register(self) -> None:
        self.stubber.add_response(
            "register_task_definition",
            {"taskDefinition": {**TASK_DEFINITION, "taskDefinitionArn": ARN.format(2), "revision": 2}},
            {"family": "iris", "containerDefinitions": ANY, "tags": ANY},
        )

    def start_deploy(self, before: dict[str, Any] | None = None) -> None:
        """The calls up to and including UpdateService, which starts deployment ecs-svc/2 on revision 2."""
        self.describe(before or service(1, STEADY))
        self.describe_task_definition()
        self.register()
        in_progress = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="IN_PROGRESS", running=0)
        self.update(2, service(2, in_progress, {**STEADY, "status": "ACTIVE"}))

    def update(self, revision: int, answer: dict[str, Any]) -> None:
        self.stubber.add_response(
            "update_service",
            {"service": answer},
            {"cluster": "prod", "service": "iris", "taskDefinition": ARN.format(revision)},
        )

    def throttle(self, operation: str = "describe_services") -> None:
        self.stubber.add_client_error(
            operation,
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
            http_status_code=400,
        )

    def deploy(self) -> StageFailed | None:
        with self.stubber:
            try:
                self.target.deploy(IMAGE_NEW, "run-1")
            except StageFailed as exc:
                self.stubber.assert_no_pending_responses()
                return exc
        self.stubber.assert_no_pending_responses()
        return None


def test_a_rollout_that_completes_after_the_old_tasks_drain_passes() -> None:
    script = Scripted()
    script.start_deploy()
    done = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="COMPLETED")
    script.describe(service(2, done, {**STEADY, "status": "ACTIVE"}, events=("draining",)))
    script.describe(service(2, done, events=("has reached a steady state.", "draining")))

    assert script.deploy() is None
    assert "ecs event: draining" in script.lines
    assert "ecs event: has reached a steady state." in script.lines
    assert "iris:2: 2/2 running" in script.lines[-1]


def test_the_circuit_breaker_rolling_back_by_itself_fails_without_a_second_rollback() -> None:
    script = Scripted()
    script.start_deploy()
    reason = "ECS deployment circuit breaker: tasks failed to start."
    failed = deployment("ecs-svc/2", 2, status="ACTIVE", rollout="FAILED", running=0, reason=reason)
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS")
    script.describe(service(1, back, failed))

    error = script.deploy()

    assert error is not None and not isinstance(error, LeftBroken)
    assert f"ECS failed the deployment of iris:2: {reason}" in error.message
    assert "ECS itself put the service back on iris:1" in error.message


def test_a_failed_rollout_without_the_circuit_breakers_rollback_is_rolled_back_by_us() -> None:
    script = Scripted()
    script.start_deploy()
    failed = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="FAILED", running=0, reason="tasks failed")
    script.describe(service(2, failed))
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS", running=1)
    script.update(1, service(1, back, failed))
    script.describe(service(1, {**back, "rolloutState": "COMPLETED", "runningCount": 2}))

    error = script.deploy()

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.message == "ECS failed the deployment of iris:2: tasks failed; rolled back to iris:1"
    assert error.exit_code == 1


def test_a_rollback_that_fails_too_is_left_broken_with_exit_4() -> None:
    script = Scripted()
    script.start_deploy()
    failed = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="FAILED", running=0, reason="tasks failed")
    script.describe(service(2, failed))
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS", running=0)
    script.update(1, service(1, back, failed))
    script.describe(service(1, {**back, "rolloutState": "FAILED", "rolloutStateReason": "no capacity"}))

    error = script.deploy()

    assert isinstance(error, LeftBroken)
    assert error.exit_code == 4
    assert error.message.startswith(
        "ECS failed the deployment of iris:2: tasks failed; the rollback to iris:1"
    )
    assert "no capacity" in error.message


def test_the_rollback_gets_its_own_wait_not_what_the_rollout_left() -> None:
    """The rollout's wait stops short of the stage's timeout by the rollback's whole wait."""
    script = Scripted(**{"deploy.ecs.timeout_s": "540", "deploy.ecs.rollback_timeout_s": "60"})
    script.target.remaining_s = lambda: 100.0
    steady = Service.from_api(service(1, STEADY))

    assert script.target.deploy_limit(steady) == 35.0  # 100 s left - 60 s kept for a rollback - 5 s margin
    assert script.target.rollback_limit() == 60.0
    baking = Service.from_api(
        {**service(1, STEADY), "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 3}}
    )
    script.target.remaining_s = lambda: 2000.0
    assert script.target.deploy_limit(baking) == 540.0 + 180.0  # the bake time is part of the deploy


def test_throttling_while_watching_is_looked_at_again_not_rolled_back() -> None:
    script = Scripted()
    script.start_deploy()
    script.throttle()
    script.throttle()
    done = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="COMPLETED")
    script.describe(service(2, done))

    assert script.deploy() is None
    assert sum("ThrottlingException" in line and "looking again" in line for line in script.lines) == 2
    assert not any("rolling back" in line for line in script.lines)


def test_a_rollout_never_seen_until_the_deadline_is_left_broken_not_rolled_back() -> None:
    script = Scripted(**{"deploy.ecs.timeout_s": "0.1", "deploy.ecs.poll_interval_s": "0.05"})
    script.start_deploy()
    for _ in range(10):
        script.throttle()
    with script.stubber:
        with pytest.raises(LeftBroken) as caught:
            script.target.deploy(IMAGE_NEW, "run-1")

    assert "could not see the rollout of iris:2" in caught.value.message
    assert "ThrottlingException: Rate exceeded" in caught.value.message
    assert not any("rolling back" in line for line in script.lines)


def test_with_rollback_off_a_failed_rollout_is_left_alone() -> None:
    script = Scripted(rollback=False)
    script.start_deploy()
    failed = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="FAILED", running=0, reason="tasks failed")
    script.describe(service(2, failed))

    error = script.deploy()

    assert error is not None
    assert "the service stays on iris:2 (deploy.ecs.rollback is off)" in error.message


def test_a_deployment_replaced_by_someone_elses_deploy_is_not_rolled_back() -> None:
    script = Scripted()
    script.start_deploy()
    other = deployment("ecs-svc/9", 5, status="PRIMARY", rollout="IN_PROGRESS")
    script.describe(service(5, other))

    error = script.deploy()

    assert error is not None and not isinstance(error, LeftBroken)
    assert (
        "the deployment of iris:2 was replaced by another deploy: the service now runs iris:5"
        in error.message
    )
    assert "not rolled back" in (error.hint or "")


@pytest.mark.parametrize("controller", ["CODE_DEPLOY", "EXTERNAL"])
def test_a_service_ecs_does_not_deploy_itself_is_refused_before_anything_is_registered(
    controller: str,
) -> None:
    script = Scripted()
    script.describe({**service(1, STEADY), "deploymentController": {"type": controller}})

    error = script.deploy()  # no register, no update in the script: the Stubber would fail on either

    assert error is not None
    assert f"uses the {controller} deployment controller" in error.message


def test_a_desired_count_of_zero_is_refused_unless_allowed() -> None:
    script = Scripted()
    script.describe({**service(1, STEADY), "desiredCount": 0})

    error = script.deploy()

    assert error is not None
    assert "desired count of 0" in error.message and "deploy.ecs.allow_zero_desired" in error.message


def test_an_update_ecs_refuses_deregisters_the_revision_it_registered() -> None:
    script = Scripted()
    script.describe(service(1, STEADY))
    script.describe_task_definition()
    script.register()
    script.stubber.add_client_error(
        "update_service", service_error_code="InvalidParameterException", service_message="bad subnet"
    )
    script.stubber.add_response(
        "deregister_task_definition",
        {"taskDefinition": {**TASK_DEFINITION, "taskDefinitionArn": ARN.format(2), "status": "INACTIVE"}},
        {"taskDefinition": ARN.format(2)},
    )

    error = script.deploy()

    assert error is not None
    assert error.message == (
        "ECS UpdateService failed: InvalidParameterException: bad subnet; iris:2 was deregistered again"
    )


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("AccessDeniedException", "ecs:RegisterTaskDefinition"),
        ("ClusterNotFoundException", "deploy.ecs.cluster"),
    ],
)
def test_aws_errors_name_the_call_the_code_and_what_to_do(code: str, hint: str) -> None:
    script = Scripted()
    script.stubber.add_client_error("describe_services", service_error_code=code, service_message="nope")

    error = script.deploy()

    assert error is not None
    assert error.message == f"ECS DescribeServices failed: {code}: nope"
    assert hint in (error.hint or "")


# -- ECS-native strategies: followed through the service deployment -----------------------------------
SERVICE_DEPLOYMENT = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/iris/bd1"
BLUE_GREEN = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1, "maximumPercent": 200}


def native_deployment(status: str, stage: str = "", reason: str = "") -> dict[str, Any]:
    return {
        "serviceDeploymentArn": SERVICE_DEPLOYMENT,
        "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/iris",
        "status": status,
        "lifecycleStage": stage,
        "statusReason": reason,
    }


class Native(Scripted):
    def start_deploy(self, before: dict[str, Any] | None = None) -> None:
        blue_green = {**service(1, STEADY), "deploymentConfiguration": BLUE_GREEN}
        super().start_deploy(before or blue_green)
        self.stubber.add_response(
            "list_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": SERVICE_DEPLOYMENT,
                        "status": "IN_PROGRESS",
                        "createdAt": datetime.now(UTC),
                    }
                ]
            },
            {"cluster": "prod", "service": "iris", "createdAt": ANY},
        )

    def native(self, status: str, stage: str = "", reason: str = "") -> None:
        self.stubber.add_response(
            "describe_service_deployments",
            {"serviceDeployments": [native_deployment(status, stage, reason)]},
            {"serviceDeploymentArns": [SERVICE_DEPLOYMENT]},
        )


def test_a_blue_green_deploy_is_done_only_when_its_bake_time_is_over() -> None:
    script = Native()
    script.start_deploy()
    script.native("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT")
    script.native("IN_PROGRESS", "BAKE_TIME")
    script.native("IN_PROGRESS", "BAKE_TIME")
    script.native("SUCCESSFUL", "CLEAN_UP")

    assert script.deploy() is None
    assert "strategy BLUE_GREEN, bake time 1 min" in "\n".join(script.lines)
    assert "iris:2: service deployment IN_PROGRESS, stage BAKE_TIME" in script.lines
    assert script.lines.count("iris:2: service deployment IN_PROGRESS, stage BAKE_TIME") == 1  # said once
    assert "succeeded" in script.lines[-1]


def test_a_native_deploy_ecs_rolled_back_itself_is_not_rolled_back_again() -> None:
    script = Native()
    script.start_deploy()
    script.native("ROLLBACK_IN_PROGRESS", "SCALE_UP", "alarm iris-5xx")
    script.native("ROLLBACK_SUCCESSFUL", "CLEAN_UP", "alarm iris-5xx")

    error = script.deploy()

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.message == "ECS rolled the deployment of iris:2 back by itself: alarm iris-5xx"


def test_a_native_deploy_past_its_deadline_is_stopped_with_a_rollback_through_ecs() -> None:
    script = Native(**{"deploy.ecs.timeout_s": "5", "deploy.ecs.rollback_timeout_s": "60"})
    ticks = itertools.count(0, 10)  # every look at the clock is 10 s later
    script.target.watch.clock = lambda: float(next(ticks))
    no_bake = {**service(1, STEADY), "deploymentConfiguration": {**BLUE_GREEN, "bakeTimeInMinutes": 0}}
    script.start_deploy(no_bake)  # ListServiceDeployments answers IN_PROGRESS, 10 s after the start
    script.stubber.add_response(
        "stop_service_deployment",
        {"serviceDeploymentArn": SERVICE_DEPLOYMENT},
        {"serviceDeploymentArn": SERVICE_DEPLOYMENT, "stopType": "ROLLBACK"},
    )
    script.native("ROLLBACK_IN_PROGRESS", "SCALE_UP")
    script.native("ROLLBACK_SUCCESSFUL", "CLEAN_UP")

    error = script.deploy()

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.message == (
        "iris:2 was not done after 5 s (service deployment IN_PROGRESS); rolled back to iris:1"
    )


def test_a_native_rollback_ecs_reports_failed_is_left_broken() -> None:
    script = Native(**{"deploy.ecs.timeout_s": "30"})
    ticks = itertools.count(0, 10)
    script.target.watch.clock = lambda: float(next(ticks))
    script.start_deploy()
    script.native("STOPPED", "SCALE_UP", "stopped by a user")
    script.stubber.add_response(
        "stop_service_deployment",
        {"serviceDeploymentArn": SERVICE_DEPLOYMENT},
        {"serviceDeploymentArn": SERVICE_DEPLOYMENT, "stopType": "ROLLBACK"},
    )
    script.native("ROLLBACK_FAILED", "SCALE_UP", "no capacity")

    error = script.deploy()

    assert isinstance(error, LeftBroken)
    assert "ECS ended the deployment of iris:2 STOPPED: stopped by a user" in error.message
    assert "ROLLBACK_FAILED: no capacity" in error.message
