"""Rollouts moto cannot produce: a FAILED rollout, ECS's circuit breaker rolling back by itself, a
deployment replaced under us, ECS's blue/green, linear and canary strategies. botocore's Stubber checks
every request against the ECS API model and answers with the response shapes the real API returns
(DescribeServices ``deployments`` and ``currentServiceDeployment``, DescribeServiceDeployments ``status``,
``lifecycleStage`` and ``lifecycleHookDetails``, as botocore 1.44's model of the API documents them)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from typing import Any, ClassVar

import boto3
import pytest
from botocore.stub import ANY, Stubber

from pipeline.adapters.ecs import EcsClient
from pipeline.adapters.ecs_model import Service
from pipeline.config import load as load_config
from pipeline.errors import ConfigError, LeftBroken, StageFailed, UsageError
from pipeline.stages.targets.base import Release
from pipeline.stages.targets.ecs import EcsTarget, time_budget
from tests.conftest import ROOT

ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/iris:{}"
# A registry address where nothing answers: deploy's check that the image exists is logged and skipped,
# without DNS or any network.
IMAGE_OLD = "127.0.0.1:9/iris@sha256:" + "a" * 64
IMAGE_NEW = "127.0.0.1:9/iris@sha256:" + "b" * 64


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


def service(
    revision: int, *deployments: dict[str, Any], events: tuple[str, ...] = (), current: str = ""
) -> dict[str, Any]:
    body = {
        "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/iris",
        "serviceName": "iris",
        "status": "ACTIVE",
        "taskDefinition": ARN.format(revision),
        "desiredCount": 2,
        "runningCount": 2,
        "deployments": list(deployments),
        "events": [{"id": f"event-{m}", "message": m} for m in events],
    }
    if current:
        body["currentServiceDeployment"] = current
    return body


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
            "deploy.ecs.service": "iris",
            "deploy.ecs.region": "eu-west-1",
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


def test_the_circuit_breaker_rolling_back_by_itself_is_waited_for_not_rolled_back_again() -> None:
    script = Scripted()
    script.start_deploy()
    reason = "ECS deployment circuit breaker: tasks failed to start."
    failed = deployment("ecs-svc/2", 2, status="ACTIVE", rollout="FAILED", running=0, reason=reason)
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS", running=1)
    script.describe(service(1, back, failed))
    script.describe(service(1, back, failed))  # ECS's rollback still running: not "restored" yet
    script.describe(service(1, {**back, "rolloutState": "COMPLETED", "runningCount": 2}))

    error = script.deploy()  # no UpdateService back, no StopServiceDeployment: the Stubber has none

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.exit_code == 1
    assert f"ECS failed the deployment of iris:2: {reason}" in error.message
    assert "ECS is putting the service back on iris:1: back on iris:1 after" in error.message
    assert any("waiting for ECS's rollback" in line for line in script.lines)


def test_a_circuit_breaker_rollback_that_fails_too_is_left_broken_with_exit_4() -> None:
    script = Scripted()
    script.start_deploy()
    failed = deployment("ecs-svc/2", 2, status="ACTIVE", rollout="FAILED", running=0, reason="tasks failed")
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS", running=0)
    script.describe(service(1, back, failed))
    no_room = {**back, "rolloutState": "FAILED", "rolloutStateReason": "no container instance has room"}
    script.describe(service(1, no_room))

    error = script.deploy()

    assert isinstance(error, LeftBroken) and error.exit_code == 4
    assert "that rollback did not end well" in error.message
    assert "no container instance has room" in error.message


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


def test_tasks_that_keep_failing_fail_the_rollout_at_once_with_their_reasons() -> None:
    """No circuit breaker on the service: once as many tasks failed as ECS's would allow (3 of 2 desired),
    the rollout is failed and rolled back at once, not after timeout_s, with why the tasks stopped."""
    script = Scripted(**{"deploy.ecs.timeout_s": "540"})
    script.start_deploy()
    failing = {
        **deployment("ecs-svc/2", 2, status="PRIMARY", rollout="IN_PROGRESS", running=0),
        "failedTasks": 3,
    }
    script.describe(service(2, failing, {**STEADY, "status": "ACTIVE"}))
    task = "arn:aws:ecs:eu-west-1:123456789012:task/prod/{}"
    script.stubber.add_response(
        "list_tasks",
        {"taskArns": [task.format("t1"), task.format("t2")]},
        {"cluster": "prod", "serviceName": "iris", "desiredStatus": "STOPPED", "maxResults": 100},
    )
    pull = "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
    script.stubber.add_response(
        "describe_tasks",
        {
            "tasks": [
                {
                    "taskArn": task.format("t1"),
                    "startedBy": "ecs-svc/2",
                    "stoppedReason": pull,
                    "containers": [{"name": "iris-classifier", "reason": "CannotPullContainerError"}],
                },
                {"taskArn": task.format("t2"), "startedBy": "ecs-svc/1", "stoppedReason": "Scaling activity"},
            ]
        },
        {"cluster": "prod", "tasks": [task.format("t1"), task.format("t2")]},
    )
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS", running=1)
    script.update(1, service(1, back, failing))
    script.describe(service(1, {**back, "rolloutState": "COMPLETED", "runningCount": 2}))

    error = script.deploy()

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.message == (
        f"3 tasks of iris:2 failed to start or stopped: {pull}; iris-classifier: CannotPullContainerError; "
        "rolled back to iris:1"
    )


def test_with_ecss_circuit_breaker_on_failed_tasks_are_left_to_it() -> None:
    script = Scripted()
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    script.start_deploy({**service(1, STEADY), "deploymentConfiguration": breaker})
    failing = {
        **deployment("ecs-svc/2", 2, status="PRIMARY", rollout="IN_PROGRESS", running=0),
        "failedTasks": 3,
    }
    script.describe({**service(2, failing), "deploymentConfiguration": breaker})
    done = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="COMPLETED")
    script.describe({**service(2, done), "deploymentConfiguration": breaker})

    assert script.deploy() is None  # no ListTasks: ECS's breaker decides, and here the tasks recovered


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


def server_error_on_update(script: Scripted) -> None:
    script.describe(service(1, STEADY))
    script.describe_task_definition()
    script.register()
    script.stubber.add_client_error(
        "update_service",
        service_error_code="ServerException",
        service_message="internal error",
        http_status_code=500,
    )


def test_an_update_answered_with_a_5xx_that_was_made_is_followed_not_deregistered() -> None:
    script = Scripted()
    server_error_on_update(script)
    in_progress = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="IN_PROGRESS", running=0)
    script.describe(service(2, in_progress, {**STEADY, "status": "ACTIVE"}))  # it was made after all
    script.describe(service(2, deployment("ecs-svc/2", 2, status="PRIMARY", rollout="COMPLETED")))

    assert script.deploy() is None  # no DeregisterTaskDefinition scripted
    assert any("but the service points at iris:2: following it" in line for line in script.lines)


def test_an_update_answered_with_a_5xx_that_was_not_made_deregisters_the_revision() -> None:
    script = Scripted()
    server_error_on_update(script)
    script.describe(service(1, STEADY))
    script.stubber.add_response(
        "deregister_task_definition",
        {"taskDefinition": {**TASK_DEFINITION, "taskDefinitionArn": ARN.format(2), "status": "INACTIVE"}},
        {"taskDefinition": ARN.format(2)},
    )

    error = script.deploy()

    assert error is not None and error.exit_code == 1
    assert error.message == (
        "ECS UpdateService failed: ServerException: internal error; iris:2 was deregistered again"
    )


def rollback_releases(*refs: int) -> list[Release]:
    return [Release(IMAGE_OLD, None, ARN.format(ref), ARN.format(ref - 1), f"run-{ref}") for ref in refs]


def test_rollback_after_our_own_cut_short_deploy_goes_back_to_the_last_recorded_release() -> None:
    script = Scripted()
    releases = rollback_releases(1)
    script.describe(service(2, deployment("ecs-svc/2", 2, status="PRIMARY", rollout="IN_PROGRESS")))
    own = [
        {"key": "mlops-pipeline:service", "value": "arn:aws:ecs:eu-west-1:123456789012:service/prod/iris"},
        {"key": "mlops-pipeline:previous", "value": ARN.format(1)},
    ]
    script.describe_task_definition(2, tags=own)
    script.describe_task_definition(1)  # ACTIVE: used as it is
    back = deployment("ecs-svc/3", 1, status="PRIMARY", rollout="IN_PROGRESS")
    script.update(1, service(1, back))
    script.describe(service(1, {**back, "rolloutState": "COMPLETED"}))

    with script.stubber:
        done = script.target.roll_back(releases)

    assert done.message.startswith("rolled back ecs:eu-west-1/prod/iris from iris:2 to iris:1")
    assert done.remaining == releases  # iris:1 is live again, and still the last release


def test_rollback_after_someone_elses_deploy_is_refused() -> None:
    script = Scripted()
    script.describe(service(5, deployment("ecs-svc/5", 5, status="PRIMARY", rollout="COMPLETED")))
    script.describe_task_definition(5, tags=[])

    with script.stubber, pytest.raises(UsageError) as caught:
        script.target.roll_back(rollback_releases(1))

    assert "someone else deployed since" in caught.value.message


def test_rollback_to_an_inactive_revision_goes_to_a_copy_and_the_record_follows_it() -> None:
    script = Scripted()
    releases = rollback_releases(1, 2)
    script.describe(service(2, deployment("ecs-svc/2", 2, status="PRIMARY", rollout="COMPLETED")))
    script.stubber.add_response(
        "describe_task_definition",
        {
            "taskDefinition": {**TASK_DEFINITION, "status": "INACTIVE"},
            "tags": [{"key": "team", "value": "ml"}],
        },
        {"taskDefinition": ARN.format(1), "include": ["TAGS"]},
    )
    script.stubber.add_response(
        "register_task_definition",
        {"taskDefinition": {**TASK_DEFINITION, "taskDefinitionArn": ARN.format(3), "revision": 3}},
        {
            "family": "iris",
            "containerDefinitions": TASK_DEFINITION["containerDefinitions"],
            "tags": [{"key": "team", "value": "ml"}],
        },
    )
    back = deployment("ecs-svc/3", 3, status="PRIMARY", rollout="COMPLETED")
    script.update(3, service(3, back))
    script.describe(service(3, back))

    with script.stubber:
        done = script.target.roll_back(releases)

    assert "to iris:3" in done.message
    assert [r.ref for r in done.remaining] == [ARN.format(3)]
    assert any("iris:1 is INACTIVE (deregistered)" in line for line in script.lines)


def test_a_rollback_ecs_refuses_changed_nothing_and_is_not_left_broken() -> None:
    script = Scripted()
    script.describe(service(2, deployment("ecs-svc/2", 2, status="PRIMARY", rollout="COMPLETED")))
    script.describe_task_definition(1)
    script.stubber.add_client_error(
        "update_service", service_error_code="InvalidParameterException", service_message="bad subnet"
    )

    with script.stubber, pytest.raises(StageFailed) as caught:
        script.target.roll_back(rollback_releases(1, 2))

    assert not isinstance(caught.value, LeftBroken) and caught.value.exit_code == 1
    assert "nothing changed, it still runs iris:2" in caught.value.message


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


# -- ECS-native strategies: followed through the service deployment UpdateService started ---------------
SERVICE_DEPLOYMENT = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/iris/bd1"
EARLIER_DEPLOYMENT = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/iris/bd0"
BLUE_GREEN = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1, "maximumPercent": 200}


def native_deployment(status: str, stage: str = "", reason: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "serviceDeploymentArn": SERVICE_DEPLOYMENT,
        "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/iris",
        "status": status,
        "lifecycleStage": stage,
        "statusReason": reason,
        **extra,
    }


NO_BAKE = {**BLUE_GREEN, "bakeTimeInMinutes": 0}


class Native(Scripted):
    configuration: ClassVar[dict[str, Any]] = BLUE_GREEN

    def start_deploy(self, before: dict[str, Any] | None = None, *, named: bool = True) -> None:
        """Up to UpdateService, whose answer names the service deployment it started (``named``), as ECS's
        does; the service before it names an earlier one."""
        before = before or {
            **service(1, STEADY, current=EARLIER_DEPLOYMENT),
            "deploymentConfiguration": self.configuration,
        }
        self.describe(before)
        self.describe_task_definition()
        self.register()
        in_progress = deployment("ecs-svc/2", 2, status="PRIMARY", rollout="IN_PROGRESS", running=0)
        answer = service(2, in_progress, current=SERVICE_DEPLOYMENT if named else EARLIER_DEPLOYMENT)
        self.update(2, {**answer, "deploymentConfiguration": before.get("deploymentConfiguration", {})})

    def native(self, status: str, stage: str = "", reason: str = "", **extra: Any) -> None:
        self.stubber.add_response(
            "describe_service_deployments",
            {"serviceDeployments": [native_deployment(status, stage, reason, **extra)]},
            {"serviceDeploymentArns": [SERVICE_DEPLOYMENT]},
        )

    def stop(self) -> None:
        self.stubber.add_response(
            "stop_service_deployment",
            {"serviceDeploymentArn": SERVICE_DEPLOYMENT},
            {"serviceDeploymentArn": SERVICE_DEPLOYMENT, "stopType": "ROLLBACK"},
        )

    def ticking(self, seconds: int) -> None:
        """Every look at the watch's clock is ``seconds`` later."""
        ticks = itertools.count(0, seconds)
        self.target.watch.clock = lambda: float(next(ticks))


