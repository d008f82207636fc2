"""What each stage hands on: one small frozen dataclass per stage, the run state's only vocabulary.

A stage declares its class (``outputs = BuildOutputs``), records one instance of it (``ctx.record(...)``)
and reads another stage's with ``ctx.read(BuildOutputs)``, typed, so mypy checks every read. The run state
stores each as a JSON object (``.pipeline/state.json``, README "Reports"); :meth:`Outputs.from_json` reads it
back and refuses, naming the field, what this version of the pipeline would not have written (an older
state file, a hand edit): a value is used whole or not at all.

The facts other parts of the pipeline show about a run (the model, the image, where it went) are worked out
once, by :func:`run_facts`: ``history`` and ``report_html`` read them there; ``status`` shows each stage's
outputs as :meth:`~pipeline.state.RunState.outputs` reads them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from pipeline.state import RunState

OutputsT = TypeVar("OutputsT", bound="Outputs")


class OutputsError(ValueError):
    """Recorded outputs that do not fit their class: the message names the field and what it holds."""


@dataclass(frozen=True)
class Outputs:
    """Base of every stage's outputs; ``stage`` is the name of the stage that records them."""

    stage: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON object the run state stores (field names are the keys)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls: type[OutputsT], raw: object) -> OutputsT:
        """Read what :meth:`to_json` wrote; :class:`OutputsError` for anything else."""
        if not isinstance(raw, Mapping):
            raise OutputsError(f"{cls.stage}'s outputs are {type(raw).__name__}, not an object")
        hints = _hints(cls)
        unknown = sorted(set(raw) - set(hints))
        if unknown:
            raise OutputsError(f"{cls.stage}'s outputs have fields this pipeline does not know: {unknown}")
        values: dict[str, Any] = {}
        for name, hint in hints.items():
            if name not in raw:
                raise OutputsError(f"{cls.stage}'s outputs lack '{name}'")
            if not _fits(raw[name], hint):
                raise OutputsError(f"{cls.stage}.{name} is {raw[name]!r}, not {_show(hint)}")
            values[name] = raw[name]
        return cls(**values)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The field names: what ``Inputs(upstream=("STAGE.KEY",))`` may name."""
        return tuple(_hints(cls))


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type[Outputs]) -> dict[str, Any]:
    """Each field's annotation, resolved (``from __future__ import annotations`` leaves strings)."""
    if cls not in _HINTS:
        resolved = typing.get_type_hints(cls)
        _HINTS[cls] = {f.name: resolved[f.name] for f in dataclasses.fields(cls)}
    return _HINTS[cls]


def _fits(value: object, hint: Any) -> bool:
    """Whether a JSON value fits a field's annotation (``str``, ``float``, ``list[str]``, ``X | None``...)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if hint is types.NoneType:
        return value is None
    if hint is Any:
        return True
    if origin is list:
        return isinstance(value, list) and all(_fits(item, args[0]) for item in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:  # JSON writes 2.0 as 2.0, but a hand edit or another writer may say 2
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _show(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


@dataclass(frozen=True)
class LintOutputs(Outputs):
    stage: ClassVar[str] = "lint"
    findings: int


@dataclass(frozen=True)
class TrainOutputs(Outputs):
    stage: ClassVar[str] = "train"
    model_version: str
    model_dir: str
    cv_accuracy_mean: float


@dataclass(frozen=True)
class PromotionOutputs(Outputs):
    """The promotion gate's verdict on the candidate against the champion the deploy target runs.

    ``verdict``: ``passed`` (not worse), ``first`` (no champion to compare with), ``waived``
    (``promotion.gate = false``); a candidate that is worse fails the stage and records nothing.
    ``changed``/``compared``: answers changed on the fixed evaluation set, when both models recorded them."""

    stage: ClassVar[str] = "promotion"
    verdict: str
    candidate: str | None
    champion: str | None
    identity: str
    changed: int | None
    compared: int | None
    line: str


@dataclass(frozen=True)
class TestOutputs(Outputs):
    stage: ClassVar[str] = "test"
    passed: int
    failed: int
    skipped: int


@dataclass(frozen=True)
class ScanOutputs(Outputs):
    """What a Trivy scan found: every finding, those at or above the gate, and what was scanned."""

    findings: int
    blocking: int
    target: str


@dataclass(frozen=True)
class TrivyFsOutputs(ScanOutputs):
    stage: ClassVar[str] = "trivy-fs"


@dataclass(frozen=True)
class TrivyImageOutputs(ScanOutputs):
    stage: ClassVar[str] = "trivy-image"


@dataclass(frozen=True)
class BuildOutputs(Outputs):
    """The image: its id, its tags (the first is ``image``), and the model it packs (version, metrics and
    evaluation answers, what the release will carry)."""

    stage: ClassVar[str] = "build"
    image_id: str
    tags: list[str]
    image: str
    model_version: str | None
    model: dict[str, Any] | None


@dataclass(frozen=True)
class SmokeOutputs(Outputs):
    stage: ClassVar[str] = "smoke"
    ready_s: float


@dataclass(frozen=True)
class PushOutputs(Outputs):
    """The pushed image by digest (``repo@sha256:...``, what deploy runs), its tags and its model."""

    stage: ClassVar[str] = "push"
    digest: str
    image: str
    tags: list[str]
    model_version: str | None
    model: dict[str, Any] | None


@dataclass(frozen=True)
class DeployOutputs(Outputs):
    """Where the release went (the target's kind and identity), what ran before, and how to reach it.
    ``ref`` and ``previous_ref``: the target's own names of the release and of what ran before (``ecs``: the
    task definition ARNs; ``local``: the container's name, and none before it)."""

    stage: ClassVar[str] = "deploy"
    target: str
    identity: str
    image: str
    previous: str | None
    ready_s: float
    url: str | None
    ref: str | None
    previous_ref: str | None


def short_image_id(image_id: str) -> str:
    """``sha256:0123456789abcdef...`` -> ``0123456789ab`` (an id without the prefix is cut the same way)."""
    return image_id.removeprefix("sha256:")[:12]


@dataclass(frozen=True)
class RunFacts:
    """What one run made, from its own stages only (never an earlier run's value still in the state)."""

    model_version: str | None = None
    cv_accuracy: float | None = None
    promotion: str | None = None
    image_id: str | None = None
    tags: tuple[str, ...] = ()
    image: str | None = None
    deployed_to: str | None = None
    url: str | None = None


def run_facts(state: RunState, run_id: str) -> RunFacts:
    """The model, image and deployment that run ``run_id`` made: for ``history`` and ``index.html``."""
    train = state.outputs_of_run(run_id, TrainOutputs)
    promotion = state.outputs_of_run(run_id, PromotionOutputs)
    build = state.outputs_of_run(run_id, BuildOutputs)
    push = state.outputs_of_run(run_id, PushOutputs)
    deploy = state.outputs_of_run(run_id, DeployOutputs)
    return RunFacts(
        model_version=(train.model_version if train else None) or (build.model_version if build else None),
        cv_accuracy=train.cv_accuracy_mean if train else None,
        promotion=promotion.line if promotion else None,
        image_id=build.image_id if build else None,
        tags=tuple((push.tags if push else None) or (build.tags if build else None) or ()),
        image=push.image if push else None,
        deployed_to=deploy.identity if deploy else None,
        url=deploy.url if deploy else None,
    )
