"""``promotion``: the new model ships only if it is not worse than the one the deploy target runs.

After ``train`` and before ``build``. First the model directory is checked against itself
(``python -m model_training.verify``: ``metadata.json`` must describe the ONNX file the image will ship),
then the candidate is compared with the champion (:mod:`pipeline.stages._promotion`). The verdict is typed
(:class:`~pipeline.outputs.PromotionOutputs`): the reports, the history and Jenkins' JUnit show it as the
stage's own. ``--skip promotion`` or ``promotion.gate = false`` waive it, visibly (a skipped stage, or a
``waived`` verdict). Cached while the candidate's files and the champion it was compared with are the same.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.cache import Inputs
from pipeline.config import Config
from pipeline.errors import GateFailed, PipelineError, StageFailed
from pipeline.outputs import PromotionOutputs
from pipeline.releases import Releases
from pipeline.stages import _promotion
from pipeline.stages.base import Stage, StageContext, StageResult
from pipeline.stages.train import METADATA_FILE, MODEL_FILE, model_missing
from pipeline.state import RunState


def candidate_digest(config: Config) -> str:
    """The candidate as the gate reads it: ``metadata.json`` and the ONNX file, hashed ("none" without).
    Read again only when a file changed (train ran), not at each fingerprint of the run."""
    model_dir = config.path(config.train.output_dir)
    return _candidate_digest(model_dir, _stamps(model_dir / METADATA_FILE, model_dir / MODEL_FILE))


def champion_digest(config: Config) -> str:
    """The champion as recorded for the deploy target: its identity and the last release's model. With no
    release recorded the champion is asked of the live service when the stage runs; that answer is not
    an input (``--rerun promotion`` asks again). The run state is read again only when it changed; a shared
    store (:mod:`pipeline.releases`) each time, since another agent may have deployed meanwhile."""
    from pipeline.stages.targets import target_class
    from pipeline.store.configured import shared_store

    identity = target_class(config).identity(config)
    try:
        store = shared_store(config)
    except PipelineError as exc:  # a share that is not mounted: the stage itself will say so
        return _digest(identity, {"unreadable": exc.message})
    if store is None:
        return _champion_digest(identity, config.state_file, _stamps(config.state_file))
    return _digest(identity, _last_model(identity, lambda: Releases(RunState(config.state_file), store)))


_Stamp = tuple[int, int, int] | None


def _stamps(*paths: Path) -> tuple[_Stamp, ...]:
    """What tells whether a file changed without reading it (its change time, size and inode), per path;
    None for a file that is not there."""
    found: list[_Stamp] = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            found.append(None)
        else:
            found.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(found)


@functools.lru_cache(maxsize=16)
def _candidate_digest(model_dir: Path, stamps: tuple[_Stamp, ...]) -> str:
    del stamps  # the key: the same files as when last read
    digest = hashlib.sha256()
    for name in (METADATA_FILE, MODEL_FILE):
        try:
            digest.update((model_dir / name).read_bytes())
        except OSError:
            return "none"
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def _champion_digest(identity: str, state_file: Path, stamps: tuple[_Stamp, ...]) -> str:
    del stamps  # the key: the same run state as when last read
    return _digest(identity, _last_model(identity, lambda: Releases(RunState.load(state_file), None)))


def _last_model(identity: str, book: Callable[[], Releases]) -> object:
    """The model of the last release of ``identity``; what is wrong, when the releases cannot be read."""
    from pipeline.stages.targets import Release

    try:
        releases = book().read(identity)
        return Release.from_state(releases[-1], identity).model if releases else None
    except PipelineError as exc:  # releases the run refuses with its own message: a key of their own here
        return {"unreadable": exc.message}


def _digest(identity: str, model: object) -> str:
    text = json.dumps({"identity": identity, "model": model}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PromotionStage(Stage):
    name = "promotion"
    needs = ("train",)
    description = "the new model against the one the deploy target runs (the champion); model vs its ONNX"
    outputs = PromotionOutputs
    cacheable = True

    def inputs(self, config: Config) -> Inputs:
        return Inputs(
            upstream=("train.model_version",),  # a dry run knows it is only known once train has run
            config=("promotion", "deploy.target", "train.output_dir"),
            extra={"candidate": candidate_digest(config), "champion": champion_digest(config)},
        )

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        return model_missing(config, selected) or super().missing_input(config, state, selected)

    def plan(self, config: Config) -> list[str]:
        return [
            f"{sys.executable} -m model_training.verify --model-dir {config.train.output_dir}",
            f"compare {config.train.output_dir}/metadata.json with the champion on the deploy target "
            f"(tolerance {config.promotion.tolerance:g}, answers changed at most "
            f"{config.promotion.max_changed_fraction:.0%})"
            + ("" if config.promotion.gate else "; waived (promotion.gate=false)"),
        ]

    def run(self, ctx: StageContext) -> StageResult:
        self._check_model(ctx)
        verdict = _promotion.gate(ctx.config, ctx.state, ctx.log)
        ctx.record(verdict)
        return StageResult(summary=verdict.line, artifacts={"verdict": verdict.verdict})

    @staticmethod
    def _check_model(ctx: StageContext) -> None:
        """The gate compares what ``metadata.json`` says; the image ships the ONNX file beside it. So the
        two must agree (``python -m model_training.verify``: the version is the file's hash, and the file
        gives the recorded answers on the evaluation set), or the gate fails closed."""
        if not ctx.config.promotion.gate:
            ctx.log("the model is not checked against its metadata: promotion.gate=false")
            return
        model_dir = ctx.config.path(ctx.config.train.output_dir)
        res = ctx.run_tool([sys.executable, "-m", "model_training.verify", "--model-dir", str(model_dir)])
        if res.returncode == 1:
            raise GateFailed(
                f"promotion gate: the model in {ctx.config.train.output_dir}/ cannot be trusted: "
                + res.last_line.removeprefix("error: "),
                hint="train again (python -m pipeline run --stage train --rerun train); "
                "to ship it anyway for one run: --set promotion.gate=false",
            )
        if res.returncode != 0:
            raise StageFailed(
                f"could not check the model in {ctx.config.train.output_dir}/: {res.last_line}",
                hint="run 'python -m pipeline run --stage train'",
            )
