"""Following an ECS deployment until it is done, failed, or past its deadline: the ``ecs`` target's waits.

Two ways, chosen by the service's deployment configuration:

- **rolling** (the default strategy): the deployment ECS started for the new revision, read from
  DescribeServices, must be COMPLETED with every task running and the old deployments gone. boto3's
  ``services_stable`` waiter would not do: it never looks at ``rolloutState`` and calls a rolled-back
  deployment stable.
- **ECS-native blue/green, linear and canary**: the service deployment (ListServiceDeployments after the
  update, then DescribeServiceDeployments) must reach SUCCESSFUL, which ECS says only after the bake time.

What the watch sees decides what happens next, so each outcome is its own exception:
:class:`RolloutFailed` (ECS failed it, or it was not done by the deadline: the service still points at the
new revision, so a rollback is ours to do), :class:`PutBackByEcs` (ECS's circuit breaker or the strategy's
own rollback already restored the previous revision), :class:`Replaced` (someone else's deploy took over:
not ours to undo) and :class:`~pipeline.errors.LeftBroken` (the watch could not see the service until the
deadline: its state is unknown). An API error while watching is never a verdict by itself: a throttled or
failed describe is logged and asked again until the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TypeVar

from pipeline.adapters.ecs import EcsClient
from pipeline.adapters.ecs_model import Service, ServiceDeployment, short_name
from pipeline.errors import Interrupted, LeftBroken, PipelineError, ServiceBusy, StageFailed

T = TypeVar("T")


class RolloutFailed(StageFailed):
    """The deployment failed or was not done in time, and the service still points at its revision.

    ``deployment_arn``: the ECS-native service deployment, which ``StopServiceDeployment`` can roll back.
    """

    def __init__(self, message: str, *, hint: str | None = None, deployment_arn: str = "") -> None:
        super().__init__(message, hint=hint)
        self.deployment_arn = deployment_arn


class PutBackByEcs(StageFailed):
    """The deployment failed and ECS itself already put the previous revision back."""


class Replaced(StageFailed):
    """Another deployment of another revision took the service over while we watched."""


class Watch:
    """Polls one service every ``interval_s``; ``log`` gets ECS's events and a line per change of state."""

    def __init__(
        self, ecs: EcsClient, log: Callable[[str], None], cancel: threading.Event, interval_s: float
    ) -> None:
        self.ecs = ecs
        self.log = log
        self.cancel = cancel
        self.interval_s = interval_s
        self.clock: Callable[[], float] = time.monotonic  # tests hand in their own
        self._seen_events: set[str] = set()
        self._last_line = ""

    def mark_seen(self, service: Service) -> None:
        """Events already there before the deploy are not this deploy's."""
        self._seen_events.update(event_id for event_id, _ in service.events)

    # -- rolling ---------------------------------------------------------------------------------
    def rolling(self, deployment_id: str, task_definition: str, previous: str, limit_s: float) -> float:
        """Wait until deployment ``deployment_id`` (of ``task_definition``) is done; its duration."""
        started = self.clock()
        name = short_name(task_definition)
        while True:
            service = self._look(started, limit_s, name)
            if service is not None:
                seconds = self._judge_rolling(service, deployment_id, task_definition, previous, started)
                if seconds is not None:
                    return seconds
                if self.clock() - started >= limit_s:
                    raise RolloutFailed(self._not_done(service, deployment_id, name, limit_s))
            self._pause(name)

    def _judge_rolling(
        self, service: Service, deployment_id: str, task_definition: str, previous: str, started: float
    ) -> float | None:
        name = short_name(task_definition)
        deployment = service.deployment(deployment_id)
        if deployment is None:
            now = short_name(service.task_definition)
            if service.task_definition == previous:
                raise PutBackByEcs(f"the deployment of {name} is gone and ECS put the service back on {now}")
            raise Replaced(
                f"the deployment of {name} was replaced by another deploy: the service now runs {now}",
                hint="someone else deployed meanwhile; it is not rolled back (it is not this run's to undo)",
            )
        if deployment.rollout_state == "FAILED":
            failure = f"ECS failed the deployment of {name}: {deployment.rollout_reason}"
            if service.task_definition != task_definition:
                raise PutBackByEcs(
                    f"{failure}; ECS itself put the service back on {short_name(service.task_definition)}",
                    hint="see the service events in the deploy log",
                )
            raise RolloutFailed(failure)
        self._say(
            f"{name}: {deployment.running}/{deployment.desired} running, {deployment.pending} pending, "
            f"rollout {deployment.rollout_state or 'unknown'}, {len(service.deployments)} deployment(s)"
        )
        done = deployment.rollout_state in (None, "COMPLETED")
        if done and len(service.deployments) == 1 and deployment.running >= deployment.desired:
            seconds = self.clock() - started
            self.log(f"{name}: {deployment.running}/{deployment.desired} running after {seconds:.0f} s")
            return seconds
        return None

    @staticmethod
    def _not_done(service: Service, deployment_id: str, name: str, limit_s: float) -> str:
        deployment = service.deployment(deployment_id)
        assert deployment is not None  # _judge_rolling raised otherwise
        return (
            f"{name} was not stable after {limit_s:.0f} s: "
            f"{deployment.running}/{deployment.desired} running, {deployment.pending} pending, "
            f"{deployment.failed_tasks} failed, rollout {deployment.rollout_state or 'unknown'}, "
            f"{len(service.deployments)} deployment(s)"
        )

    # -- ECS-native strategies -------------------------------------------------------------------
    def native(self, since: datetime, task_definition: str, limit_s: float) -> tuple[float, str]:
        """Wait until the service deployment ECS started after ``since`` is SUCCESSFUL (bake time
        included); (its duration, its ARN). The ARN is "" when ECS never listed one."""
        started = self.clock()
        name = short_name(task_definition)
        found: ServiceDeployment | None = None
        arn = ""
        while True:
            found = self._ask(started, limit_s, name, partial(self._native_state, arn, since)) or found
            if found is not None:
                arn = found.arn
                self._say(f"{name}: service deployment {found.status}, stage {found.stage or '-'}")
                if found.status == ServiceDeployment.DONE:
                    seconds = self.clock() - started
                    self.log(f"{name}: the service deployment succeeded after {seconds:.0f} s")
                    return seconds, arn
                if found.status == ServiceDeployment.ROLLED_BACK:
                    raise PutBackByEcs(
                        f"ECS rolled the deployment of {name} back by itself: {found.reason or found.status}"
                    )
                if found.status in ServiceDeployment.FAILED_STATES:
                    failure = f"ECS ended the deployment of {name} {found.status}: {found.reason}"
                    raise RolloutFailed(failure, deployment_arn=arn)
            if self.clock() - started >= limit_s:
                state = f"service deployment {found.status}" if found else "no service deployment listed"
                failure = f"{name} was not done after {limit_s:.0f} s ({state})"
                raise RolloutFailed(failure, deployment_arn=arn)
            self._pause(name)

    def _native_state(self, arn: str, since: datetime) -> ServiceDeployment | None:
        if arn:
            return self.ecs.service_deployment(arn)
        return self.ecs.latest_service_deployment(since)

    def native_rollback(self, arn: str, name: str, limit_s: float) -> float:
        """After ``StopServiceDeployment(ROLLBACK)``: wait until ECS reports ROLLBACK_SUCCESSFUL."""
        started = self.clock()
        while True:
            found = self._ask(started, limit_s, name, lambda: self.ecs.service_deployment(arn))
            if found is not None:
                self._say(f"rollback of {name}: {found.status}, stage {found.stage or '-'}")
                if found.status == ServiceDeployment.ROLLED_BACK:
                    return self.clock() - started
                if found.status == "ROLLBACK_FAILED":
                    raise StageFailed(f"ECS reports ROLLBACK_FAILED: {found.reason}")
            if self.clock() - started >= limit_s:
                raise StageFailed(f"ECS had not finished the rollback after {limit_s:.0f} s")
            self._pause(name)

    # -- shared ----------------------------------------------------------------------------------
    def _look(self, started: float, limit_s: float, name: str) -> Service | None:
        service = self._ask(started, limit_s, name, self.ecs.describe_service)
        if service is not None:
            self._log_events(service)
        return service

    def _ask(self, started: float, limit_s: float, name: str, call: Callable[[], T]) -> T | None:
        """One API read; ``None`` after a passing error (logged), :class:`LeftBroken` once the deadline
        passed without an answer or when the error will not pass (denied, not found)."""
        try:
            return call()
        except ServiceBusy as exc:
            if self.clock() - started < limit_s:
                self.log(f"could not read the rollout of {name} ({exc.message}); looking again")
                return None
            raise LeftBroken(
                f"could not see the rollout of {name} for the last of {limit_s:.0f} s: {exc.message}",
                hint="its state is unknown: look at the service in the ECS console",
            ) from None
        except PipelineError as exc:
            if isinstance(exc, (RolloutFailed, PutBackByEcs, Replaced, Interrupted)):
                raise
            raise LeftBroken(
                f"could not follow the rollout of {name}: {exc.message}",
                hint="its state is unknown: look at the service in the ECS console; " + (exc.hint or ""),
            ) from None

    def _pause(self, name: str) -> None:
        if self.cancel.wait(self.interval_s):
            raise Interrupted(f"deploy interrupted while ECS rolls out {name}; ECS goes on with it")

    def _say(self, line: str) -> None:
        if line != self._last_line:
            self._last_line = line
            self.log(line)

    def _log_events(self, service: Service) -> None:
        for event_id, message in reversed(service.events):
            if event_id not in self._seen_events:
                self._seen_events.add(event_id)
                self.log(f"ecs event: {message}")