class NativeNoBake(Native):
    configuration = NO_BAKE


class Linear(Native):
    configuration: ClassVar[dict[str, Any]] = {"strategy": "LINEAR"}  # the API's defaults


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


def test_the_followed_deployment_is_the_one_update_service_names_whatever_the_agents_clock() -> None:
    """No ListServiceDeployments by creation time: the Stubber refuses any call not scripted, and
    DescribeServiceDeployments must be asked for the ARN from UpdateService's answer."""
    script = Native()
    script.start_deploy()
    script.native("SUCCESSFUL", "CLEAN_UP")

    assert script.deploy() is None


def test_a_service_deployment_not_yet_in_update_services_answer_is_read_from_describe_services() -> None:
    script = Native()
    script.start_deploy(named=False)
    script.describe(service(2, current=EARLIER_DEPLOYMENT))  # not made yet
    script.describe(service(2, current=SERVICE_DEPLOYMENT))
    script.native("SUCCESSFUL", "CLEAN_UP")

    assert script.deploy() is None


@pytest.mark.parametrize(
    ("configuration", "bake_s"),
    [
        ({"strategy": "LINEAR"}, 9 * 6 * 60),  # 10 steps of 10 %, 6 min between steps: the API's defaults
        (
            {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 2}},
            360,
        ),
        (
            {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 33.3}, "bakeTimeInMinutes": 5},
            1380,  # 4 steps (33.3, 66.6, 99.9, 100 %): 3 bakes of 6 min, then 5 min
        ),
        ({"strategy": "CANARY"}, 600),  # 5 % for 10 min
        (
            {
                "strategy": "CANARY",
                "canaryConfiguration": {"canaryBakeTimeInMinutes": 3},
                "bakeTimeInMinutes": 2,
            },
            300,
        ),
        ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 15}, 900),
        ({"strategy": "ROLLING", "bakeTimeInMinutes": 15}, 0),
    ],
)
def test_each_strategys_bake_times_are_part_of_the_wait(configuration: dict[str, Any], bake_s: int) -> None:
    baking = Service.from_api({**service(1, STEADY), "deploymentConfiguration": configuration})
    script = Scripted(**{"deploy.ecs.timeout_s": "540"})

    assert baking.bake_s == bake_s
    assert script.target.deploy_limit(baking) == 540 + bake_s


