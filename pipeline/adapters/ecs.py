"""AWS ECS through boto3: read a service, register a task definition with a new image, update the service.

The only module that talks to ECS; errors are translated by :func:`pipeline.adapters.aws.aws_call`.
Credentials come from boto3's standard chain (environment, shared config and profile, container or instance
role); ``endpoint_url`` points boto3 at a stand-in such as ``moto_server``. boto3 is imported only when a
client is made, so ``--help`` stays fast.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pipeline.adapters.aws import CREDENTIALS_HINT, aws_call
from pipeline.errors import StageFailed

__all__ = [
    "CREDENTIALS_HINT",
    "Deployment",
    "EcsClient",
    "Service",
    "container_image",
    "short_name",
    "with_image",
]

# What DescribeTaskDefinition returns that RegisterTaskDefinition accepts; the rest (ARN, revision,
# status, compatibilities, requiresAttributes, registeredAt/By, ...) is AWS's bookkeeping.
REGISTER_FIELDS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
)


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
        )

    def deployment(self, deployment_id: str) -> Deployment | None:
        return next((d for d in self.deployments if d.id == deployment_id), None)

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)


def short_name(task_definition_arn: str) -> str:
    """``family:revision`` of a task definition ARN (what the ECS console shows)."""
    return task_definition_arn.rsplit("/", 1)[-1]


def container_image(task_definition: dict[str, Any], container: str) -> str | None:
    """The image of ``container`` in a task definition, None when there is no such container."""
    for definition in task_definition.get("containerDefinitions", []):
        if definition.get("name") == container:
            return str(definition.get("image", ""))
    return None


def with_image(task_definition: dict[str, Any], container: str, image: str) -> dict[str, Any]:
    """RegisterTaskDefinition arguments: ``task_definition`` unchanged except ``container``'s image.

    Raises :class:`StageFailed` naming the containers that exist when ``container`` is not one of them.
    """
    names = [d.get("name") for d in task_definition.get("containerDefinitions", [])]
    if container not in names:
        raise StageFailed(
            f"task definition {short_name(str(task_definition.get('taskDefinitionArn', '')))} has no "
            f"container '{container}' (it has: {', '.join(map(str, names)) or 'none'})",
            hint="set deploy.ecs.container to the name of the service's container",
        )
    args = {key: copy.deepcopy(task_definition[key]) for key in REGISTER_FIELDS if key in task_definition}
    for definition in args["containerDefinitions"]:
        if definition.get("name") == container:
            definition["image"] = image
    return args


class EcsClient:
    """One ECS service in one cluster, behind the calls the deploy stage makes."""

    def __init__(
        self, *, cluster: str, service: str, region: str, endpoint_url: str = "", boto_client: Any = None
    ) -> None:
        """``boto_client`` replaces the boto3 ECS client (tests hand in one wrapped in a botocore Stubber)."""
        import boto3
        from botocore.config import Config as BotoConfig

        self.cluster = cluster
        self.service = service
        self._session = boto3.session.Session(region_name=region or None)
        self._client = boto_client or self._session.client(
            "ecs",
            endpoint_url=endpoint_url or None,
            config=BotoConfig(
                connect_timeout=5,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 4},
                user_agent_extra="mlops-pipeline",
            ),
        )

    def credentials_problem(self) -> str | None:
        """Why boto3's chain yields no credentials, or None when it finds some (validity is not checked)."""
        from botocore.exceptions import BotoCoreError

        try:
            found = self._session.get_credentials()
        except BotoCoreError as exc:  # a configured provider (profile, container, SSO) failed
            return f"boto3 cannot get AWS credentials: {exc}"
        return None if found is not None else "boto3 finds no AWS credentials"

    def describe_service(self) -> Service:
        """The service; :class:`StageFailed` when it does not exist or is not ACTIVE."""
        with aws_call("ECS", "DescribeServices"):
            answer = self._client.describe_services(cluster=self.cluster, services=[self.service])
        services = answer.get("services", [])
        if not services:
            reasons = ", ".join(f.get("reason", "?") for f in answer.get("failures", [])) or "not found"
            raise StageFailed(
                f"ECS service '{self.service}' in cluster '{self.cluster}': {reasons}",
                hint="create the service first, or set deploy.ecs.cluster and deploy.ecs.service",
            )
        service = Service.from_api(services[0])
        if service.status != "ACTIVE":
            raise StageFailed(
                f"ECS service '{self.service}' in cluster '{self.cluster}' is {service.status}, not ACTIVE",
                hint="deploy to an active service",
            )
        return service

    def task_definition(self, arn: str) -> dict[str, Any]:
        """The full task definition behind ``arn``."""
        with aws_call("ECS", "DescribeTaskDefinition"):
            return dict(self._client.describe_task_definition(taskDefinition=arn)["taskDefinition"])

    def register(self, arguments: dict[str, Any]) -> str:
        """Register a new revision; its ARN."""
        with aws_call("ECS", "RegisterTaskDefinition"):
            answer = self._client.register_task_definition(**arguments)
        return str(answer["taskDefinition"]["taskDefinitionArn"])

    def update_service(self, task_definition_arn: str) -> Service:
        """Point the service at ``task_definition_arn``; returns the service as ECS answered."""
        with aws_call("ECS", "UpdateService"):
            answer = self._client.update_service(
                cluster=self.cluster, service=self.service, taskDefinition=task_definition_arn
            )
        return Service.from_api(answer["service"])
