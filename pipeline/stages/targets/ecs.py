"""Deploy target ``ecs``: a new task definition revision with the pushed digest, the service updated to it,
and a wait that really waits (``ecs_watch``).

``deploy`` refuses, before anything is registered, a service ECS does not deploy itself (``CODE_DEPLOY``,
``EXTERNAL``), one with a desired count of 0 (unless ``deploy.ecs.allow_zero_desired``), a strategy whose
bake times do not fit in ``timeouts.deploy`` (exit 2, see :func:`time_budget`), and a running revision with
fields this botocore does not know (they would be dropped from the copy). It registers a
copy of the running revision that differs only in the image of ``deploy.ecs.container`` (and of
``deploy.ecs.extra_containers``, which run the same image) and in two tags of
the pipeline's own (the service it was made for, the revision that ran before), points the service at it
and follows the rollout: rolling deployments through DescribeServices, ECS's blue/green, linear and canary
strategies through their service deployment (bake time included). With ``deploy.ecs.verify_url`` it then
asks the live service for ``/api/v1/model`` until it reports the model this run built.

When the rollout fails or is not done in time, and ECS has not already put the previous revision back,
``deploy.ecs.rollback`` puts it back (``StopServiceDeployment`` for the native strategies) and waits for
that too, up to ``deploy.ecs.rollback_timeout_s``: a clean rollback fails the stage (exit 1), a rollback
that failed or could not be confirmed is :class:`~pipeline.errors.LeftBroken` (exit 4). When ECS's own
rollback has begun, that rollback is waited for in the same way. A revision registered for an update that
ECS refused is deregistered again; after an answer that does not say (a 5xx, a timeout) the service is read
first, and a revision it already points at is followed, not deregistered.

``roll_back`` (``pipeline rollback``) acts only on the service of this target's identity: when it still runs
the last release recorded for it, or a revision whose tags say the pipeline deployed it over that release
(a deploy that failed or was cut short). Without a local record (a fresh Jenkins agent) it reads the service's
revision's tags and goes back to the revision they name, if the pipeline made it for this very service. A
revision deregistered since (INACTIVE: ECS will not point a service at it) is registered again as a copy.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Sequence

from pipeline.adapters.ecs import CREDENTIALS_HINT, EcsClient
from pipeline.adapters.ecs_model import (
    CONTAINER_HINT,
    PREVIOUS_TAG,
    SERVICE_TAG,
    Service,
    registration,
    short_name,
    with_image,
)
from pipeline.config import Config
from pipeline.errors import (
    ConfigError,
    LeftBroken,
    PipelineError,
    ServiceBusy,
    StageFailed,
    UsageError,
)
from pipeline.stages.base import CheckResult
from pipeline.stages.targets.base import Deployed, DeployTarget, Log, Release, RolledBack
from pipeline.stages.targets.ecs_watch import (
    EcsRollsBack,
    Paused,
    PutBackByEcs,
    Replaced,
    RolloutFailed,
    Watch,
)
from pipeline.state import utcnow

REQUIRED_KEYS = ("deploy.ecs.cluster", "deploy.ecs.service", "deploy.ecs.region", "deploy.ecs.container")
_MARGIN_S = 5.0  # left to the runner to record the result before the stage's own timeout
_NATIVE_PERMISSIONS = "ecs:ListServiceDeployments, ecs:DescribeServiceDeployments, ecs:StopServiceDeployment"
UNKNOWN_FIELDS_HINT = (
    "upgrade boto3 and botocore (requirements/base.txt) to a release that knows them; deploying now would "
    "register a revision without them"
)


def client(config: Config) -> EcsClient:
    ecs = config.deploy.ecs
    return EcsClient(
        cluster=ecs.cluster,
        service=ecs.service,
        region=ecs.region,
        endpoint_url=ecs.endpoint_url,
        credentials=config.secrets.boto3_credentials(),
    )


def containers(config: Config) -> tuple[str, ...]:
    """The containers that get the image: ``deploy.ecs.container``, then ``deploy.ecs.extra_containers``."""
    ecs = config.deploy.ecs
    return (ecs.container, *(name for name in ecs.extra_containers if name != ecs.container))


def refusal(service: Service, config: Config) -> str | None:
    """Why ``deploy`` would refuse this service before registering anything, or None."""
    ecs = config.deploy.ecs
    if service.controller != "ECS":
        return (
            f"service {ecs.service} uses the {service.controller} deployment controller: its deployments "
            "are made by CodeDeploy or another tool, not by UpdateService; deploy it there, or give the "
            "service the ECS controller"
        )
    if service.desired == 0 and not ecs.allow_zero_desired:
        return (
            f"service {ecs.service} has a desired count of 0: no task would run the new release, so a deploy "
            "could not be verified; scale it up, or set deploy.ecs.allow_zero_desired=true"
        )
    return None


def time_budget(config: Config, service: Service | None) -> tuple[float, str]:
    """Seconds a deploy to ``service`` may need inside ``timeouts.deploy``, and the sum in words: the
    rollout's wait (``deploy.ecs.timeout_s``) plus the strategy's bake times (a native deployment cannot
    succeed before they are over), the verification's and the rollback's own waits, and the margins."""
    ecs = config.deploy.ecs
    parts = [(ecs.timeout_s, "rollout (deploy.ecs.timeout_s)")]
    if service is not None and service.bake_s:
        parts.append((service.bake_s, f"bake ({service.strategy.describe()})"))
    if ecs.verify_url:
        parts.append((ecs.verify_timeout_s, "verify (deploy.ecs.verify_timeout_s)"))
    if ecs.rollback:
        parts.append((ecs.rollback_timeout_s, "rollback (deploy.ecs.rollback_timeout_s)"))
    parts.append((2 * _MARGIN_S, "margin"))
    needed = sum(seconds for seconds, _ in parts)
    return needed, " + ".join(f"{seconds:g} s {what}" for seconds, what in parts) + f" = {needed:g} s"


def budget_problem(config: Config, service: Service) -> ConfigError | None:
    """A native strategy whose bake times, with the waits around them, do not fit in ``timeouts.deploy``:
    the deployment could never be seen to succeed, and a healthy one would be rolled back."""
    needed, text = time_budget(config, service)
    if not service.native or needed <= config.timeouts.deploy:
        return None
    at_least = math.ceil(needed)
    return ConfigError(
        f"is {config.timeouts.deploy:g} s, but a deploy to {config.deploy.ecs.service} "
        f"({service.strategy.name}) needs {text}",
        key="timeouts.deploy",
        source=config.sources.get("timeouts.deploy"),
        hint=f"raise timeouts.deploy to at least {at_least} (--set timeouts.deploy={at_least}), "
        "or shorten the strategy's bake times",
    )


class EcsTarget(DeployTarget):
    """The service ``deploy.ecs.service`` in ``deploy.ecs.cluster`` of ``deploy.ecs.region``."""

    name = "ecs"

    def __init__(
        self,
        config: Config,
        log: Log,
        cancel: threading.Event | None = None,
        remaining_s: Callable[[], float] | None = None,
        ecs_client: EcsClient | None = None,
    ) -> None:
        """``ecs_client``: tests hand in one around a botocore Stubber."""
        super().__init__(config, log, cancel, remaining_s)
        self.settings = config.deploy.ecs
        self.ecs = ecs_client or client(config)
        self.watch = Watch(
            self.ecs, log, self.cancel, self.settings.poll_interval_s, fail_fast=self.settings.fail_fast
        )

    # -- settings, checks, plan ------------------------------------------------------------------
    @classmethod
    def validate(cls, config: Config) -> None:
        """Refuse (exit 2) an ``ecs`` deploy without cluster, service, region or container, or whose stage
        timeout leaves no room for the rollback's own wait."""
        for key in REQUIRED_KEYS:
            if not str(config.get(key)).strip():
                raise ConfigError(
                    "is empty but deploy.target is 'ecs'",
                    key=key,
                    source=config.sources.get(key),
                    hint=f"set it in pipeline.toml or with --set {key}=...",
                )
        ecs = config.deploy.ecs
        if ecs.rollback and config.timeouts.deploy < ecs.rollback_timeout_s + 2 * _MARGIN_S:
            raise ConfigError(
                f"is {config.timeouts.deploy:g} s, which leaves no room for a rollback's wait "
                f"(deploy.ecs.rollback_timeout_s = {ecs.rollback_timeout_s:g} s)",
                key="timeouts.deploy",
                source=config.sources.get("timeouts.deploy"),
                hint=f"raise timeouts.deploy to at least {ecs.rollback_timeout_s + 2 * _MARGIN_S:g} "
                f"(deploy.ecs.rollback_timeout_s + {2 * _MARGIN_S:g} s); a rolling rollout waits for what is "
                "left, up to deploy.ecs.timeout_s",
            )

    @classmethod
    def live_url(cls, config: Config) -> str | None:
        return config.deploy.ecs.verify_url or None

    @classmethod
    def identity(cls, config: Config) -> str:
        ecs = config.deploy.ecs
        return f"ecs:{ecs.region}/{ecs.cluster}/{ecs.service}"

    @classmethod
    def plan(cls, config: Config) -> list[str]:
        ecs = config.deploy.ecs
        verify = f"; then ask {ecs.verify_url}/api/v1/model for the model built" if ecs.verify_url else ""
        rollback = f"; roll back if it fails (up to {ecs.rollback_timeout_s:g} s)" if ecs.rollback else ""
        keep = ecs.keep_revisions
        clean_up = f"; then deregister revisions older than the newest {keep}" if keep else ""
        what = (
            f"target ecs: register a revision of {ecs.cluster}/{ecs.service}'s task definition with "
            f"container {', '.join(containers(config))} on the pushed digest; update the service; wait up to "
            f"{ecs.timeout_s:g} s for the rollout (plus the bake time of a blue/green, linear or canary "
            f"strategy){verify}{rollback}{clean_up}"
        )
        return [what, *cls._diff(config)]

    @classmethod
    def _diff(cls, config: Config) -> list[str]:
        """What the new revision would change, read from the service as it is now (the dry run's diff,
        like ecspresso's ``diff``); a line saying why not when the service cannot be read."""
        ecs = config.deploy.ecs
        new = config.deploy.image or "the digest push gives"
        try:
            cls.validate(config)
            ecs_client = client(config)
            problem = ecs_client.credentials_problem()
            if problem:
                return [f"the change is not shown: {problem}"]
            service = ecs_client.describe_service()
            current = ecs_client.task_definition(service.task_definition)
        except PipelineError as exc:
            return [f"the change is not shown: {exc.message}"]
        running = short_name(service.task_definition)
        olds = {name: current.image(name) for name in containers(config)}
        absent = [name for name, old in olds.items() if old is None]
        if absent:
            return [f"{running} has no container {', '.join(absent)}: the deploy would stop there"]
        if all(old == new for old in olds.values()):
            then = "force a new deployment of it" if ecs.force_new_deployment else "register nothing"
            return [f"{running} already runs {new}: {then}"]
        changes = "; ".join(
            f"containerDefinitions[{name}].image {old} -> {new}" for name, old in olds.items() if old != new
        )
        return [
            f"{running} -> a new revision of {running.rpartition(':')[0]}, changed: {changes}; "
            f"tags {SERVICE_TAG} = {service.arn}, {PREVIOUS_TAG} = {service.task_definition}"
        ]

    @classmethod
    def checks(cls, config: Config) -> list[CheckResult]:
        """``doctor`` and preflight: settings, credentials and whose they are, the service, its deployment
        controller and strategy, its task definition and container."""
        ecs = config.deploy.ecs
        try:
            cls.validate(config)
        except ConfigError as exc:
            return [CheckResult("ecs settings", False, exc.message, exc.hint or "")]
        ecs_client = client(config)
        problem = ecs_client.credentials_problem()
        if problem:
            return [CheckResult("aws credentials", False, problem, CREDENTIALS_HINT)]
        where = f"region {ecs.region}" + (f", endpoint {ecs.endpoint_url}" if ecs.endpoint_url else "")
        try:
            rows = [CheckResult("aws credentials", True, f"{ecs_client.caller()}; {where}")]
        except PipelineError as exc:
            return [CheckResult("aws credentials", False, exc.message, exc.hint or "")]
        try:
            service = ecs_client.describe_service()
        except PipelineError as exc:
            return [*rows, CheckResult("ecs service", False, exc.message, exc.hint or "")]
        rows.append(
            CheckResult(
                "ecs service",
                True,
                f"{ecs.cluster}/{ecs.service}: {service.status}, "
                f"{service.running}/{service.desired} running, "
                f"task definition {short_name(service.task_definition)}",
            )
        )
        refused = refusal(service, config)
        rows.append(CheckResult("ecs deployment", refused is None, refused or service.describe_strategy()))
        rows += cls._native_checks(ecs_client, service, config)
        try:
            current = ecs_client.task_definition(service.task_definition)
        except PipelineError as exc:
            return [*rows, CheckResult("ecs task definition", False, exc.message, exc.hint or "")]
        missing = [why for name in containers(config) if (why := current.missing(name))]
        detail = "; ".join(missing) or ", ".join(
            f"container {name} runs {current.image(name)}" for name in containers(config)
        )
        rows.append(CheckResult("ecs task definition", not missing, detail, CONTAINER_HINT))
        if current.unknown:
            unknown = f"fields this botocore does not know: {', '.join(current.unknown)}"
            rows.append(CheckResult("ecs task definition fields", False, unknown, UNKNOWN_FIELDS_HINT))
        return rows

    @staticmethod
    def _native_checks(ecs_client: EcsClient, service: Service, config: Config) -> list[CheckResult]:
        """The time budget; for a native strategy, the service deployment calls the wait relies on."""
        problem = budget_problem(config, service)
        _, text = time_budget(config, service)
        detail = (
            problem.message if problem else f"{text}, inside timeouts.deploy = {config.timeouts.deploy:g} s"
        )
        rows = [
            CheckResult(
                "ecs time budget",
                problem is None,
                detail,
                problem.hint or "" if problem else "",
                setting="timeouts.deploy",
            )
        ]
        if not service.native:
            return rows
        try:
            ecs_client.probe_service_deployments()
        except PipelineError as exc:
            hint = f"the AWS identity needs {_NATIVE_PERMISSIONS} to follow and roll back its deployments"
            return [*rows, CheckResult("ecs service deployments", False, exc.message, hint)]
        rows.append(CheckResult("ecs service deployments", True, "ListServiceDeployments answers"))
        if service.strategy.pause_stages:
            rows.append(
                CheckResult(
                    "ecs pause hooks",
                    True,
                    f"PAUSE hooks at {', '.join(service.strategy.pause_stages)}: a deploy waits there for "
                    "ContinueServiceDeployment until its deadline, then leaves it paused (exit 1)",
                    required=False,
                )
            )
        return rows

    # -- deploy ----------------------------------------------------------------------------------
    def deploy(
        self, image: str, run_id: str, model_version: str | None = None, recorded: Sequence[Release] = ()
    ) -> Deployed:
        """Roll the service onto ``image``; raises :class:`StageFailed` (after rolling back) when it fails,
        :class:`LeftBroken` when the rollback failed or could not be confirmed."""
        service = self.ecs.describe_service()
        self.watch.mark_seen(service)
        refused = refusal(service, self.config)
        if refused:
            raise StageFailed(refused)
        problem = budget_problem(self.config, service)
        if problem:
            raise problem
        previous = service.task_definition
        current = self.ecs.task_definition(previous)
        before = current.image(self.settings.container)
        release = Release(image, before, previous, previous, run_id, utcnow())
        if all(current.image(name) == image for name in containers(self.config)):
            where = f"already live on {self.settings.cluster}/{self.settings.service}"
            return Deployed(release, self._same_image(service, image), unchanged=True, where=where)
        if current.unknown:
            raise StageFailed(
                f"{short_name(previous)} has fields this botocore does not know, which a copy would lose: "
                f"{', '.join(current.unknown)}",
                hint=UNKNOWN_FIELDS_HINT,
            )
        self._image_exists(image)
        own_tags = {SERVICE_TAG: service.arn, PREVIOUS_TAG: previous}
        arguments = with_image(
            current, containers(self.config), image, accepted=self.ecs.register_fields(), own_tags=own_tags
        )
        new = self.ecs.register(arguments)
        release = Release(image, before, new, previous, run_id, utcnow())
        self.log(f"registered {short_name(new)} ({', '.join(containers(self.config))} = {image})")
        updated = self._update_or_deregister(new, previous)
        self.log(
            f"service {self.settings.service}: {short_name(previous)} -> {short_name(new)} "
            f"({service.describe_strategy()})"
        )
        try:
            seconds = self._follow(updated, service, new, self.deploy_limit(service))
            self._verify(model_version, new)
        except RolloutFailed as failure:
            raise self._after_failure(failure, service, previous, new) from None
        except EcsRollsBack as failure:
            raise self._await_ecs_rollback(failure) from None
        except (PutBackByEcs, Replaced, Paused) as failure:
            raise failure from None
        self._clean_up(service, new, recorded)
        where = f"live as {short_name(new)} on {self.settings.cluster}/{self.settings.service}"
        return Deployed(release, seconds, where=where)

    def _same_image(self, service: Service, image: str) -> float:
        """The service already runs ``image``: nothing is registered. With
        ``deploy.ecs.force_new_deployment`` its tasks are replaced (new secrets, new tasks) and followed
        like any deployment; a failure then has nothing to roll back to (exit 1)."""
        running = service.task_definition
        if not self.settings.force_new_deployment:
            self.log(f"{short_name(running)} already runs {image}; waiting for the service to be stable")
            primary = self._primary_id(service, running)
            return self.watch.rolling(primary, running, running, self.deploy_limit(service))
        self.log(f"{short_name(running)} already runs {image}; forcing a new deployment of it")
        updated = self.ecs.update_service(running, force=True)
        try:
            return self._follow(updated, service, running, self.deploy_limit(service))
        except RolloutFailed as failure:
            raise StageFailed(
                f"{failure.message}; not rolled back: the revision before is the same one",
                hint="look at the service events in the deploy log",
            ) from None
        except EcsRollsBack as failure:
            raise self._await_ecs_rollback(failure) from None

    def _clean_up(self, before: Service, new: str, recorded: Sequence[Release]) -> None:
        """With ``deploy.ecs.keep_revisions`` = N: deregister the family's ACTIVE revisions older than the
        newest N, never one that a deployment of the service or a recorded release names. A failure here
        is logged: the deploy itself succeeded."""
        keep = self.settings.keep_revisions
        if keep <= 0:
            return
        family = short_name(new).rpartition(":")[0]
        named = {new, before.task_definition, *(d.task_definition for d in before.deployments)}
        named |= {ref for release in recorded for ref in (release.ref, release.previous_ref)}
        try:
            old = [arn for arn in self.ecs.revisions(family)[keep:] if arn not in named]
            for arn in old:
                self.ecs.deregister(arn)
        except PipelineError as exc:
            self.log(f"old revisions of {family} are not cleaned up: {exc.message}")
            return
        if old:
            self.log(
                f"deregistered {len(old)} old revision(s) of {family}, keeping the newest {keep} and every "
                f"one a deployment or a recorded release names: {', '.join(short_name(arn) for arn in old)}"
            )

    def _image_exists(self, image: str) -> None:
        """Before anything is registered: refuse an image its registry does not hold (a mistyped
        ``deploy.image``), asked over the registry's API (HEAD of the manifest by digest; ECR answers it
        too). A registry this machine cannot ask (unreachable, denied) is logged, not fatal: the tasks'
        execution role may reach what this machine cannot."""
        from pipeline.adapters.registry import RegistryClient, registry_base_url
        from pipeline.stages import _images

        name, _, digest = image.partition("@")
        host, _, repository = name.partition("/")
        if not repository or not ("." in host or ":" in host or host == "localhost"):
            host, repository = "docker.io", name  # Docker Hub's short form: org/repo or repo
        try:
            same = registry_base_url(host) == registry_base_url(self.config.registry.url)
            username, password = (_images.credentials(self.config) if same else None) or (None, None)
            client_ = RegistryClient(
                host, username=username, password=password, timeout=self.config.registry.timeout_s
            )
            found = client_.manifest_digest(repository, digest)
        except PipelineError as exc:
            self.log(f"could not check that {image} is in its registry ({exc.message}); going on")
            return
        if found is None:
            raise StageFailed(
                f"{image} is not in its registry: {registry_base_url(host)} has no manifest {digest} in "
                f"{repository}; nothing was changed",
                hint="check deploy.image: a repo@sha256:... digest pushed to that repository",
            )

    def _follow(self, updated: Service, before: Service, task_definition: str, limit_s: float) -> float:
        """Wait for the deployment an update to ``task_definition`` started (``updated``: the update's
        answer, ``before``: the service before it)."""
        if before.native:
            return self.watch.native(updated, before, task_definition, limit_s)
        primary = self._primary_id(updated, task_definition)
        return self.watch.rolling(primary, task_definition, before.task_definition, limit_s)

    def _update_or_deregister(self, new: str, previous: str) -> Service:
        """UpdateService to ``new``. A definite refusal deregisters ``new`` again; after an answer that
        does not say whether the update was made (a 5xx, throttling, a timeout: botocore's retries spent),
        the service is read first: one that points at ``new`` already is followed, not undone."""
        try:
            return self.ecs.update_service(new)
        except PipelineError as exc:
            if isinstance(exc, ServiceBusy):
                try:
                    now = self.ecs.describe_service()
                except PipelineError as also:
                    raise LeftBroken(
                        f"{exc.message}; whether the service points at {short_name(new)} is unknown "
                        f"(DescribeServices failed too: {also.message}); it is left registered",
                        hint="look at the service in the ECS console now",
                    ) from None
                if now.task_definition == new:
                    self.log(f"{exc.message}; but the service points at {short_name(new)}: following it")
                    return now
                if now.task_definition != previous:
                    raise LeftBroken(
                        f"{exc.message}; the service now points at {short_name(now.task_definition)}, "
                        f"neither {short_name(previous)} nor {short_name(new)}",
                        hint="someone else deployed meanwhile: look at the service in the ECS console",
                    ) from None
            try:
                self.ecs.deregister(new)
                left = f"{short_name(new)} was deregistered again"
            except PipelineError as also:
                left = f"{short_name(new)} is left registered (deregistering it failed: {also.message})"
            raise type(exc)(f"{exc.message}; {left}", hint=exc.hint) from None

    def _verify(self, model_version: str | None, new: str) -> None:
        """With ``deploy.ecs.verify_url``: wait until the live service reports the model this run built."""
        url = self.settings.verify_url
        if not url:
            return
        from pipeline.adapters.service import ServiceClient

        what = f"model {model_version}" if model_version else "its model (the version is not known here)"
        self.log(f"asking {url}/api/v1/model until it reports {what}")
        limit = self._limit(self.settings.verify_timeout_s, reserve=self._rollback_reserve())
        try:
            seconds = ServiceClient(url, trust_env=True).wait_model(model_version, limit, cancel=self.cancel)
        except StageFailed as exc:
            raise RolloutFailed(f"{short_name(new)} is stable, but {exc.message}") from None
        self.log(f"{url} reports {what} after {seconds:.0f} s")

    def _after_failure(
        self, failure: RolloutFailed, service: Service, previous: str, new: str
    ) -> StageFailed:
        if not self.settings.rollback:
            return StageFailed(
                f"{failure.message}; the service stays on {short_name(new)} (deploy.ecs.rollback is off)",
                hint="python -m pipeline rollback",
            )
        self.log(f"{failure.message}; rolling back to {short_name(previous)}")
        try:
            if service.native and failure.deployment_arn:
                self.ecs.stop_service_deployment(failure.deployment_arn)
                self.watch.native_rollback(failure.deployment_arn, short_name(new), self.rollback_limit())
            else:
                self._follow(self._point_at(previous), service, previous, self.rollback_limit())
        except StageFailed as exc:
            return LeftBroken(
                f"{failure.message}; the rollback to {short_name(previous)} failed too: {exc.message}",
                hint="the service's state is unknown: look at it in the ECS console now",
            )
        return StageFailed(f"{failure.message}; rolled back to {short_name(previous)}")

    def _await_ecs_rollback(self, failure: EcsRollsBack) -> StageFailed:
        """ECS's own rollback has begun: it is over only once ECS says so (or exit 4)."""
        name = short_name(failure.task_definition)
        self.log(f"{failure.message}; waiting for ECS's rollback")
        try:
            if failure.deployment_arn:
                seconds = self.watch.native_rollback(failure.deployment_arn, name, self.rollback_limit())
            else:
                seconds = self.watch.rolling(
                    failure.deployment_id,
                    failure.task_definition,
                    failure.task_definition,
                    self.rollback_limit(),
                )
        except StageFailed as exc:
            return LeftBroken(
                f"{failure.message}, and that rollback did not end well: {exc.message}",
                hint="the service's state is unknown: look at it in the ECS console now",
            )
        return PutBackByEcs(
            f"{failure.message}: back on {name} after {seconds:.0f} s",
            hint="see the service events in the deploy log",
        )

    # -- rollback --------------------------------------------------------------------------------
    def roll_back(self, releases: list[Release]) -> RolledBack:
        service = self.ecs.describe_service()
        self.watch.mark_seen(service)
        identity = self.identity(self.config)
        running = service.task_definition
        if releases and running == releases[-1].ref:
            target, remaining = releases[-1].previous_ref, releases[:-1]
        else:
            target, remaining = self._unrecorded(service, releases), releases
        if not target or target == running:
            raise UsageError(f"{identity}: no earlier revision is known to roll back to")
        usable = self._usable(target)
        if usable != target and remaining and remaining[-1].ref == target:
            remaining = [*remaining[:-1], dataclasses.replace(remaining[-1], ref=usable)]
        self.log(f"rolling {identity} back from {short_name(running)} to {short_name(usable)}")
        try:
            updated = self.ecs.update_service(usable)
        except PipelineError as exc:
            if isinstance(exc, ServiceBusy):
                raise LeftBroken(
                    f"ECS did not say whether {identity} now points at {short_name(usable)}: {exc.message}",
                    hint="look at the service in the ECS console, then run the rollback again",
                ) from None
            raise StageFailed(
                f"ECS refused to point {identity} at {short_name(usable)}: {exc.message}; nothing changed, "
                f"it still runs {short_name(running)}",
                hint=exc.hint,
            ) from None
        self.log(f"service {self.settings.service}: back to {short_name(usable)}")
        try:
            seconds = self._follow(updated, service, usable, self.rollback_limit())
        except StageFailed as exc:
            raise LeftBroken(
                f"the rollback of {identity} to {short_name(usable)} failed: {exc.message}",
                hint="the service's state is unknown: look at it in the ECS console now",
            ) from None
        return RolledBack(
            f"rolled back {identity} from {short_name(running)} to {short_name(usable)} "
            f"(stable after {seconds:.0f} s)",
            remaining,
        )

    def _unrecorded(self, service: Service, releases: list[Release]) -> str:
        """The revision to go back to when the service does not run the last recorded release: the one
        its revision's tags name, if the pipeline made that revision for this service (over the last
        recorded release, when there is one: a deploy that failed or was cut short is not recorded)."""
        identity = self.identity(self.config)
        running = service.task_definition
        current = self.ecs.task_definition(running)
        made_for, before = current.tag(SERVICE_TAG), current.tag(PREVIOUS_TAG)
        ours = made_for == service.arn and bool(before)
        if releases:
            last = releases[-1]
            if ours and before == last.ref:
                self.log(
                    f"{short_name(running)} was deployed over {short_name(last.ref)}, the last release "
                    "recorded here, by a deploy that failed or was cut short"
                )
                return last.ref
            raise UsageError(
                f"{identity} runs {short_name(running)}, not {short_name(last.ref)}, the last release "
                "this checkout deployed there: someone else deployed since, so it is not rolled back",
                hint="deploy the release you want with --set deploy.image=...",
            )
        if not ours:
            raise UsageError(
                f"{identity} runs {short_name(running)}, which this pipeline did not deploy to it "
                "(no release in this checkout's state, and the revision has no mlops-pipeline tags "
                "naming this service): nothing of ours to roll back",
                hint="deploy the release you want with --set deploy.image=...",
            )
        self.log(
            f"no release recorded here; {short_name(running)}'s tags name {short_name(str(before))} "
            "as the revision before it"
        )
        return str(before)

    def _usable(self, task_definition: str) -> str:
        """``task_definition``, or a new copy of it when it was deregistered (INACTIVE): ECS refuses to
        point a service at an INACTIVE revision (API Reference, DeregisterTaskDefinition)."""
        definition = self.ecs.task_definition(task_definition)
        if definition.active:
            return task_definition
        if definition.unknown:
            raise StageFailed(
                f"{short_name(task_definition)} is INACTIVE, and a copy of it would lose the fields this "
                f"botocore does not know: {', '.join(definition.unknown)}; nothing changed",
                hint=UNKNOWN_FIELDS_HINT,
            )
        copy = self.ecs.register(registration(definition, accepted=self.ecs.register_fields(), own_tags={}))
        self.log(
            f"{short_name(task_definition)} is INACTIVE (deregistered), and ECS will not point a service at "
            f"it: registered an identical copy, {short_name(copy)}"
        )
        return copy

    def _point_at(self, task_definition: str) -> Service:
        updated = self.ecs.update_service(task_definition)
        self.log(f"service {self.settings.service}: back to {short_name(task_definition)}")
        return updated

    # -- limits ----------------------------------------------------------------------------------
    def _rollback_reserve(self) -> float:
        return self.settings.rollback_timeout_s if self.settings.rollback else 0.0

    def deploy_limit(self, service: Service) -> float:
        """The rollout's wait: ``timeout_s`` plus the strategy's bake time, leaving the rollback its own."""
        wanted = self.settings.timeout_s + service.bake_s
        return self._limit(wanted, reserve=self._rollback_reserve())

    def rollback_limit(self) -> float:
        return self._limit(self.settings.rollback_timeout_s, reserve=0.0)

    def _limit(self, wanted: float, reserve: float) -> float:
        if self.remaining_s is None:
            return wanted
        return max(1.0, min(wanted, self.remaining_s() - reserve - _MARGIN_S))

    @staticmethod
    def _primary_id(service: Service, task_definition: str) -> str:
        """The deployment ECS started for ``task_definition``: the PRIMARY one in UpdateService's answer."""
        primary = service.primary
        if primary is None:
            raise StageFailed(f"ECS answered without a PRIMARY deployment for {short_name(task_definition)}")
        return primary.id
