"""``build``: the service image, with docker-py's low-level build, tags from config and OCI labels.

Its inputs are the build context as ``.dockerignore`` filters it (the model included), the
Dockerfile, the build arguments that shape the image, and the image the engine resolves ``image.base``
to (a tag moved to a patched image rebuilds; a base the engine does not hold yet is a miss: the build
pulls it). With the same inputs the runner reports it
``cached``: the recorded image, still in the engine, only gets this run's tags. The revision and
creation date are labels, not inputs, so a new commit that changes nothing the image holds does not
rebuild it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.adapters import git
from pipeline.cache import UNRESOLVED, Inputs
from pipeline.config import Config
from pipeline.errors import PipelineError, ToolFailed
from pipeline.outputs import BuildOutputs, OutputsError, short_image_id
from pipeline.results import Status
from pipeline.stages import _images, _promotion
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult
from pipeline.stages.train import model_missing, read_model_metadata
from pipeline.state import RunState, StageRecord

if TYPE_CHECKING:
    from pipeline.adapters.docker_engine import DockerEngine


def context_hash(context: Path, dockerfile: str, buildargs: dict[str, str]) -> str:
    """A hash of what the engine would be sent and told: context files, Dockerfile, build args."""
    from pipeline.adapters.docker_images import context_files, dockerignore_patterns

    patterns = dockerignore_patterns(context)
    if not (context / dockerfile).is_file():
        return "no-dockerfile"
    digest = hashlib.sha256()
    for rel in sorted(context_files(context, patterns, dockerfile)):
        path = context / rel
        if path.is_file():
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update((context / dockerfile).read_bytes())
    digest.update(json.dumps(buildargs, sort_keys=True).encode())
    return digest.hexdigest()


def base_image_id(config: Config) -> str:
    """The id of the image the engine resolves ``image.base`` to, which every ``FROM`` of the build starts
    from: the same tag moved to another image (a patched base) is another input. The build itself pulls a
    base it lacks (docker-py ``build(pull=False)`` pulls only what is missing), so a base that the engine
    does not hold, or an engine that cannot be asked, is not known before the build: a miss."""
    from pipeline.adapters.docker_engine import DockerEngine

    try:
        engine = DockerEngine.connect(config.docker_host or None, timeout_s=30)
        found = engine.image_id(config.image.base)
    except PipelineError as exc:  # EngineUnavailable, ToolFailed
        return f"{UNRESOLVED}the engine cannot say which image {config.image.base} is ({exc.message})"
    return found or f"{UNRESOLVED}{config.image.base} is not in the engine yet (the build pulls it)"


class BuildStage(Stage):
    name = "build"
    needs = ("lint", "promotion", "test", "trivy-fs")
    description = "docker-py build of the service image; tags from config, OCI labels"
    outputs = BuildOutputs
    cacheable = True

    def inputs(self, config: Config) -> Inputs:
        shaping = _shaping_args(config)
        digest = context_hash(config.path(config.image.context), config.image.dockerfile, shaping)
        return Inputs(
            # The model train made is in the context (model/); named too, so a dry run before train knows
            # that build's inputs are not known yet when train runs.
            upstream=("train.model_version",),
            config=("image.context", "image.dockerfile"),
            extra={"docker-context": digest, "base-image": base_image_id(config)},
        )

    def reuse(self, ctx: StageContext, record: StageRecord) -> StageResult | None:
        engine = _images.connect(ctx.config)
        try:
            earlier = BuildOutputs.from_json(record.outputs)
        except OutputsError as exc:
            ctx.log(f"the earlier build cannot be reused: {exc}")
            return None
        image_id = earlier.image_id
        pulled = ""
        if engine.image_id(image_id) is None:
            pulled = self._pull(ctx, engine, image_id)
            if not pulled:
                return None
        config = ctx.config
        # Its inputs are today's (a cache hit): outside a git checkout, the tag a build of them gets.
        hashed = context_hash(
            config.path(config.image.context), config.image.dockerfile, _shaping_args(config)
        )
        tags = self._tags(config, _images.no_commit_sha(hashed))
        for ref in tags:
            engine.tag(image_id, ref)
        ctx.log(f"image {image_id} holds these inputs: tagged {', '.join(tags)}, not rebuilt")
        self._record(ctx, image_id, tags, earlier.model_version)
        return StageResult(
            status=Status.CACHED,
            summary=f"{short_image_id(image_id)} ({pulled or 'unchanged'}) {', '.join(tags)}",
            artifacts={"image_id": image_id, "tags": tags},
        )

    def checks(self, config: Config) -> list[CheckResult]:
        return [_images.engine_check(config)]

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        return model_missing(config, selected) or super().missing_input(config, state, selected)

    def plan(self, config: Config) -> list[str]:
        tags = self._tags(config, _images.NO_COMMIT_PLACEHOLDER)
        return [
            f"docker build {config.image.context} -f {config.image.dockerfile} "
            f"--build-arg PYTHON_IMAGE={config.image.base} " + " ".join(f"-t {t}" for t in tags),
        ]

    @staticmethod
    def _pull(ctx: StageContext, engine: DockerEngine, image_id: str) -> str:
        """Pull ``image_id`` by the digest another agent pushed it under (the shared store says where):
        ``"pulled from REF"`` once the engine holds it and its id is ``image_id``, else "" (build it)."""
        reference = ctx.shared.image_reference(image_id) if ctx.shared is not None else None
        if reference is None:
            ctx.log(f"image {image_id} is not in the engine, and no agent pushed it: building it")
            return ""
        ctx.progress(f"pulling {reference}")
        got = engine.pull(reference, _images.auth_config(ctx.config))
        if got != image_id:
            ctx.log(
                f"image {image_id} is not in the engine; {reference} gave {got or 'nothing'}: building it"
            )
            return ""
        ctx.log(f"image {image_id} is not in the engine: pulled {reference} (its id checked), not rebuilt")
        return f"pulled from {reference}"

    @staticmethod
    def _tags(config: Config, fallback: str) -> list[str]:
        """``image.tags`` resolved; ``fallback`` is ``{git_sha}`` outside a git checkout."""
        repo = _images.repository(config)
        return [
            f"{repo}:{t}"
            for t in _images.resolve_tags(
                config, git.info(config.root, config.image.context, config.image.branch), fallback
            )
        ]

    def run(self, ctx: StageContext) -> StageResult:
        config = ctx.config
        engine = _images.connect(config)
        context = config.path(config.image.context)
        info = git.info(config.root, config.image.context, config.image.branch)
        shaping = _shaping_args(config)
        inputs = context_hash(context, config.image.dockerfile, shaping)
        tags = self._tags(config, _images.no_commit_sha(inputs))
        ctx.log(f"context hash {inputs}; tags {', '.join(tags)}")
        buildargs = {
            **shaping,
            "VCS_REF": info.full_sha or "unknown",
            "BUILD_DATE": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        ctx.progress("docker build")
        try:
            image_id = engine.build(
                context,
                config.image.dockerfile,
                tags,
                buildargs=buildargs,
                labels={_images.INPUTS_LABEL: inputs},
                log=ctx.log,
                progress=ctx.progress,
                cancel=ctx.cancel,
            )
        except ToolFailed as exc:
            if engine.image_id(config.image.base) is None:
                raise ToolFailed(
                    exc.message,
                    hint=f"base image {config.image.base} is not local; " + _images.LOCAL_BASE_HINT,
                ) from None
            raise
        self._record(ctx, image_id, tags, shaping["MODEL_VERSION"])
        return StageResult(
            summary=f"{short_image_id(image_id)} {', '.join(tags)}",
            artifacts={"image_id": image_id, "tags": tags},
        )

    @staticmethod
    def _record(ctx: StageContext, image_id: str, tags: list[str], model_version: str | None) -> None:
        model = _promotion.read_candidate(ctx.config)
        ctx.record(
            BuildOutputs(
                image_id=image_id, tags=tags, image=tags[0], model_version=model_version, model=model
            )
        )


def _shaping_args(config: Config) -> dict[str, str]:
    """The build arguments that shape the image (and so are inputs); revision and date are labels only."""
    return {
        "PYTHON_IMAGE": config.image.base,
        "MODEL_VERSION": _model_version(config),
        "SOURCE_URL": config.image.source_url or "unknown",
    }


def _model_version(config: Config) -> str:
    meta = read_model_metadata(config.path(config.train.output_dir))
    return str(meta["model_version"]) if meta else "unknown"
