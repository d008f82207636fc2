"""What the ECS API answers, as values, and the one edit deploy makes to a task definition.

:class:`Service`, :class:`Deployment`, :class:`Strategy` and :class:`ServiceDeployment` hold the parts of
DescribeServices and DescribeServiceDeployments that a deploy decides on. Field names, enums and defaults
are those of the ECS API as botocore's service model (1.44) documents them: ``DeploymentConfiguration``,
``LinearConfiguration``, ``CanaryConfiguration``, ``ServiceDeploymentStatus``,
``DeploymentLifecycleHookDetail``. :func:`with_image` turns a DescribeTaskDefinition
answer into RegisterTaskDefinition arguments that differ from it only in one container's image and the
pipeline's own tags; which fields register accepts comes from botocore's service model at run time (see
``EcsClient.register_fields``), so a field AWS adds later is kept, not dropped.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pipeline.errors import StageFailed

# Tags the pipeline puts on each revision it registers, so that ECS itself can say later which service
# that revision was made for and what ran there before it (a rollback from a fresh Jenkins agent).
SERVICE_TAG = "mlops-pipeline:service"
PREVIOUS_TAG = "mlops-pipeline:previous"
OWN_TAGS = (SERVICE_TAG, PREVIOUS_TAG)
CONTAINER_HINT = (
    "set deploy.ecs.container (and deploy.ecs.extra_containers) to names of the service's containers"
)

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
class Strategy:
    """How ECS rolls a new revision out (``deploymentConfiguration``), and how long its bake times last.

    Defaults are the API's: linear shifts 10 % per step with 6 min between steps (none after the last),
    canary shifts 5 % and bakes 10 min before shifting the rest; ``bakeTimeInMinutes`` is the bake after
    all production traffic has shifted, before the old revision is scaled down.
    """

    name: str = ROLLING
    bake_minutes: int = 0
    step_percent: float = 10.0
    step_bake_minutes: int = 6
    canary_percent: float = 5.0
    canary_bake_minutes: int = 10
    pause_stages: tuple[str, ...] = ()  # lifecycle stages with a PAUSE hook (ContinueServiceDeployment)
    circuit_breaker: bool = False  # deploymentCircuitBreaker.enable: ECS fails a rollout whose tasks fail

    @classmethod
    def from_api(cls, configuration: dict[str, Any]) -> Strategy:
        linear = configuration.get("linearConfiguration") or {}
        canary = configuration.get("canaryConfiguration") or {}
        pauses = [
            str(stage)
            for hook in configuration.get("lifecycleHooks") or []
            if hook.get("targetType") == "PAUSE"
            for stage in hook.get("lifecycleStages") or []
        ]
        return cls(
            name=str(configuration.get("strategy") or ROLLING),
            bake_minutes=int(configuration.get("bakeTimeInMinutes") or 0),
            step_percent=float(linear.get("stepPercent") or cls.step_percent),
            step_bake_minutes=int(linear.get("stepBakeTimeInMinutes", cls.step_bake_minutes)),
            canary_percent=float(canary.get("canaryPercent") or cls.canary_percent),
            canary_bake_minutes=int(canary.get("canaryBakeTimeInMinutes", cls.canary_bake_minutes)),
            pause_stages=tuple(pauses),
            circuit_breaker=bool((configuration.get("deploymentCircuitBreaker") or {}).get("enable")),
        )

    @property
    def steps(self) -> int:
        """Linear's traffic shifts: 100 % in ``step_percent`` increments (10 by default)."""
        return max(1, math.ceil(round(100.0 / self.step_percent, 6)))

    @property
    def bake_s(self) -> float:
        """Seconds ECS spends baking after the new revision runs: what a wait must add to its timeout."""
        if self.name == "LINEAR":
            minutes = (self.steps - 1) * self.step_bake_minutes + self.bake_minutes
        elif self.name == "CANARY":
            minutes = self.canary_bake_minutes + self.bake_minutes
        elif self.name == "BLUE_GREEN":
            minutes = self.bake_minutes
        else:
            minutes = 0
        return 60.0 * minutes

    def describe(self) -> str:
        if self.name == "LINEAR":
            shape = (
                f"LINEAR, {self.steps} steps of {self.step_percent:g} %, {self.step_bake_minutes} min "
                f"between steps, bake time {self.bake_minutes} min"
            )
        elif self.name == "CANARY":
            shape = (
                f"CANARY, {self.canary_percent:g} % for {self.canary_bake_minutes} min, "
                f"bake time {self.bake_minutes} min"
            )
        elif self.name == "BLUE_GREEN":
            shape = f"BLUE_GREEN, bake time {self.bake_minutes} min"
        else:
            shape = self.name
        if self.bake_s:
            shape += f" ({self.bake_s / 60:g} min of baking in all)"
        if self.pause_stages:
            shape += f"; PAUSE hooks at {', '.join(self.pause_stages)}"
        return shape


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
    strategy: Strategy = Strategy()  # ROLLING, BLUE_GREEN, LINEAR or CANARY (ECS controller only)
    current_deployment: str = ""  # currentServiceDeployment: the ARN of the latest service deployment

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Service:
        return cls(
            arn=str(raw.get("serviceArn", "")),
            status=str(raw.get("status", "")),
            task_definition=str(raw.get("taskDefinition", "")),
            desired=int(raw.get("desiredCount", 0)),
            running=int(raw.get("runningCount", 0)),
            deployments=tuple(Deployment.from_api(d) for d in raw.get("deployments", [])),
            events=tuple((str(e.get("id", "")), str(e.get("message", ""))) for e in raw.get("events", [])),
            controller=str((raw.get("deploymentController") or {}).get("type") or ECS_CONTROLLER),
            strategy=Strategy.from_api(raw.get("deploymentConfiguration") or {}),
            current_deployment=str(raw.get("currentServiceDeployment") or ""),
        )

    def deployment(self, deployment_id: str) -> Deployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    @property
    def native(self) -> bool:
        """True when ECS runs one of its own blue/green, linear or canary deployments for this service."""
        return self.controller == ECS_CONTROLLER and self.strategy.name in NATIVE_STRATEGIES

    @property
    def bake_s(self) -> float:
        """The strategy's bake times in seconds; 0 for rolling and for other controllers."""
        return self.strategy.bake_s if self.native else 0.0

    def describe_strategy(self) -> str:
        if self.controller != ECS_CONTROLLER:
            return f"deployment controller {self.controller}"
        return f"deployment controller ECS, strategy {self.strategy.describe()}"


