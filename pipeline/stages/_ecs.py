"""Deploy target ``ecs``: a new task definition revision with the pushed digest, a rolling update, and a
wait that really waits.

``deploy`` reads the service's current task definition, registers a copy whose container
``deploy.ecs.container`` runs the pushed ``repo@sha256:...``, points the service at it and follows the
deployment ECS started for it until it is COMPLETED with every task running and the old tasks gone
(boto3's ``services_stable`` waiter would not do: it never looks at ``rolloutState`` and calls a rolled-back
deployment stable). A FAILED rollout (the deployment circuit breaker), a deployment ECS replaced with the
previous revision, or ``deploy.ecs.timeout_s`` without success fail the stage. Unless ECS already rolled
back by itself, ``deploy.ecs.rollback`` then points the service back at the previous revision and waits for
that too. Service events are copied to the stage log as they appear.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.adapters.ecs import (
    CREDENTIALS_HINT,
    EcsClient,
    Service,
    container_image,
    short_name,
    with_image,
)
from pipeline.config import Config
from pipeline.errors import ConfigError, Interrupted, PipelineError, StageFailed
from pipeline.stages.base import CheckResult

REQUIRED_KEYS = ("deploy.ecs.cluster", "deploy.ecs.service", "deploy.ecs.region", "deploy.ecs.container")


def validate(config: Config) -> None:
    """Refuse (exit 2) an ``ecs`` deploy without cluster, service, region or container."""
    for key in REQUIRED_KEYS:
        if not str(config.get(key)).strip():
            raise ConfigError(
                "is empty but deploy.target is 'ecs'",
                key=key,
                source=config.sources.get(key),
                hint=f"set it in pipeline.toml or with --set {key}=...",
            )


def client(config: Config) -> EcsClient:
    ecs = config.deploy.ecs
    return EcsClient(
        cluster=ecs.cluster, service=ecs.service, region=ecs.region, endpoint_url=ecs.endpoint_url
    )


def checks(config: Config) -> list[CheckResult]:
    """``doctor`` and preflight: credentials, region, and that the service answers."""
    ecs = config.deploy.ecs
    try:
        validate(config)
    except ConfigError as exc:
        return [CheckResult("ecs settings", False, exc.message, exc.hint or "")]
    ecs_client = client(config)
    problem = ecs_client.credentials_problem()
    if problem:
        return [CheckResult("aws credentials", False, problem, CREDENTIALS_HINT)]
    where = f"region {ecs.region}" + (f", endpoint {ecs.endpoint_url}" if ecs.endpoint_url else "")
    rows = [CheckResult("aws credentials", True, f"found by boto3; {where}")]
    try:
        service = ecs_client.describe_service()
    except PipelineError as exc:
        return [*rows, CheckResult("ecs service", False, exc.message, exc.hint or "")]
    rows.append(
        CheckResult(
            "ecs service",
            True,
            f"{ecs.cluster}/{ecs.service}: {service.status}, {service.running}/{service.desired} running, "
            f"task definition {short_name(service.task_definition)}",
        )
    )
    return rows


@dataclass(frozen=True)
class EcsRelease:
    """What a deploy left on the service."""

    task_definition: str
    previous: str
    seconds: float
    unchanged: bool = False


class EcsTarget:
    """The service ``deploy.ecs.service`` in ``deploy.ecs.cluster``."""

    def __init__(
        self,
        config: Config,
        log: Callable[[str], None],
        cancel: threading.Event | None = None,
        ecs_client: EcsClient | None = None,
        remaining_s: Callable[[], float] | None = None,
    ) -> None:
        """``remaining_s``: seconds left of the stage's own timeout; no wait outlasts it."""
        self.settings = config.deploy.ecs
        self.log = log
        self.cancel = cancel or threading.Event()
        self.remaining_s = remaining_s
        self.ecs = ecs_client or client(config)
        self._seen_events: set[str] = set()

    def deploy(self, image: str) -> EcsRelease:
        """Roll the service onto ``image``; raises :class:`StageFailed` (after rolling back) when it fails."""
        service = self.ecs.describe_service()
        self._seen_events.update(event_id for event_id, _ in service.events)
        previous = service.task_definition
        current = self.ecs.task_definition(previous)
        if container_image(current, self.settings.container) == image:
            self.log(f"{short_name(previous)} already runs {image}; waiting for the service to be stable")
            seconds = self._wait_for(self._primary_id(service, previous), previous)
            return EcsRelease(previous, previous, seconds, unchanged=True)
        new = self.ecs.register(with_image(current, self.settings.container, image))
        self.log(f"registered {short_name(new)} ({self.settings.container} = {image})")
        updated = self.ecs.update_service(new)
        self.log(f"service {self.settings.service}: {short_name(previous)} -> {short_name(new)}")
        try:
            seconds = self._wait_for(self._primary_id(updated, new), new)
        except StageFailed as exc:
            raise self._after_failure(exc, previous, new) from None
        return EcsRelease(new, previous, seconds)

    def roll_back_to(self, task_definition: str) -> float:
        """Point the service at an earlier revision and wait until it is stable."""
        updated = self.ecs.update_service(task_definition)
        self.log(f"service {self.settings.service}: back to {short_name(task_definition)}")
        return self._wait_for(self._primary_id(updated, task_definition), task_definition)

    def _after_failure(self, failure: StageFailed, previous: str, new: str) -> StageFailed:
        service = self.ecs.describe_service()
        if service.task_definition != new:
            return StageFailed(
                f"{failure.message}; ECS itself put the service back on "
                f"{short_name(service.task_definition)}",
                hint="see the service events in the deploy log",
            )
        if not self.settings.rollback:
            return StageFailed(
                f"{failure.message}; the service stays on {short_name(new)} (deploy.ecs.rollback is off)",
                hint="python -m pipeline rollback",
            )
        self.log(f"rolling back to {short_name(previous)}")
        try:
            self.roll_back_to(previous)
        except StageFailed as exc:
            return StageFailed(
                f"{failure.message}; the rollback to {short_name(previous)} failed too: {exc.message}",
                hint="look at the service in the ECS console now",
            )
        return StageFailed(f"{failure.message}; rolled back to {short_name(previous)}")

    @staticmethod
    def _primary_id(service: Service, task_definition: str) -> str:
        """The deployment ECS started for ``task_definition``: the PRIMARY one in UpdateService's answer."""
        primary = service.primary
        if primary is None:
            raise StageFailed(f"ECS answered without a PRIMARY deployment for {short_name(task_definition)}")
        return primary.id

    def _wait_for(self, deployment_id: str, task_definition: str) -> float:
        """Poll until the deployment is done; its duration. Fails on FAILED, replacement or timeout."""
        started = time.monotonic()
        limit = self.settings.timeout_s
        if self.remaining_s is not None:  # leave the runner a moment to record the result
            limit = max(1.0, min(limit, self.remaining_s() - 5))
        deadline = started + limit
        name = short_name(task_definition)
        while True:
            service = self.ecs.describe_service()
            self._log_events(service)
            deployment = service.deployment(deployment_id)
            if deployment is None:
                raise StageFailed(
                    f"the deployment of {name} was replaced; the service now runs "
                    f"{short_name(service.task_definition)}"
                )
            if deployment.rollout_state == "FAILED":
                raise StageFailed(f"ECS failed the deployment of {name}: {deployment.rollout_reason}")
            done = deployment.rollout_state in (None, "COMPLETED")
            if done and len(service.deployments) == 1 and deployment.running >= deployment.desired:
                seconds = time.monotonic() - started
                self.log(f"{name}: {deployment.running}/{deployment.desired} running after {seconds:.0f} s")
                return seconds
            if time.monotonic() >= deadline:
                raise StageFailed(
                    f"{name} was not stable after {limit:.0f} s: "
                    f"{deployment.running}/{deployment.desired} running, {deployment.pending} pending, "
                    f"{deployment.failed_tasks} failed, rollout {deployment.rollout_state or 'unknown'}, "
                    f"{len(service.deployments)} deployment(s)",
                    hint="see the ECS events in the deploy log; for slow starts raise deploy.ecs.timeout_s",
                )
            if self.cancel.wait(self.settings.poll_interval_s):
                raise Interrupted(f"deploy interrupted while ECS rolls out {name}; ECS goes on with it")

    def _log_events(self, service: Service) -> None:
        for event_id, message in reversed(service.events):
            if event_id not in self._seen_events:
                self._seen_events.add(event_id)
                self.log(f"ecs event: {message}")
