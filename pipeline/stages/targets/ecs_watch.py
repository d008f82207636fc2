"""Following an ECS deployment until it is done, failed, or past its deadline: the ``ecs`` target's waits.

Two ways, chosen by the service's deployment configuration:

- **rolling** (the default strategy): the deployment ECS started for the new revision, read from
  DescribeServices, must be COMPLETED with every task running and the old deployments gone. boto3's
  ``services_stable`` waiter would not do: it never looks at ``rolloutState`` and calls a rolled-back
  deployment stable.
- **ECS-native blue/green, linear and canary**: the service deployment that UpdateService started (its
  ARN is the answer's ``currentServiceDeployment``; never guessed from the agent's clock) must reach
  SUCCESSFUL, which ECS says only after every bake time (DescribeServiceDeployments).

What the watch sees decides what happens next, so each outcome is its own exception:
:class:`RolloutFailed` (ECS failed it, or it was not done by the deadline: the service still points at the
new revision, so a rollback is ours to do), :class:`EcsRollsBack` (ECS's circuit breaker or the strategy's
own rollback has begun putting the previous revision back: the target waits for it to end),
:class:`PutBackByEcs` (that rollback is over), :class:`Replaced` (someone else's deploy took over: not ours
to undo), :class:`Paused` (a PAUSE lifecycle hook still awaits ContinueServiceDeployment at the deadline:
the deployment is left to whoever continues it) and :class:`~pipeline.errors.LeftBroken` (the watch could
not see the service until the deadline, or ECS's own rollback failed: its state is unknown or broken). An
API error while watching is never a verdict by itself: a throttled or failed describe is logged and asked
again until the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from pipeline.adapters.ecs import EcsClient
from pipeline.adapters.ecs_model import Service, ServiceDeployment, failure_threshold, short_name
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
    """The deployment failed and ECS itself put the previous revision back."""


class EcsRollsBack(StageFailed):
    """The deployment failed and ECS has begun putting ``task_definition`` back by itself: the rolling
    deployment ``deployment_id``, or the native service deployment ``deployment_arn`` rolling back."""

    def __init__(
        self, message: str, *, task_definition: str, deployment_id: str = "", deployment_arn: str = ""
    ) -> None:
        super().__init__(message)
        self.task_definition = task_definition
        self.deployment_id = deployment_id
        self.deployment_arn = deployment_arn


class Paused(StageFailed):
    """A PAUSE lifecycle hook held the deployment until the deadline; ECS keeps it paused."""


class Replaced(StageFailed):
    """Another deployment of another revision took the service over while we watched."""


class Watch:
    """Polls one service every ``interval_s``; ``log`` gets ECS's events and a line per change of state."""

    def __init__(
        self,
        ecs: EcsClient,
        log: Callable[[str], None],
        cancel: threading.Event,
        interval_s: float,
        fail_fast: bool = True,
    ) -> None:
        """``fail_fast``: fail a rolling deployment once as many of its tasks failed as ECS's circuit breaker
        would allow, when the service has no circuit breaker of its own."""
        self.ecs = ecs
        self.fail_fast = fail_fast
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
            self._put_back_or_replaced(service, f"the deployment of {name} is gone", name, previous)
        assert deployment is not None  # _put_back_or_replaced always raises
        if deployment.rollout_state == "FAILED":
            failure = f"ECS failed the deployment of {name}: {deployment.rollout_reason}"
            if service.task_definition != task_definition:
                self._put_back_or_replaced(service, failure, name, previous)
            raise RolloutFailed(failure)
        if (
            self.fail_fast
            and not service.strategy.circuit_breaker
            and deployment.failed_tasks >= failure_threshold(deployment.desired)
        ):
            raise RolloutFailed(self._tasks_failed(deployment_id, deployment.failed_tasks, name))
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

    def _tasks_failed(self, deployment_id: str, failed: int, name: str) -> str:
        """The failure of a rollout whose tasks keep failing, with why the last ones stopped."""
        try:
            reasons = self.ecs.stopped_tasks(deployment_id)
        except PipelineError as exc:
            reasons = [f"(their reasons could not be read: {exc.message})"]
        why = f": {' | '.join(reasons)}" if reasons else ""
        return f"{failed} tasks of {name} failed to start or stopped{why}"

    @staticmethod
    def _put_back_or_replaced(service: Service, failure: str, name: str, previous: str) -> None:
        """The service no longer points at our revision: ECS is putting ``previous`` back (its circuit
        breaker: a new PRIMARY deployment of ``previous``), or someone else deployed another revision."""
        now = short_name(service.task_definition)
        primary = service.primary
        if service.task_definition == previous and primary is not None:
            raise EcsRollsBack(
                f"{failure}; ECS is putting the service back on {now}",
                task_definition=previous,
                deployment_id=primary.id,
            )
        raise Replaced(
            f"the deployment of {name} was replaced by another deploy: the service now runs {now}",
            hint="someone else deployed meanwhile; it is not rolled back (it is not this run's to undo)",
        )

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
    def native(self, started_by: Service, before: Service, task_definition: str, limit_s: float) -> float:
        """Wait until the service deployment that an UpdateService to ``task_definition`` started is
        SUCCESSFUL (every bake time included); its duration. ``started_by`` is UpdateService's answer,
        ``before`` the service as it was (what ran, and its service deployment, before ours)."""
        started = self.clock()
        name = short_name(task_definition)
        arn = started_by.current_deployment
        if arn == before.current_deployment:
            arn = ""  # not in the answer yet: DescribeServices names it once ECS has made it
        found: ServiceDeployment | None = None
        paused_said = ""
        while True:
            if not arn:
                service = self._look(started, limit_s, name)
                if service is not None and service.current_deployment not in ("", before.current_deployment):
                    arn = service.current_deployment
            if arn:
                found = self._ask(started, limit_s, name, partial(self.ecs.service_deployment, arn)) or found
            if found is not None:
                self._say(f"{name}: service deployment {found.status}, stage {found.stage or '-'}")
                if found.paused and found.paused != paused_said:
                    paused_said = found.paused
                    self.log(f"{name}: paused at {found.stage or '-'}: {found.paused}")
                if found.status == ServiceDeployment.DONE:
                    seconds = self.clock() - started
                    self.log(f"{name}: the service deployment succeeded after {seconds:.0f} s")
                    return seconds
                self._judge_native(found, task_definition, before.task_definition, (started, limit_s))
            if self.clock() - started >= limit_s:
                raise self._native_deadline(found, name, limit_s)
            self._pause(name)

    def _judge_native(
        self, found: ServiceDeployment, task_definition: str, previous: str, window: tuple[float, float]
    ) -> None:
        """Raise when ``found`` is over without success, or when ECS's own rollback has begun."""
        name = short_name(task_definition)
        reason = found.reason or found.status
        if found.status == ServiceDeployment.ROLLED_BACK:
            raise PutBackByEcs(f"ECS rolled the deployment of {name} back by itself: {reason}")
        if found.status == ServiceDeployment.ROLLBACK_FAILED:
            raise LeftBroken(
                f"ECS rolled the deployment of {name} back by itself, and that rollback failed: {reason}",
                hint="the service's state is unknown: look at it in the ECS console now",
            )
        if found.rolling_back:
            raise EcsRollsBack(
                f"ECS is rolling the deployment of {name} back by itself: {reason}",
                task_definition=previous,
                deployment_arn=found.arn,
            )
        if found.status == ServiceDeployment.STOPPED:
            # Stopped without a rollback (ABORT), or superseded by a newer deployment: DescribeServices
            # tells which revision the service points at now.
            service = self._look(*window, name)
            if service is None:
                return  # not seen this time: asked again at the next poll
            ours = service.current_deployment in ("", found.arn)
            if service.task_definition == task_definition and ours:
                raise RolloutFailed(f"ECS stopped the deployment of {name}: {reason}")
            if service.task_definition == previous:
                raise PutBackByEcs(
                    f"the deployment of {name} was stopped ({reason}) and the service points at "
                    f"{short_name(previous)} again"
                )
            raise Replaced(
                f"the deployment of {name} was superseded by another deploy ({reason}): the service now "
                f"runs {short_name(service.task_definition)}",
                hint="someone else deployed meanwhile; it is not rolled back (it is not this run's to undo)",
            )

    @staticmethod
    def _native_deadline(found: ServiceDeployment | None, name: str, limit_s: float) -> StageFailed:
        if found is None:
            return RolloutFailed(f"{name} was not done after {limit_s:.0f} s (no service deployment seen)")
        if found.paused:
            return Paused(
                f"{name} was not done after {limit_s:.0f} s: it is paused at {found.stage}, where "
                f"{found.paused}; it is left paused",
                hint="continue it (aws ecs continue-service-deployment) or roll it back "
                "(python -m pipeline rollback); to wait longer, raise deploy.ecs.timeout_s, timeouts.deploy",
            )
        failure = f"{name} was not done after {limit_s:.0f} s (service deployment {found.status})"
        return RolloutFailed(failure, deployment_arn=found.arn)

    def native_rollback(self, arn: str, name: str, limit_s: float) -> float:
        """While ECS rolls service deployment ``arn`` back (asked by us, or by itself): wait until it is
        ROLLBACK_SUCCESSFUL."""
        started = self.clock()
        while True:
            found = self._ask(started, limit_s, name, lambda: self.ecs.service_deployment(arn))
            if found is not None:
                self._say(f"rollback of {name}: {found.status}, stage {found.stage or '-'}")
                if found.status == ServiceDeployment.ROLLED_BACK:
                    return self.clock() - started
                if found.status in (ServiceDeployment.ROLLBACK_FAILED, ServiceDeployment.STOPPED):
                    raise StageFailed(f"ECS reports {found.status}: {found.reason}")
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
            if isinstance(exc, (RolloutFailed, PutBackByEcs, EcsRollsBack, Replaced, Paused, Interrupted)):
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