@dataclass(frozen=True)
class ServiceDeployment:
    """One entry of DescribeServiceDeployments (ECS-native strategies)."""

    arn: str
    status: str  # PENDING, IN_PROGRESS, SUCCESSFUL, STOP_REQUESTED, STOPPED, ROLLBACK_*
    reason: str
    stage: str  # lifecycleStage: SCALE_UP, ..., BAKE_TIME, CLEAN_UP
    paused: str = ""  # what a PAUSE hook awaiting ContinueServiceDeployment says, or ""

    DONE = "SUCCESSFUL"
    STOPPED = "STOPPED"  # stopped (StopServiceDeployment ABORT) or superseded by a newer deployment
    ROLLING_BACK = ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")  # ECS puts the source revision back
    ROLLED_BACK = "ROLLBACK_SUCCESSFUL"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> ServiceDeployment:
        paused = [
            f"a PAUSE hook awaits ContinueServiceDeployment (on timeout, at {hook.get('expiresAt') or '?'}, "
            f"ECS will {str(hook.get('timeoutAction') or 'ROLLBACK').lower()})"
            for hook in raw.get("lifecycleHookDetails") or []
            if hook.get("targetType") == "PAUSE" and hook.get("status") == "AWAITING_ACTION"
        ]
        return cls(
            arn=str(raw.get("serviceDeploymentArn", "")),
            status=str(raw.get("status", "")),
            reason=str(raw.get("statusReason", "")),
            stage=str(raw.get("lifecycleStage", "")),
            paused=paused[0] if paused else "",
        )

    @property
    def rolling_back(self) -> bool:
        """ECS's own rollback has begun (requested, running, or ended either way)."""
        return self.status in (*self.ROLLING_BACK, self.ROLLED_BACK, self.ROLLBACK_FAILED)


