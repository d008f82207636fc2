"""``deploy``: put the pushed image (by digest) on the deploy target and wait until it is ready.

Target ``local``: the service's container on the local engine is replaced. The old container is
stopped and kept aside until the new one answers ``/ready``; a new release that never becomes ready
is removed and the old one started again, and the stage fails. Each release that went live is
appended to ``releases.local`` in the run state, which is what ``rollback`` walks back.
Target ``ecs`` is not implemented yet and fails clearly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.config import Config
from pipeline.errors import StageFailed, UsageError
from pipeline.stages import _images
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult
from pipeline.state import RunState

RELEASE_LABEL = "io.mlops.release"


def _deployed_image(config: Config, state: RunState) -> str | None:
    return config.deploy.image or state.output("push", "image")


class LocalTarget:
    """The service as one named container on the local Docker engine."""

    def __init__(self, config: Config, log, cancel=None) -> None:
        self.config = config
        self.local = config.deploy.local
        self.log = log
        self.cancel = cancel
        self.engine = _images.connect(config)

    def _client(self):
        from pipeline.adapters.service import ServiceClient  # pylint: disable=import-outside-toplevel

        return ServiceClient(f"http://127.0.0.1:{self.local.port}")

    def _start(self, image: str, name: str) -> str:
        return self.engine.run_container(
            image,
            name=name,
            ports={5000: ("127.0.0.1", self.local.port)},
            labels={RELEASE_LABEL: self.local.container_name},
            restart_policy={"Name": "unless-stopped"},
        )

    def _wait(self, container: str) -> float:
        def alive() -> str | None:
            return self.engine.container_state(container).failure()

        return self._client().wait_ready(self.local.ready_timeout_s, alive=alive, cancel=self.cancel)

    def deploy(self, image: str) -> tuple[str | None, float]:
        """Replace the running release with ``image``; returns (previous image, seconds to ready)."""
        name = self.local.container_name
        aside = f"{name}-previous"
        running = self.engine.find_container(name)
        previous = running.image if running else None
        self.engine.remove_container(aside)
        if previous:
            self.log(f"stopping the running release ({previous}) and keeping it aside as {aside}")
            self.engine.stop_container(name)
            self.engine.rename_container(name, aside)
        container = self._start(image, name)
        try:
            ready_s = self._wait(container)
        except StageFailed as exc:
            self.log(f"new release failed: {exc}")
            for line in self.engine.container_logs(container).splitlines()[-50:]:
                self.log(f"  {line}")
            self.engine.remove_container(container)
            if previous:
                self.engine.rename_container(aside, name)
                self.engine.start_container(name)
                self._wait(name)
                raise StageFailed(
                    f"{image} never became ready ({exc.message}); rolled back to {previous}"
                ) from None
            raise
        self.engine.remove_container(aside)
        self.log(f"{image} is live on http://127.0.0.1:{self.local.port} after {ready_s:.1f} s")
        return previous, ready_s


def _releases(state: RunState, target: str) -> list[dict[str, Any]]:
    return list(state.extra.get("releases", {}).get(target, []))


def _save_releases(state: RunState, target: str, releases: list[dict[str, Any]]) -> None:
    all_releases = dict(state.extra.get("releases", {}))
    all_releases[target] = releases[-20:]
    state.set_extra("releases", all_releases)


class DeployStage(Stage):
    name = "deploy"
    needs = ("push",)
    description = "deploy the pushed digest: local engine (target local) or AWS ECS (target ecs)"

    def checks(self, config: Config) -> list[CheckResult]:
        if config.deploy.target == "local":
            return [_images.engine_check(config)]
        return [
            CheckResult(
                "deploy target",
                False,
                f"target '{config.deploy.target}' is not implemented yet",
                "use --set deploy.target=local",
            )
        ]

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        if config.deploy.image or "push" in selected or state.output("push", "image"):
            return None
        return "push", "a pushed image digest (or deploy.image)"

    def plan(self, config: Config) -> list[str]:
        local = config.deploy.local
        return [
            f"target {config.deploy.target}: replace container {local.container_name} "
            f"(127.0.0.1:{local.port}) with the pushed digest; wait for /ready; roll back if it never is"
        ]

    def run(self, ctx: StageContext) -> StageResult:
        config = ctx.config
        if config.deploy.target != "local":
            raise StageFailed(
                f"deploy target '{config.deploy.target}' is not implemented yet",
                hint="use --set deploy.target=local",
            )
        image = _deployed_image(config, ctx.state)
        if not image:
            raise StageFailed("nothing to deploy: no pushed image and no deploy.image")
        ctx.progress(f"deploying {image}")
        previous, ready_s = LocalTarget(config, ctx.log, ctx.cancel).deploy(image)
        releases = _releases(ctx.state, "local")
        releases.append(
            {
                "image": image,
                "run_id": ctx.run_id,
                "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        _save_releases(ctx.state, "local", releases)
        ctx.record(
            target="local",
            image=image,
            previous=previous,
            ready_s=round(ready_s, 2),
            url=f"http://127.0.0.1:{config.deploy.local.port}",
        )
        return StageResult(
            summary=f"{image} live on 127.0.0.1:{config.deploy.local.port} (ready in {ready_s:.1f}s)",
            artifacts={"image": image, "previous": previous},
        )

    def rollback(self, config: Config, state: RunState) -> str:
        """Start the release before the current one again; called by ``pipeline rollback``."""
        if config.deploy.target != "local":
            raise UsageError(f"rollback for target '{config.deploy.target}' is not implemented yet")
        releases = _releases(state, "local")
        if len(releases) < 2:
            raise UsageError("no previous release to roll back to: only one release has been deployed")
        current, previous = releases[-1], releases[-2]
        LocalTarget(config, lambda line: None).deploy(previous["image"])
        _save_releases(state, "local", releases[:-1])
        return f"rolled back from {current['image']} to {previous['image']}"
