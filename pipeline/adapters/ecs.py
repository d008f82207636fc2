"""AWS ECS through boto3: read a service, register a task definition with a new image, update the service,
follow ECS-native deployments.

The only module that talks to ECS (and to STS, for who the caller is); errors are translated by
:func:`pipeline.adapters.aws.aws_call`. Credentials come from boto3's standard chain (environment, shared
config and profile, container or instance role); ``endpoint_url`` points boto3 at a stand-in such as
``moto_server`` (STS too). Retries are botocore's ``standard`` mode. boto3 is imported only when a client
is made, so ``--help`` stays fast. The values it returns are in :mod:`pipeline.adapters.ecs_model`.

botocore's parser keeps only the fields its model of the API knows. DescribeTaskDefinition's raw answer is
therefore also compared with that model (the ``before-parse`` event): a field AWS added after this botocore
was released is reported (``TaskDefinition.unknown``) instead of silently left out of the next revision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipeline.adapters.aws import CREDENTIALS_HINT, aws_call
from pipeline.adapters.ecs_model import (
    Service,
    ServiceDeployment,
    TaskDefinition,
    short_name,
    unknown_fields,
)
from pipeline.errors import StageFailed

__all__ = ["CREDENTIALS_HINT", "EcsClient"]


class EcsClient:
    """One ECS service in one cluster, behind the calls the deploy stage makes."""

    def __init__(  # pylint: disable=too-many-arguments
        self,
        *,
        cluster: str,
        service: str,
        region: str,
        endpoint_url: str = "",
        boto_client: Any = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        """``boto_client`` replaces the boto3 ECS client (tests hand in one wrapped in a botocore Stubber);
        ``credentials`` are ``boto3.session.Session``'s keywords (none: boto3's own chain)."""
        import boto3
        from botocore.config import Config as BotoConfig

        self.cluster = cluster
        self.service = service
        self._session = boto3.session.Session(region_name=region or None, **(credentials or {}))
        self._endpoint_url = endpoint_url or None
        self._boto_config = BotoConfig(
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 4},
            user_agent_extra="mlops-pipeline",
        )
        self._client = boto_client or self._session.client(
            "ecs", endpoint_url=self._endpoint_url, config=self._boto_config
        )
        self._unknown: list[str] = []
        self._client.meta.events.register("before-parse.ecs.DescribeTaskDefinition", self._read_raw)

    def _read_raw(self, operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        """Note the fields of DescribeTaskDefinition's raw answer that botocore's model lacks."""
        self._unknown = []
        if int(response_dict.get("status_code") or 0) >= 300:
            return
        try:
            raw = json.loads(response_dict.get("body") or b"{}")
        except ValueError:
            return  # botocore's parser reports a body that is not JSON
        self._unknown = unknown_fields(raw, operation_model.output_shape)

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

    def caller(self) -> str:
        """The ARN of the identity boto3's credentials belong to (``sts:GetCallerIdentity``)."""
        sts = self._session.client("sts", endpoint_url=self._endpoint_url, config=self._boto_config)
        with aws_call("STS", "GetCallerIdentity"):
            return str(sts.get_caller_identity()["Arn"])

    def register_fields(self) -> frozenset[str]:
        """The fields RegisterTaskDefinition accepts, from botocore's model of the API."""
        shape = self._client.meta.service_model.operation_model("RegisterTaskDefinition").input_shape
        return frozenset(shape.members)

    def task_definition(self, arn: str) -> TaskDefinition:
        """The full task definition behind ``arn``, with its tags."""
        self._unknown = []
        with aws_call("ECS", "DescribeTaskDefinition"):
            answer = self._client.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        tags = tuple((str(t.get("key", "")), str(t.get("value", ""))) for t in answer.get("tags") or [])
        return TaskDefinition(dict(answer["taskDefinition"]), tags, tuple(self._unknown))

    def deregister(self, arn: str) -> None:
        """Mark a revision INACTIVE (one registered for an update that then failed)."""
        with aws_call("ECS", "DeregisterTaskDefinition"):
            self._client.deregister_task_definition(taskDefinition=arn)

    def register(self, arguments: dict[str, Any]) -> str:
        """Register a new revision; its ARN."""
        with aws_call("ECS", "RegisterTaskDefinition"):
            answer = self._client.register_task_definition(**arguments)
        return str(answer["taskDefinition"]["taskDefinitionArn"])

    def update_service(self, task_definition_arn: str, *, force: bool = False) -> Service:
        """Point the service at ``task_definition_arn`` (``force``: start new tasks even when it already
        runs it); returns the service as ECS answered, whose ``currentServiceDeployment`` is the
        deployment this call started."""
        arguments: dict[str, Any] = {"cluster": self.cluster, "service": self.service}
        arguments["taskDefinition"] = task_definition_arn
        if force:
            arguments["forceNewDeployment"] = True
        with aws_call("ECS", "UpdateService"):
            answer = self._client.update_service(**arguments)
        return Service.from_api(answer["service"])

    def revisions(self, family: str) -> list[str]:
        """The ACTIVE revisions of task definition ``family``, newest first."""
        paginator = self._client.get_paginator("list_task_definitions")
        with aws_call("ECS", "ListTaskDefinitions"):
            pages = list(paginator.paginate(familyPrefix=family, status="ACTIVE"))
        found = [
            arn
            for page in pages
            for arn in page.get("taskDefinitionArns") or []
            if short_name(arn).rpartition(":")[0] == family
        ]
        return sorted(found, key=lambda arn: int(arn.rpartition(":")[2] or 0), reverse=True)

    def stopped_tasks(self, deployment_id: str, most: int = 3) -> list[str]:
        """Why the service's stopped tasks of deployment ``deployment_id`` stopped (``stoppedReason`` and
        each container's ``reason``), at most ``most`` of them; ECS keeps stopped tasks about an hour."""
        with aws_call("ECS", "ListTasks"):
            arns = self._client.list_tasks(
                cluster=self.cluster, serviceName=self.service, desiredStatus="STOPPED", maxResults=100
            ).get("taskArns", [])
        if not arns:
            return []
        with aws_call("ECS", "DescribeTasks"):
            tasks = self._client.describe_tasks(cluster=self.cluster, tasks=arns).get("tasks", [])
        reasons: list[str] = []
        for task in tasks:
            if task.get("startedBy") != deployment_id:
                continue
            why = [str(task.get("stoppedReason") or task.get("stopCode") or "stopped")]
            why += [
                f"{c.get('name')}: {c.get('reason')}" for c in task.get("containers", []) if c.get("reason")
            ]
            reason = "; ".join(why)
            if reason not in reasons:
                reasons.append(reason)
        return reasons[:most]

    def probe_service_deployments(self) -> None:
        """One ListServiceDeployments of this service: raises when the identity may not read them."""
        with aws_call("ECS", "ListServiceDeployments"):
            self._client.list_service_deployments(cluster=self.cluster, service=self.service, maxResults=1)

    def service_deployment(self, arn: str) -> ServiceDeployment:
        with aws_call("ECS", "DescribeServiceDeployments"):
            answer = self._client.describe_service_deployments(serviceDeploymentArns=[arn])
        found = answer.get("serviceDeployments") or []
        if not found:
            reasons = ", ".join(f.get("reason", "?") for f in answer.get("failures", [])) or "not found"
            raise StageFailed(f"ECS service deployment {arn}: {reasons}")
        return ServiceDeployment.from_api(found[0])

    def stop_service_deployment(self, arn: str) -> None:
        """Ask ECS to roll an ECS-native deployment back (``StopServiceDeployment``, stop type ROLLBACK)."""
        with aws_call("ECS", "StopServiceDeployment"):
            self._client.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
