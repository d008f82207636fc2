"""What the ECS API answers, as values, and the one edit deploy makes to a task definition.

:class:`Service`, :class:`Deployment` and :class:`ServiceDeployment` hold the parts of DescribeServices and
DescribeServiceDeployments that a deploy decides on. :func:`with_image` turns a DescribeTaskDefinition
answer into RegisterTaskDefinition arguments that differ from it only in one container's image and the
pipeline's own tags; which fields register accepts comes from botocore's service model at run time (see
``EcsClient.register_fields``), so a field AWS adds later is kept, not dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pipeline.errors import StageFailed

# Tags the pipeline puts on each revision it registers, so that ECS itself can say later which service
# that revision was made for and what ran there before it (a rollback from a fresh Jenkins agent).
SERVICE_TAG = "mlops-pipeline:service"
PREVIOUS_TAG = "mlops-pipeline:previous"
OWN_TAGS = (SERVICE_TAG, PREVIOUS_TAG)
CONTAINER_HINT = "set deploy.ecs.container to the name of the service's container"

# Deployment controllers and strategies (DescribeServices ``deploymentController.type`` and
# ``deploymentConfiguration.strategy``).
ECS_CONTROLLER = "ECS"
ROLLING = "ROLLING"
NATIVE_STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")


@dataclass(frozen=True)
class Deployment:
    """One entry of a service's ``deployments``."""

    id: str
    status: str  # PRIMARY, ACTIVE or INACTIVE
    task_definition: str
    desired: int
    running: int
    pending: int
    failed_tasks: int
    rollout_state: str | None  # IN_PROGRESS, COMPLETED, FAILED; None without the ECS deployment controller
    rollout_reason: str

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Deployment:
        return cls(
            id=str(raw.get("id", "")),
            status=str(raw.get("status", "")),
            task_definition=str(raw.get("taskDefinition", "")),
            desired=int(raw.get("desiredCount", 0)),
            running=int(raw.get("runningCount", 0)),
            pending=int(raw.get("pendingCount", 0)),
            failed_tasks=int(raw.get("failedTasks", 0)),
            rollout_state=raw.get("rolloutState"),
            rollout_reason=str(raw.get("rolloutStateReason", "")),
        )


@dataclass(frozen=True)
class Service:
    """The parts of DescribeServices the deploy needs."""

    arn: str
    status: str
    task_definition: str
    desired: int
    running: int
    deployments: tuple[Deployment, ...]
    events: tuple[tuple[str, str], ...]  # (id, message), newest first as ECS returns them
    controller: str = ECS_CONTROLLER  # ECS, CODE_DEPLOY or EXTERNAL
    strategy: str = ROLLING  # ROLLING, BLUE_GREEN, LINEAR or CANARY (ECS controller only)
    bake_minutes: int = 0

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Service:
        configuration = raw.get("deploymentConfiguration") or {}
        return cls(
            arn=str(raw.get("serviceArn", "")),
            status=str(raw.get("status", "")),
            task_definition=str(raw.get("taskDefinition", "")),
            desired=int(raw.get("desiredCount", 0)),
            running=int(raw.get("runningCount", 0)),
            deployments=tuple(Deployment.from_api(d) for d in raw.get("deployments", [])),
            events=tuple((str(e.get("id", "")), str(e.get("message", ""))) for e in raw.get("events", [])),
            controller=str((raw.get("deploymentController") or {}).get("type") or ECS_CONTROLLER),
            strategy=str(configuration.get("strategy") or ROLLING),
            bake_minutes=int(configuration.get("bakeTimeInMinutes") or 0),
        )

    def deployment(self, deployment_id: str) -> Deployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    @property
    def native(self) -> bool:
        """True when ECS runs one of its own blue/green, linear or canary deployments for this service."""
        return self.controller == ECS_CONTROLLER and self.strategy in NATIVE_STRATEGIES

    def describe_strategy(self) -> str:
        if self.controller != ECS_CONTROLLER:
            return f"deployment controller {self.controller}"
        bake = f", bake time {self.bake_minutes} min" if self.bake_minutes else ""
        return f"deployment controller ECS, strategy {self.strategy}{bake}"


@dataclass(frozen=True)
class ServiceDeployment:
    """One entry of ListServiceDeployments / DescribeServiceDeployments (ECS-native strategies)."""

    arn: str
    status: str  # PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, STOP_REQUESTED, ROLLBACK_*
    reason: str
    stage: str  # lifecycleStage: SCALE_UP, ..., BAKE_TIME, CLEAN_UP

    DONE = "SUCCESSFUL"
    ROLLED_BACK = "ROLLBACK_SUCCESSFUL"
    FAILED_STATES = ("STOPPED", "ROLLBACK_FAILED", "ROLLBACK_SUCCESSFUL")

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> ServiceDeployment:
        return cls(
            arn=str(raw.get("serviceDeploymentArn", "")),
            status=str(raw.get("status", "")),
            reason=str(raw.get("statusReason", "")),
            stage=str(raw.get("lifecycleStage", "")),
        )

    @property
    def finished(self) -> bool:
        return self.status == self.DONE or self.status in self.FAILED_STATES


@dataclass(frozen=True)
class TaskDefinition:
    """DescribeTaskDefinition's answer: the definition and the family revision's tags."""

    body: dict[str, Any]
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def arn(self) -> str:
        return str(self.body.get("taskDefinitionArn", ""))

    def tag(self, key: str) -> str | None:
        return next((value for k, value in self.tags if k == key), None)

    def containers(self) -> list[str]:
        return [str(d.get("name")) for d in self.body.get("containerDefinitions", [])]

    def missing(self, container: str) -> str | None:
        """Why ``container`` cannot be deployed to in this revision, or None when it is there."""
        if container in self.containers():
            return None
        return (
            f"task definition {short_name(self.arn)} has no container '{container}' "
            f"(it has: {', '.join(self.containers()) or 'none'})"
        )

    def image(self, container: str) -> str | None:
        """The image of ``container``, None when there is no such container."""
        for definition in self.body.get("containerDefinitions", []):
            if definition.get("name") == container:
                return str(definition.get("image", ""))
        return None


def short_name(task_definition_arn: str) -> str:
    """``family:revision`` of a task definition ARN (what the ECS console shows)."""
    return task_definition_arn.rsplit("/", 1)[-1]


def with_image(
    current: TaskDefinition,
    container: str,
    image: str,
    *,
    accepted: Collection[str],
    own_tags: dict[str, str],
) -> dict[str, Any]:
    """RegisterTaskDefinition arguments: ``current`` unchanged except ``container``'s image and the
    pipeline's own tags (``own_tags`` replace the earlier revision's values of the same keys).

    ``accepted`` is the set of fields register takes; everything else DescribeTaskDefinition returns is
    AWS's bookkeeping (ARN, revision, status, registeredAt, ...). Raises :class:`StageFailed` naming the
    containers that exist when ``container`` is not one of them.
    """
    missing = current.missing(container)
    if missing:
        raise StageFailed(missing, hint=CONTAINER_HINT)
    args = {key: copy.deepcopy(value) for key, value in current.body.items() if key in accepted}
    for definition in args["containerDefinitions"]:
        if definition.get("name") == container:
            definition["image"] = image
    tags = [{"key": k, "value": v} for k, v in current.tags if k not in own_tags]
    tags += [{"key": k, "value": v} for k, v in own_tags.items()]
    args["tags"] = tags
    return args