def test_a_healthy_linear_deploy_is_followed_through_every_step_not_rolled_back() -> None:
    """The issue's case: linear with the API's defaults bakes 54 min; every poll here is a minute later."""

    script = Linear(**{"deploy.ecs.timeout_s": "300", "timeouts.deploy": "4000"})
    script.ticking(60)
    script.start_deploy()
    for _ in range(55):
        script.native("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT")
    script.native("SUCCESSFUL", "CLEAN_UP")

    assert script.deploy() is None
    assert "LINEAR, 10 steps of 10 %, 6 min between steps, bake time 0 min (54 min of baking" in "\n".join(
        script.lines
    )


def test_a_strategy_whose_bake_cannot_fit_in_the_stage_timeout_is_refused_before_anything_changes() -> None:
    script = Linear(
        **{"deploy.ecs.timeout_s": "540", "timeouts.deploy": "1200", "deploy.ecs.service": "iris"}
    )
    script.describe({**service(1, STEADY), "deploymentConfiguration": Linear.configuration})

    with (
        script.stubber,
        pytest.raises(ConfigError) as caught,
    ):  # only DescribeServices: no register, no update
        script.target.deploy(IMAGE_NEW, "run-1")

    error = caught.value
    assert error.exit_code == 2
    assert error.message.startswith(
        "timeouts.deploy (from --set): is 1200 s, but a deploy to iris (LINEAR) needs 540 s rollout"
    )
    assert "3240 s bake" in error.message and "5 s rollback" in error.message and "= 3795 s" in error.message
    assert "raise timeouts.deploy to at least 3795 (--set timeouts.deploy=3795)" in (error.hint or "")