@dataclass(frozen=True)
class TaskDefinition:
    """DescribeTaskDefinition's answer: the definition and the family revision's tags."""

    body: dict[str, Any]
    tags: tuple[tuple[str, str], ...] = ()
    # Fields the raw answer had that this botocore's model lacks: its parser dropped them, so a copy
    # registered from ``body`` would silently lose them (``unknown_fields``).
    unknown: tuple[str, ...] = ()

    @property
    def arn(self) -> str:
        return str(self.body.get("taskDefinitionArn", ""))

    @property
    def active(self) -> bool:
        """False for a deregistered (INACTIVE) revision: ECS refuses to point a service at one."""
        return str(self.body.get("status", "ACTIVE")) == "ACTIVE"

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


def failure_threshold(desired: int) -> int:
    """How many failed tasks ECS's deployment circuit breaker allows a rollout: half the desired count,
    at least 3 and at most 200 (API Reference, ServiceDeploymentCircuitBreaker ``threshold``)."""
    return min(200, max(3, math.ceil(0.5 * desired)))


def unknown_fields(raw: Any, shape: Any, path: str = "") -> list[str]:
    """The dotted paths in the JSON answer ``raw`` that botocore's ``shape`` (a structure, list or map
    model) has no member for: what botocore's parser drops without a word."""
    found: list[str] = []
    if shape.type_name == "structure" and isinstance(raw, dict):
        for key, value in raw.items():
            member = shape.members.get(key)
            where = f"{path}.{key}" if path else key
            if member is None:
                found.append(where)
            else:
                found += unknown_fields(value, member, where)
    elif shape.type_name == "list" and isinstance(raw, list):
        for item in raw:
            for where in unknown_fields(item, shape.member, f"{path}[]"):
                if where not in found:
                    found.append(where)
    elif shape.type_name == "map" and isinstance(raw, dict):
        for value in raw.values():
            found += [w for w in unknown_fields(value, shape.value, f"{path}{{}}") if w not in found]
    return found


def short_name(task_definition_arn: str) -> str:
    """``family:revision`` of a task definition ARN (what the ECS console shows)."""
    return task_definition_arn.rsplit("/", 1)[-1]


def with_image(
    current: TaskDefinition,
    containers: tuple[str, ...],
    image: str,
    *,
    accepted: Collection[str],
    own_tags: dict[str, str],
) -> dict[str, Any]:
    """RegisterTaskDefinition arguments: ``current`` unchanged except the image of each of ``containers``
    and the pipeline's own tags (``own_tags`` replace the earlier revision's values of the same keys).

    ``accepted`` is the set of fields register takes; everything else DescribeTaskDefinition returns is
    AWS's bookkeeping (ARN, revision, status, registeredAt, ...). Raises :class:`StageFailed` naming the
    containers that exist when one of ``containers`` is not among them.
    """
    for container in containers:
        missing = current.missing(container)
        if missing:
            raise StageFailed(missing, hint=CONTAINER_HINT)
    args = registration(current, accepted=accepted, own_tags=own_tags)
    for definition in args["containerDefinitions"]:
        if definition.get("name") in containers:
            definition["image"] = image
    return args


def registration(
    current: TaskDefinition, *, accepted: Collection[str], own_tags: dict[str, str]
) -> dict[str, Any]:
    """RegisterTaskDefinition arguments for a copy of ``current``, its tags with ``own_tags`` set."""
    args = {key: copy.deepcopy(value) for key, value in current.body.items() if key in accepted}
    tags = [{"key": k, "value": v} for k, v in current.tags if k not in own_tags]
    tags += [{"key": k, "value": v} for k, v in own_tags.items()]
    if tags:
        args["tags"] = tags
    return args
