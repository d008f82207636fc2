"""Rollouts moto cannot produce: a FAILED rollout, ECS's circuit breaker rolling back by itself, a
deployment replaced under us. botocore's Stubber checks every request against the ECS API model and
answers with the response shapes the real API returns (DescribeServices ``deployments``)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from pipeline.adapters.ecs import EcsClient
from pipeline.config import load as load_config
from pipeline.errors import StageFailed
from pipeline.stages._ecs import EcsTarget
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

    def __init__(self, rollback: bool = True) -> None:
        self.boto = boto3.client(
            "ecs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
        )
        self.stubber = Stubber(self.boto)
        self.lines: list[str] = []
        config = load_config(
            ROOT,
            profile="aws",
            overrides=[
                "deploy.ecs.cluster=prod",
                "deploy.ecs.poll_interval_s=0.01",
                "deploy.ecs.timeout_s=5",
                f"deploy.ecs.rollback={str(rollback).lower()}",
            ],
            environ={},
        )
        ecs = EcsClient(cluster="prod", service="iris", region="eu-west-1", boto_client=self.boto)
        self.target = EcsTarget(config, self.lines.append, threading.Event(), ecs_client=ecs)

    def describe(self, body: dict[str, Any]) -> None:
        self.stubber.add_response(
            "describe_services", {"services": [body]}, {"cluster": "prod", "services": ["iris"]}
        )

    def start_deploy(self) -> None:
        """The calls up to and including UpdateService, which starts deployment ecs-svc/2 on revision 2."""
        self.describe(service(1, STEADY))
        self.stubber.add_response(
            "describe_task_definition", {"taskDefinition": TASK_DEFINITION}, {"taskDefinition": ARN.format(1)}
        )
        self.stubber.add_response(
            "register_task_definition",
            {"taskDefinition": {**TASK_DEFINITION, "taskDefinitionArn": ARN.format(2), "revision": 2}},
            {"family": "iris", "containerDefinitions": ANY},
        )
        in_progress = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="IN_PROGRESS", running=0)
        self.update(2, service(2, in_progress, {**STEADY, "status": "ACTIVE"}))

    def update(self, revision: int, answer: dict[str, Any]) -> None:
        self.stubber.add_response(
            "update_service",
            {"service": answer},
            {"cluster": "prod", "service": "iris", "taskDefinition": ARN.format(revision)},
        )

    def deploy(self) -> StageFailed | None:
        with self.stubber:
            try:
                self.target.deploy(IMAGE_NEW)
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
    script.describe(service(1, back, failed))  # read again to decide whether to roll back

    error = script.deploy()

    assert error is not None
    assert f"ECS failed the deployment of iris:2: {reason}" in error.message
    assert "ECS itself put the service back on iris:1" in error.message


def test_a_failed_rollout_without_the_circuit_breakers_rollback_is_rolled_back_by_us() -> None:
    script = Scripted()
    script.start_deploy()
    failed = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="FAILED", running=0, reason="tasks failed")
    script.describe(service(2, failed))
    script.describe(service(2, failed))
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS", running=1)
    script.update(1, service(1, back, failed))
    script.describe(service(1, {**back, "rolloutState": "COMPLETED", "runningCount": 2}))

    error = script.deploy()

    assert error is not None
    assert error.message == "ECS failed the deployment of iris:2: tasks failed; rolled back to iris:1"


def test_with_rollback_off_a_failed_rollout_is_left_alone() -> None:
    script = Scripted(rollback=False)
    script.start_deploy()
    failed = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="FAILED", running=0, reason="tasks failed")
    script.describe(service(2, failed))
    script.describe(service(2, failed))

    error = script.deploy()

    assert error is not None
    assert "the service stays on iris:2 (deploy.ecs.rollback is off)" in error.message


def test_a_deployment_replaced_under_us_fails() -> None:
    script = Scripted(rollback=False)
    script.start_deploy()
    other = deployment("ecs-svc/9", 5, status="PRIMARY", rollout="IN_PROGRESS")
    script.describe(service(5, other))
    script.describe(service(5, other))

    error = script.deploy()

    assert error is not None
    assert "the deployment of iris:2 was replaced; the service now runs iris:5" in error.message


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