def test_the_time_budget_counts_the_verification_too() -> None:
    script = Scripted(**{"deploy.ecs.verify_url": "http://lb.example", "deploy.ecs.verify_timeout_s": "60"})
    blue_green = Service.from_api({**service(1, STEADY), "deploymentConfiguration": BLUE_GREEN})

    needed, text = time_budget(script.target.config, blue_green)

    assert needed == 5 + 60 + 60 + 5 + 10
    assert "60 s verify (deploy.ecs.verify_timeout_s)" in text


def test_a_native_deploy_ecs_rolled_back_itself_is_waited_for_and_not_rolled_back_again() -> None:
    script = Native()
    script.start_deploy()
    script.native("ROLLBACK_IN_PROGRESS", "SCALE_UP", "alarm iris-5xx")
    script.native("ROLLBACK_IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "alarm iris-5xx")
    script.native("ROLLBACK_SUCCESSFUL", "CLEAN_UP", "alarm iris-5xx")

    error = script.deploy()  # no StopServiceDeployment scripted

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.message.startswith("ECS is rolling the deployment of iris:2 back by itself: alarm iris-5xx")
    assert "back on iris:1 after" in error.message


def test_ecss_own_rollback_running_past_the_rollouts_deadline_gets_the_rollbacks_wait() -> None:
    script = Native(**{"deploy.ecs.timeout_s": "5", "deploy.ecs.rollback_timeout_s": "60"})
    script.ticking(10)
    script.start_deploy(
        {
            **service(1, STEADY, current=EARLIER_DEPLOYMENT),
            "deploymentConfiguration": {**BLUE_GREEN, "bakeTimeInMinutes": 0},
        }
    )
    for _ in range(3):  # 30 s: past the rollout's 5 s, inside the rollback's 60 s
        script.native("ROLLBACK_IN_PROGRESS", "SCALE_UP", "alarm iris-5xx")
    script.native("ROLLBACK_SUCCESSFUL", "CLEAN_UP", "alarm iris-5xx")

    error = script.deploy()  # no StopServiceDeployment on a deployment ECS is already rolling back

    assert error is not None and not isinstance(error, LeftBroken)
    assert "back on iris:1" in error.message


def test_ecss_own_native_rollback_that_fails_is_left_broken() -> None:
    script = Native()
    script.start_deploy()
    script.native("ROLLBACK_FAILED", "SCALE_UP", "no capacity")

    error = script.deploy()

    assert isinstance(error, LeftBroken) and error.exit_code == 4
    assert "that rollback failed: no capacity" in error.message


def test_a_native_deploy_past_its_deadline_is_stopped_with_a_rollback_through_ecs() -> None:
    script = Native(**{"deploy.ecs.timeout_s": "5", "deploy.ecs.rollback_timeout_s": "60"})
    script.ticking(10)
    no_bake = {
        **service(1, STEADY, current=EARLIER_DEPLOYMENT),
        "deploymentConfiguration": {**BLUE_GREEN, "bakeTimeInMinutes": 0},
    }
    script.start_deploy(no_bake)
    script.native("IN_PROGRESS", "SCALE_UP")
    script.stop()
    script.native("ROLLBACK_IN_PROGRESS", "SCALE_UP")
    script.native("ROLLBACK_SUCCESSFUL", "CLEAN_UP")

    error = script.deploy()

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.message == (
        "iris:2 was not done after 5 s (service deployment IN_PROGRESS); rolled back to iris:1"
    )


def test_a_native_rollback_ecs_reports_failed_is_left_broken() -> None:
    script = NativeNoBake(**{"deploy.ecs.timeout_s": "5", "deploy.ecs.rollback_timeout_s": "60"})
    script.ticking(10)
    script.start_deploy()
    script.native("IN_PROGRESS", "SCALE_UP")
    script.stop()
    script.native("ROLLBACK_FAILED", "SCALE_UP", "no capacity")

    error = script.deploy()

    assert isinstance(error, LeftBroken)
    assert "ROLLBACK_FAILED: no capacity" in error.message


def test_a_native_deployment_superseded_by_someone_elses_is_not_ours_to_undo() -> None:
    script = Native()
    script.start_deploy()
    script.native("STOPPED", "SCALE_UP", "superseded by a newer service deployment")
    other = deployment("ecs-svc/9", 5, status="PRIMARY", rollout="IN_PROGRESS")
    script.describe(service(5, other, current=SERVICE_DEPLOYMENT.replace("bd1", "bd9")))

    error = script.deploy()  # no StopServiceDeployment on a finished deployment, no UpdateService back

    assert error is not None and not isinstance(error, LeftBroken)
    assert error.exit_code == 1
    assert "was superseded by another deploy (superseded by a newer service deployment)" in error.message
    assert "the service now runs iris:5" in error.message
    assert "not rolled back" in (error.hint or "")


def test_a_native_deployment_stopped_while_the_service_still_points_at_it_is_rolled_back_by_update() -> None:
    script = Native(**{"deploy.ecs.rollback_timeout_s": "60"})
    script.start_deploy()
    script.native("STOPPED", "SCALE_UP", "stopped by a user (ABORT)")
    script.describe(service(2, current=SERVICE_DEPLOYMENT))
    back_deployment = SERVICE_DEPLOYMENT.replace("bd1", "bd2")
    script.update(1, {**service(1, current=back_deployment), "deploymentConfiguration": BLUE_GREEN})
    script.stubber.add_response(
        "describe_service_deployments",
        {
            "serviceDeployments": [
                {**native_deployment("SUCCESSFUL"), "serviceDeploymentArn": back_deployment}
            ]
        },
        {"serviceDeploymentArns": [back_deployment]},
    )

    error = script.deploy()  # UpdateService back to iris:1, never StopServiceDeployment

    assert error is not None and not isinstance(error, LeftBroken)
    assert (
        error.message
        == "ECS stopped the deployment of iris:2: stopped by a user (ABORT); rolled back to iris:1"
    )


def test_a_pause_hook_awaiting_action_at_the_deadline_leaves_the_deployment_paused() -> None:
    script = NativeNoBake(**{"deploy.ecs.timeout_s": "5"})
    script.ticking(10)
    hook = {
        "hookId": "h-1",
        "targetType": "PAUSE",
        "status": "AWAITING_ACTION",
        "expiresAt": datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        "timeoutAction": "ROLLBACK",
    }
    script.start_deploy()
    script.native("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", lifecycleHookDetails=[hook])

    error = script.deploy()  # no StopServiceDeployment: the pause is a person's to end

    assert error is not None and not isinstance(error, LeftBroken) and error.exit_code == 1
    assert "it is paused at POST_TEST_TRAFFIC_SHIFT, where a PAUSE hook awaits ContinueServiceDeployment" in (
        error.message
    )
    assert "ECS will rollback" in error.message and "it is left paused" in error.message
    assert "continue-service-deployment" in (error.hint or "")
    assert sum("paused at POST_TEST_TRAFFIC_SHIFT" in line for line in script.lines) == 1
