"""``push``: every tag of the built image to the registry, the digest confirmed by the registry itself.

The engine's push stream is read to the end (an error inside it fails the stage: docker-py returns
normally from a failed push), and the digest it reports must equal what the registry answers for
``HEAD /v2/NAME/manifests/TAG``. ``repo@sha256:...`` is what deploy runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.cache import Inputs
from pipeline.config import Config
from pipeline.errors import EnvironmentProblem, StageFailed
from pipeline.outputs import BuildOutputs, PushOutputs
from pipeline.stages import _images
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult
from pipeline.state import RunState

if TYPE_CHECKING:
    from pipeline.adapters.docker_engine import DockerEngine


def _ecr_check(config: Config) -> CheckResult:
    """An ECR registry: can boto3 get a login token for it?"""
    try:
        _images.credentials(config)
    except (StageFailed, EnvironmentProblem) as exc:
        return CheckResult("registry credentials", False, exc.message, exc.hint or "")
    return CheckResult("registry credentials", True, "ECR login token from boto3 (GetAuthorizationToken)")


class PushStage(Stage):
    name = "push"
    needs = ("trivy-image", "smoke")
    description = "push every tag; the digest is confirmed by the registry API"
    outputs = PushOutputs

    def inputs(self, config: Config) -> Inputs:
        # What was pushed: a push is stale once another image was built, not when a scan reran.
        del config
        return Inputs(upstream=("build.image_id", "build.tags"))

    def checks(self, config: Config) -> list[CheckResult]:
        checks = [_images.engine_check(config)]
        if _images.is_ecr(config) and not config.secrets.registry_username:
            checks.append(_ecr_check(config))
        elif not config.secrets.registry_username and not _images.is_local_registry(config):
            checks.append(
                CheckResult(
                    "registry credentials",
                    False,
                    f"no credentials for {config.registry.url}",
                    "set REGISTRY_USERNAME and REGISTRY_PASSWORD (or DOCKERHUB_USERNAME and DOCKERHUB_TOKEN)",
                )
            )
        try:
            registry, how = _images.registry_view(config, _images.connect(config))
            registry.ping()
            creds = "with credentials" if _images.credentials(config) else "anonymous"
            checks.append(CheckResult("registry", True, f"answers ({creds}); {how}"))
        except (StageFailed, EnvironmentProblem) as exc:
            # Not required before the run: a refused or absent registry is the push stage's own failure
            # (exit 1, cause named); doctor still shows it as a problem.
            checks.append(
                CheckResult(
                    "registry",
                    False,
                    exc.message,
                    exc.hint or "check registry.url and REGISTRY_USERNAME/REGISTRY_PASSWORD",
                    required=False,
                )
            )
        return checks

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        if "build" not in selected and not state.outputs(BuildOutputs):
            return "build", "a built image"
        return super().missing_input(config, state, selected)

    def plan(self, config: Config) -> list[str]:
        return [
            f"docker push {_images.repository(config)}:<each tag of build>",
            f"HEAD {config.registry.url}/v2/{_images.path_in_registry(config, _images.repository(config))}"
            "/manifests/<tag> must answer the pushed digest (asked through the engine when the registry is "
            "on the engine host's loopback and the pipeline runs in a container)",
        ]

    @staticmethod
    def _tags_for_registry(ctx: StageContext, engine: DockerEngine, build: BuildOutputs) -> list[str]:
        """Build's tags, in the repository of the registry configured now.

        Build names the registry of its day in its tags; pushing those to another ``registry.url`` would
        send this registry's credentials to that one. So a tag of another repository is retagged here.
        """
        repository_now = _images.repository(ctx.config)
        tags = []
        for ref in build.tags:
            ref_now = _images.retarget(ref, repository_now)
            if ref_now != ref:
                engine.tag(build.image_id, ref_now)
                ctx.log(
                    f"{ref} was built for another registry: tagged {ref_now} for {ctx.config.registry.url}"
                )
            tags.append(ref_now)
        return tags

    def run(self, ctx: StageContext) -> StageResult:
        from pipeline.adapters.docker_images import split_image_ref

        engine = _images.connect(ctx.config)
        registry, how = _images.registry_view(ctx.config, engine)
        ctx.log(f"registry: {how}")
        build = ctx.read(BuildOutputs)
        if build is None:
            raise StageFailed("no built image to push", hint="run 'python -m pipeline run --stage build'")
        tags = self._tags_for_registry(ctx, engine, build)
        auth = _images.auth_config(ctx.config)
        digest = None
        for ref in tags:
            repo, tag = split_image_ref(ref)
            ctx.progress(f"pushing {ref}")
            pushed = engine.push(
                repo,
                tag,
                auth,
                log=ctx.log,
                progress=ctx.progress,
                cancel=ctx.cancel,
                attempts=ctx.config.registry.push_retries,
            )
            confirmed = registry.manifest_digest(_images.path_in_registry(ctx.config, repo), tag)
            ctx.log(f"{ref}: engine reported {pushed}, registry holds {confirmed}")
            if confirmed != pushed:
                raise StageFailed(
                    f"{ref}: the registry holds {confirmed or 'nothing'}, the engine pushed {pushed}",
                    hint="another push may have raced this one; push again",
                )
            if digest is not None and pushed != digest:
                raise StageFailed(f"tags of one image got different digests: {digest} and {pushed}")
            digest = pushed
        if digest is None:
            raise StageFailed(
                "build recorded no tags to push", hint="run 'python -m pipeline run --stage build'"
            )
        repo = split_image_ref(tags[0])[0]
        reference = f"{repo}@{digest}"
        ctx.record(
            PushOutputs(
                digest=digest,
                image=reference,
                tags=tags,
                model_version=build.model_version,
                model=build.model,
            )
        )
        if ctx.shared is not None:  # an agent whose engine lacks the image pulls it (build's cache hit)
            ctx.shared.remember_image(build.image_id, reference)
        return StageResult(
            summary=f"{reference} ({len(tags)} tags)", artifacts={"image": reference, "tags": tags}
        )
