"""``deploy``: put the pushed image (by digest) on the deploy target and wait until it is ready.

The target is chosen by ``deploy.target`` from ``pipeline.stages.targets.TARGETS``: ``local`` (the
service's container on the local engine) or ``ecs`` (a service on AWS ECS). Each release that went live
is appended to the releases of the target's identity (``ecs:REGION/CLUSTER/SERVICE``, ``local:CONTAINER``),
with what ran before it; ``rollback`` walks them back on that target only. The releases are the run state's,
or the shared store's when there is one (:mod:`pipeline.releases`); then a deploy or rollback also holds the
target's lease (:mod:`pipeline.deploy_lease`), so two agents never change one target at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pipeline import deploy_lease
from pipeline.config import Config
from pipeline.errors import StageFailed, StoreUnavailable
from pipeline.outputs import DeployOutputs, PushOutputs
from pipeline.releases import Releases, after_rollback
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult
from pipeline.stages.targets import Release, target_class
from pipeline.state import RunState, utcnow


class DeployStage(Stage):
    name = "deploy"
    needs = ("push",)
    description = "deploy the pushed digest: local engine (target local) or AWS ECS (target ecs)"
    outputs = DeployOutputs

    def prerequisites(self, config: Config) -> tuple[str, ...]:
        # deploy.image names what to deploy: no push of this checkout is needed then.
        return () if config.deploy.image else self.needs

    def validate(self, config: Config) -> None:
        target_class(config).validate(config)

    def checks(self, config: Config) -> list[CheckResult]:
        return target_class(config).checks(config)

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        if config.deploy.image or "push" in selected or state.outputs(PushOutputs):
            return None
        return "push", "a pushed image digest (or deploy.image)"

    def plan(self, config: Config) -> list[str]:
        return target_class(config).plan(config)

    def run(self, ctx: StageContext) -> StageResult:
        config = ctx.config
        pushed = None if config.deploy.image else ctx.read(PushOutputs)
        image = config.deploy.image or (pushed.image if pushed else "")
        if not image:
            raise StageFailed("nothing to deploy: no pushed image and no deploy.image")
        model_version = pushed.model_version if pushed else None
        kind = target_class(config)
        identity = kind.identity(config)
        ctx.progress(f"deploying {image} to {identity}")
        target = kind(config, ctx.log, ctx.cancel, ctx.remaining_s)
        book = Releases.of(config, ctx.state)
        ttl_s = config.store.lease_ttl_s
        with deploy_lease.hold(book.store, identity, run_id=ctx.run_id, ttl_s=ttl_s, log=ctx.log):
            recorded = [Release.from_state(raw, identity) for raw in book.read(identity)]
            done = target.deploy(image, ctx.run_id, model_version, recorded)
            # The model's metrics go with the release: the next candidate's promotion gate compares with them.
            release = dataclasses.replace(done.release, model=pushed.model if pushed else None)
            if not done.unchanged:
                _record(book, identity, release)
        ctx.record(
            DeployOutputs(
                target=kind.name,
                identity=identity,
                image=image,
                previous=release.previous,
                ready_s=round(done.seconds, 1),
                url=done.url or None,
                ref=release.ref or None,
                previous_ref=release.previous_ref or None,
            )
        )
        return StageResult(
            summary=f"{image} {done.where} (ready after {done.seconds:.1f} s)",
            artifacts={"image": image, "previous": release.previous, "identity": identity},
        )

    def rollback(self, config: Config, state: RunState, log: Callable[[str], None]) -> str:
        """Put back what ran before the last release on the configured target; ``pipeline rollback``."""
        kind = target_class(config)
        kind.validate(config)
        identity = kind.identity(config)
        book = Releases.of(config, state)
        run_id = "rollback-" + utcnow()
        with deploy_lease.hold(book.store, identity, run_id=run_id, ttl_s=config.store.lease_ttl_s, log=log):
            read = book.read(identity)
            releases = [Release.from_state(raw, identity) for raw in read]
            done = kind(config, log).roll_back(releases)
            remaining = [release.to_state() for release in done.remaining]
            try:
                book.update(identity, after_rollback(read, remaining))
            except StoreUnavailable as exc:
                raise StoreUnavailable(
                    f"{done.message}, but {book.where} could not record it: {exc.message}",
                    hint="a rollback from another agent would take the release undone here as live: record "
                    "it by hand, or deploy again once the store answers",
                ) from None
        return done.message


def _record(book: Releases, identity: str, release: Release) -> None:
    """Add the release that went live; when the shared store fails, say so loudly (a rollback depends on
    it) and keep it in this checkout's run state at least."""
    try:
        book.append(identity, release.to_state())
    except StoreUnavailable as exc:
        book.state.set_releases(identity, [*book.state.releases(identity), release.to_state()])
        raise StoreUnavailable(
            f"{release.image} is live on {identity}, but its release could not be recorded in {book.where}: "
            f"{exc.message}",
            hint=f"a rollback needs it: it is kept in {book.state.path} only; deploy again once the store "
            "answers, or roll back by hand",
        ) from None
