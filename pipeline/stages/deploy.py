"""``deploy``: put the pushed image (by digest) on the deploy target and wait until it is ready.

Target ``local``: the service's container on the local engine is replaced. The new release is first
tried as a candidate beside the live one, so an image that cannot be pulled or never becomes ready
fails with the live release untouched; then the old container is stopped and kept aside while the
new one starts under the service's name and port, and put back if that fails or the run is
interrupted. Each release that went live is appended to ``releases.local`` in the run state, which is
what ``rollback`` walks back.

Target ``ecs`` (``_ecs.py``): a new task definition revision with the digest, a rolling update of the
service followed until ECS reports it complete, and a rollback to the previous revision when it is not.
Each revision that went live is appended to ``releases.ecs``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.adapters.docker_containers import free_port
from pipeline.adapters.ecs import short_name
from pipeline.config import Config
from pipeline.errors import Interrupted, StageFailed, UsageError
from pipeline.stages import _ecs, _images
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult, declare
from pipeline.state import RunState

RELEASE_LABEL = "io.mlops.release"
CANDIDATE_LABEL = "io.mlops.candidate"


class LocalTarget:
    """The service as one named container on the local Docker engine."""

    def __init__(
        self, config: Config, log: Callable[[str], None], cancel: threading.Event | None = None
    ) -> None:
        self.config = config
        self.local = config.deploy.local
        self.log = log
        self.cancel = cancel
        self.engine = _images.connect(config)
        self.reach = _images.container_reach(config, self.engine)
        log(self.reach.describe())

    def _start(self, image: str, name: str, port: int | None, **options: Any) -> str:
        return self.engine.run_container(
            image, name=name, ports=_images.publish(port), network=self.reach.network, **options
        )

    def _wait(self, container: str, port: int | None, cancel: threading.Event | None) -> float:
        from pipeline.adapters.service import ServiceClient

        def alive() -> str | None:
            return self.engine.container_state(container).failure()

        url = _images.service_url(self.engine, self.reach, container, port)
        self.log(f"waiting for {url}/ready")
        return ServiceClient(url).wait_ready(self.local.ready_timeout_s, alive=alive, cancel=cancel)

    def _log_tail(self, container: str) -> None:
        for line in self.engine.container_logs(container).splitlines()[-50:]:
            self.log(f"  {line}")

    def _try_candidate(self, image: str) -> None:
        """Run ``image`` beside the live release (its own name, no fixed port) until it is ready.

        An image that cannot be pulled, does not start or never becomes ready fails here, and an
        interrupt stops here, before the live release is touched.
        """
        name = f"{self.local.container_name}-candidate"
        self.engine.remove_container(name)  # left over by a run that was killed
        port = free_port() if self.reach.mode == "host" else None
        self.log(f"trying {image} as {name} first; the live release is not touched yet")
        container = self._start(image, name, port, labels={CANDIDATE_LABEL: self.local.container_name})
        try:
            ready_s = self._wait(container, port, self.cancel)
            self.log(f"{name} was ready after {ready_s:.1f} s")
        except StageFailed as exc:
            self._log_tail(container)
            raise StageFailed(
                f"{image} never became ready ({exc.message}); the live release was not touched"
            ) from None
        except Interrupted:
            raise Interrupted(f"deploy of {image} interrupted; the live release was not touched") from None
        finally:
            self.engine.remove_container(container)

    def _put_back(self, name: str, aside: str, previous: str | None) -> str:
        """The old release back under its name, checked ready on the port it was published on (without
        the run's cancel: an interrupt must still leave the service up); what happened, for the message."""
        self.engine.remove_container(name)
        if not previous:
            return "no release ran before"
        try:
            self.engine.rename_container(aside, name)
            self.engine.start_container(name)
            self._wait(name, self.engine.published_port(name, _images.SERVICE_PORT), None)
        except StageFailed as exc:
            self.log(f"putting back {previous} failed: {exc.message}")
            return f"putting back {previous} failed too ({exc.message}): look at container {name} now"
        return f"rolled back to {previous}"

    def deploy(self, image: str) -> tuple[str | None, float]:
        """Replace the live release with ``image``; returns (previous image, seconds to ready).

        The new release is first tried as a candidate beside the live one. Only then is the live one
        stopped and kept aside while the new one starts under the service's name and port; if that
        fails (the port taken, say) or the run is interrupted, the old one is put back.
        """
        self._try_candidate(image)
        name = self.local.container_name
        aside = f"{name}-previous"
        running = self.engine.find_container(name)
        previous = running.image if running else None
        self.engine.remove_container(aside)
        if previous:
            self.log(f"stopping the live release ({previous}) and keeping it aside as {aside}")
            self.engine.stop_container(name)
            self.engine.rename_container(name, aside)
        try:
            container = self._start(
                image,
                name,
                self.local.port,
                labels={RELEASE_LABEL: name},
                restart_policy={"Name": "unless-stopped"},
            )
            try:
                ready_s = self._wait(container, self.local.port, self.cancel)
            except StageFailed:
                self._log_tail(container)
                raise
        except StageFailed as exc:
            self.log(f"new release failed: {exc.message}")
            raise StageFailed(
                f"{image} failed ({exc.message}); {self._put_back(name, aside, previous)}"
            ) from None
        except Interrupted:
            raise Interrupted(
                f"deploy of {image} interrupted; {self._put_back(name, aside, previous)}"
            ) from None
        self.engine.remove_container(aside)
        self.log(f"{image} is live on http://127.0.0.1:{self.local.port} after {ready_s:.1f} s")
        return previous, ready_s


def _release(image: str, run_id: str, **extra: Any) -> dict[str, Any]:
    deployed_at = datetime.now(UTC).isoformat(timespec="seconds")
    return {"image": image, "run_id": run_id, "deployed_at": deployed_at, **extra}


class DeployStage(Stage):
    name = "deploy"
    needs = ("push",)
    description = "deploy the pushed digest: local engine (target local) or AWS ECS (target ecs)"
    outputs = declare(
        target=str,
        image=str,
        previous=str,
        ready_s=float,
        url=str,
        task_definition=str,
        previous_task_definition=str,
        stable_s=float,
        service=str,
    )

    def prerequisites(self, config: Config) -> tuple[str, ...]:
        # deploy.image names what to deploy: no push of this checkout is needed then.
        return () if config.deploy.image else self.needs

    def validate(self, config: Config) -> None:
        if config.deploy.target == "ecs":
            _ecs.validate(config)

    def checks(self, config: Config) -> list[CheckResult]:
        if config.deploy.target == "ecs":
            return _ecs.checks(config)
        return [_images.engine_check(config), _images.reach_check(config)]

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        if config.deploy.image or "push" in selected or state.output("push", "image"):
            return None
        return "push", "a pushed image digest (or deploy.image)"

    def plan(self, config: Config) -> list[str]:
        if config.deploy.target == "ecs":
            ecs = config.deploy.ecs
            return [
                f"target ecs: register a revision of {ecs.cluster}/{ecs.service}'s task definition with "
                f"container {ecs.container} on the pushed digest; update the service; wait up to "
                f"{ecs.timeout_s:g} s for the rollout" + ("; roll back if it fails" if ecs.rollback else "")
            ]
        local = config.deploy.local
        return [
            f"target local: replace container {local.container_name} "
            f"(127.0.0.1:{local.port}) with the pushed digest; wait for /ready; roll back if it never is"
        ]

    def run(self, ctx: StageContext) -> StageResult:
        image = ctx.config.deploy.image or ctx.read("push", "image")
        if not image:
            raise StageFailed("nothing to deploy: no pushed image and no deploy.image")
        ctx.progress(f"deploying {image} ({ctx.config.deploy.target})")
        if ctx.config.deploy.target == "ecs":
            return self._run_ecs(ctx, image)
        return self._run_local(ctx, image)

    @staticmethod
    def _run_local(ctx: StageContext, image: str) -> StageResult:
        local = ctx.config.deploy.local
        previous, ready_s = LocalTarget(ctx.config, ctx.log, ctx.cancel).deploy(image)
        releases = ctx.state.releases("local")
        releases.append(_release(image, ctx.run_id))
        ctx.state.set_releases("local", releases)
        url = f"http://127.0.0.1:{local.port}"
        ctx.record(target="local", image=image, previous=previous, ready_s=round(ready_s, 2), url=url)
        return StageResult(
            summary=f"{image} live on 127.0.0.1:{local.port} (ready in {ready_s:.1f}s)",
            artifacts={"image": image, "previous": previous},
        )

    @staticmethod
    def _run_ecs(ctx: StageContext, image: str) -> StageResult:
        ecs = ctx.config.deploy.ecs
        release = _ecs.EcsTarget(ctx.config, ctx.log, ctx.cancel, remaining_s=ctx.remaining_s).deploy(image)
        if not release.unchanged:
            releases = ctx.state.releases("ecs")
            releases.append(_release(image, ctx.run_id, task_definition=release.task_definition))
            ctx.state.set_releases("ecs", releases)
        ctx.record(
            target="ecs",
            image=image,
            task_definition=release.task_definition,
            previous_task_definition=release.previous,
            stable_s=round(release.seconds, 1),
            service=f"{ecs.cluster}/{ecs.service}",
        )
        what = "already live" if release.unchanged else f"live as {short_name(release.task_definition)}"
        return StageResult(
            summary=f"{image} {what} on {ecs.cluster}/{ecs.service} (stable after {release.seconds:.0f}s)",
            artifacts={"task_definition": release.task_definition, "previous": release.previous},
        )

    def rollback(self, config: Config, state: RunState) -> str:
        """Put the release before the current one back; called by ``pipeline rollback``."""
        target = config.deploy.target
        releases = state.releases(target)
        if len(releases) < 2:
            raise UsageError(
                f"no previous release to roll back to: target '{target}' has only one release recorded"
            )
        current, previous = releases[-1], releases[-2]
        if target == "ecs":
            self.validate(config)
            _ecs.EcsTarget(config, lambda line: None).roll_back_to(previous["task_definition"])
            state.set_releases(target, releases[:-1])
            return (
                f"rolled back from {short_name(current['task_definition'])} ({current['image']}) "
                f"to {short_name(previous['task_definition'])} ({previous['image']})"
            )
        LocalTarget(config, lambda line: None).deploy(previous["image"])
        state.set_releases(target, releases[:-1])
        return f"rolled back from {current['image']} to {previous['image']}"
