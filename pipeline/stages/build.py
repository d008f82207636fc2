"""``build``: the service image, with docker-py's low-level build, tags from config and OCI labels.

An image already labelled with the same inputs hash (the build context as ``.dockerignore`` filters
it, the Dockerfile and the build arguments that shape the image) is reused: the stage says
``cached`` and only adds this run's tags. The revision and creation date are labels, not inputs, so
a new commit that changes nothing the image holds does not rebuild it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from pipeline.adapters import git
from pipeline.config import Config
from pipeline.errors import ToolFailed
from pipeline.stages import _images
from pipeline.stages.base import CACHED, CheckResult, Stage, StageContext, StageResult
from pipeline.stages.train import MODEL_FILE, read_model_metadata


def context_hash(context: Path, dockerfile: str, buildargs: dict[str, str]) -> str:
    """A hash of what the engine would be sent and told: context files, Dockerfile, build args."""
    from docker.utils.build import exclude_paths  # pylint: disable=import-outside-toplevel

    ignore = context / ".dockerignore"
    patterns = []
    if ignore.exists():
        patterns = [
            line.strip()
            for line in ignore.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
    digest = hashlib.sha256()
    for rel in sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile)):
        path = context / rel
        if path.is_file():
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update((context / dockerfile).read_bytes())
    digest.update(json.dumps(buildargs, sort_keys=True).encode())
    return digest.hexdigest()


class BuildStage(Stage):
    name = "build"
    needs = ("lint", "test", "trivy-fs")
    description = "docker-py build of the service image; tags from config, OCI labels, inputs-hash cache"

    def checks(self, config: Config) -> list[CheckResult]:
        return [_images.engine_check(config)]

    def missing_input(self, config: Config, state, selected: set[str]) -> tuple[str, str] | None:
        model = config.path(config.train.output_dir)
        if not (model / MODEL_FILE).exists() and "train" not in selected:
            return "train", f"a trained model in {config.train.output_dir}/"
        return super().missing_input(config, state, selected)

    def plan(self, config: Config) -> list[str]:
        info = git.info(config.root)
        tags = _images.resolve_tags(config, info, "untracked")
        return [
            f"docker build {config.image.context} -f {config.image.dockerfile} "
            f"--build-arg PYTHON_IMAGE={config.image.base} "
            + " ".join(f"-t {_images.repository(config)}:{t}" for t in tags),
            f"cached when an image labelled {_images.INPUTS_LABEL}="
            "<hash of context, Dockerfile, build args> exists",
        ]

    def run(self, ctx: StageContext) -> StageResult:
        config = ctx.config
        engine = _images.connect(config)
        context = config.path(config.image.context)
        info = git.info(config.root)
        model_version = _model_version(config)
        shaping = {
            "PYTHON_IMAGE": config.image.base,
            "MODEL_VERSION": model_version,
            "SOURCE_URL": config.image.source_url or "unknown",
        }
        inputs = context_hash(context, config.image.dockerfile, shaping)
        repo = _images.repository(config)
        tags = [f"{repo}:{t}" for t in _images.resolve_tags(config, info, inputs[:12])]
        ctx.log(f"inputs hash {inputs}; tags {', '.join(tags)}")

        cached = engine.find_image_by_label(_images.INPUTS_LABEL, inputs)
        if cached:
            for ref in tags:
                engine.tag(cached, ref)
            ctx.log(f"image {cached} already holds these inputs: tagged, not rebuilt")
            self._record(ctx, cached, tags, inputs, model_version)
            return StageResult(
                status=CACHED,
                summary=f"{cached[7:19]} (unchanged) {', '.join(tags)}",
                artifacts={"image_id": cached, "tags": tags},
            )

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
        self._record(ctx, image_id, tags, inputs, model_version)
        return StageResult(
            summary=f"{image_id[7:19]} {', '.join(tags)}", artifacts={"image_id": image_id, "tags": tags}
        )

    @staticmethod
    def _record(ctx: StageContext, image_id: str, tags: list[str], inputs: str, model_version: str) -> None:
        ctx.record(
            image_id=image_id, tags=tags, image=tags[0], inputs_hash=inputs, model_version=model_version
        )


def _model_version(config: Config) -> str:
    meta = read_model_metadata(config.path(config.train.output_dir))
    return str(meta["model_version"]) if meta else "unknown"
