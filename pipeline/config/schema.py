"""The configuration's schema: a tree of frozen dataclasses, each leaf with its type, default and rule.

Every leaf has a dotted key (``deploy.ecs.cluster``); :data:`SCHEMA` lists them. What a value must be beyond
its type (a choice, a range) is a :class:`Rule` kept on the field itself. Loading the layers into it is
:mod:`pipeline.config.loading`'s job.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
DEFAULT_PROFILE = "local"
CONFIG_FILE = "pipeline.toml"
# What no linter or scanner should read: VCS data, virtualenvs, what the pipeline itself generates and
# the caches the tools it runs leave behind (they change with every run, and hold no source).
GENERATED_DIRS = (
    ".git",
    ".venv",
    ".pipeline",
    "reports",
    "model",
    ".testbed",
    "node_modules",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    ".mypy_cache",
    "htmlcov",
)


@dataclass(frozen=True)
class Rule:
    """What a value must be beyond its type, kept on the field itself (``dataclasses.field`` metadata):
    one of ``choices`` (each item, for a list), at least ``low`` (above it when ``above``), at most ``high``.
    ``_validate`` applies the rule of every leaf of the schema; there is no list of keys beside it."""

    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    above: bool = False
    meaning: str = ""  # what the bounds mean, for the message ("0: one per CPU core")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` breaks the rule, or None."""
        items = value if isinstance(value, tuple) else (value,)
        if self.choices:
            wrong = [item for item in items if item not in self.choices]
            return f"{wrong[0]!r} is not one of {', '.join(self.choices)}" if wrong else None
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return self._range()
        if self.high is not None and value > self.high:
            return self._range()
        return None

    def _range(self) -> str:
        if self.above:
            text = f"must be greater than {self.low:g}"
        elif self.high is None:
            text = f"must be {self.low:g} or more"
        else:
            text = f"must be between {self.low:g} and {self.high:g}"
        return f"{text} ({self.meaning})" if self.meaning else text


def ruled(default: Any, rule: Rule) -> Any:
    """A config field with its rule: ``port: int = ruled(8000, Rule(low=1, high=65535))``."""
    # Called in the class bodies below, as dataclasses' own helpers are: pylint cannot see that.
    return field(default=default, metadata={"rule": rule})  # pylint: disable=invalid-field-call


def seconds(default: float) -> Any:
    """A duration in seconds: greater than 0."""
    return ruled(default, Rule(low=0, above=True))


def one_of(default: Any, *choices: str) -> Any:
    return ruled(default, Rule(choices=choices))


def fraction(default: float) -> Any:
    return ruled(default, Rule(low=0, high=1))


def count(default: int, meaning: str) -> Any:
    """A whole number, 0 or more, where 0 means ``meaning``."""
    return ruled(default, Rule(low=0, meaning=meaning))


@dataclass(frozen=True)
class PipelineSection:
    report_dir: str = "reports"
    state_dir: str = ".pipeline"
    jobs: int = count(0, "0: one per CPU core")  # stages at once
    keep_going: bool = False


OTHER_STAGE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class TimeoutsSection:
    """Seconds each stage may run before it is stopped and failed."""

    lint: float = seconds(600)
    train: float = seconds(600)
    promotion: float = seconds(300)
    test: float = seconds(1200)
    trivy_fs: float = seconds(600)
    build: float = seconds(1800)
    trivy_image: float = seconds(900)
    smoke: float = seconds(300)
    push: float = seconds(900)
    deploy: float = seconds(1200)

    def for_stage(self, stage: str) -> float:
        """The timeout of ``stage``. Every stage of the registry has its field here (``test_config`` holds
        the fields against ``pipeline.stages.ORDER``); a stage outside the registry (a test's own) gets
        :data:`OTHER_STAGE_TIMEOUT_S`."""
        return float(getattr(self, stage.replace("-", "_"), OTHER_STAGE_TIMEOUT_S))


@dataclass(frozen=True)
class LintSection:
    paths: tuple[str, ...] = ("pipeline", "app", "model_training", "tests", "benchmarks")
    # pylint infers types through every import (about 1 s per 1,000 lines): it runs on the shipped code.
    # The other linters run on all of ``paths``; a test's own run is the deeper check of test code.
    pylint_paths: tuple[str, ...] = ("pipeline", "app", "model_training", "benchmarks")
    pylint_fail_under: float = ruled(9.5, Rule(low=0, high=10))
    linter: str = one_of("ruff", "ruff", "flake8")
    black: bool = True
    mypy_paths: tuple[str, ...] = ("pipeline", "app")  # type-checked by mypy (config in pyproject.toml)
    hadolint_failure_threshold: str = one_of("warning", "error", "warning", "info", "style")
    dockerfiles: tuple[str, ...] = ()
    exclude: tuple[str, ...] = (*GENERATED_DIRS, "tests/fixtures")


@dataclass(frozen=True)
class TrainSection:
    output_dir: str = "model"
    min_cv_accuracy: float = fraction(0.90)
    inputs: tuple[str, ...] = ("model_training",)


@dataclass(frozen=True)
class PromotionSection:
    """The promotion gate before ``build``: the candidate model against the one the deploy target runs."""

    gate: bool = True
    tolerance: float = fraction(0.01)  # how much lower a metric may be than the champion's
    max_changed_fraction: float = fraction(1.0)  # of the fixed evaluation set's answers; 1.0: not gated


@dataclass(frozen=True)
class TestSection:
    paths: tuple[str, ...] = ("tests",)
    markers: str = "not integration"
    coverage: tuple[str, ...] = ("pipeline", "app", "model_training")
    workers: int = count(0, "0: one per CPU core")  # pytest-xdist processes; 1: no xdist
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageSection:
    repository: str = "iris-classifier"
    base: str = "python:3.11-slim"
    tags: tuple[str, ...] = ("{git_sha}", "latest@default-branch")
    dockerfile: str = "Dockerfile"
    context: str = "."
    source_url: str = ""
    default_branch: str = "main"
    # The branch of a detached checkout: Jenkins' git plugin checks out a commit, not a branch, and says
    # which branch in GIT_BRANCH ("origin/main") or, in a multibranch job, BRANCH_NAME. Only read when HEAD
    # is detached (git's own branch wins otherwise); an "origin/" prefix is dropped.
    branch: str = ""


@dataclass(frozen=True)
class DockerSection:
    """How the pipeline reaches the containers it starts (``adapters/reach.py``)."""

    reach: str = one_of("auto", "auto", "host", "network")
    network: str = ""


@dataclass(frozen=True)
class RegistrySection:
    url: str = "localhost:5000"
    timeout_s: float = seconds(30)
    push_retries: int = 3


@dataclass(frozen=True)
class TrivySection:
    scanners: tuple[str, ...] = one_of(
        ("vuln", "secret", "misconfig"), "vuln", "secret", "misconfig", "license"
    )
    severity: str = one_of("HIGH", *SEVERITIES)
    ignore_unfixed: bool = False
    ignore_file: str = ".trivyignore"
    cache_dir: str = ""
    skip_db_update: bool = False
    db_repository: str = ""
    skip_dirs: tuple[str, ...] = GENERATED_DIRS
    sbom: bool = True


@dataclass(frozen=True)
class SmokeSection:
    ready_timeout_s: float = seconds(60)
    expected_label: str = "setosa"


@dataclass(frozen=True)
class LocalDeploySection:
    container_name: str = "iris-classifier"
    port: int = ruled(8000, Rule(low=1, high=65535, meaning="a TCP port"))
    ready_timeout_s: float = seconds(60)


@dataclass(frozen=True)
class EcsDeploySection:
    cluster: str = ""
    service: str = ""
    container: str = "iris-classifier"
    region: str = ""
    endpoint_url: str = ""
    timeout_s: float = seconds(540)
    poll_interval_s: float = seconds(10)
    rollback: bool = True
    rollback_timeout_s: float = seconds(300)
    allow_zero_desired: bool = False
    verify_url: str = ""
    verify_timeout_s: float = seconds(300)
    force_new_deployment: bool = False
    keep_revisions: int = count(0, "0: keep every revision")
    # Other containers of the task definition that run the same image (a worker, a migration step).
    extra_containers: tuple[str, ...] = ()
    fail_fast: bool = True


@dataclass(frozen=True)
class DeploySection:
    target: str = "local"
    image: str = ""
    local: LocalDeploySection = field(default_factory=LocalDeploySection)
    ecs: EcsDeploySection = field(default_factory=EcsDeploySection)


@dataclass(frozen=True)
class StoreSection:
    """Where the pipeline's memory lives that several agents share (README, "Shared store").

    ``url``: ``.pipeline`` (the default, the checkout's ``pipeline.state_dir``: nothing shared), a folder,
    ``file:///shared/path`` (an NFS or shared volume, never created) or ``s3://bucket/prefix``.
    """

    url: str = ".pipeline"
    write: bool = True  # false: read the shared cache, never fill it (an untrusted build, a pull request)
    region: str = ""
    endpoint_url: str = ""  # S3-compatible stores (MinIO) and moto
    lease_ttl_s: float = seconds(60)  # a deploy's lease on its target lapses this long after its holder died


@dataclass(frozen=True)
class Secrets:
    """Credentials from the environment; never printed, never written to disk by the pipeline."""

    registry_username: str = ""
    registry_password: str = ""
    # AWS's standard credential variables, for boto3: ``python -m pipeline`` takes them out of its own
    # environment (pipeline.secret_env), where boto3's chain would look for them.
    aws: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # keep secrets out of tracebacks and debug prints
        return f"Secrets(registry_username={self.registry_username!r}, registry_password=<redacted>)"

    def boto3_credentials(self) -> dict[str, str]:
        """Keyword arguments of ``boto3.session.Session``: the AWS key pair (and session token) when both
        halves of the pair are set, else nothing (boto3's own chain: profile, container or instance role)."""
        given = dict(self.aws)
        return given if "aws_access_key_id" in given and "aws_secret_access_key" in given else {}


@dataclass(frozen=True)
class Config:
    pipeline: PipelineSection = field(default_factory=PipelineSection)
    timeouts: TimeoutsSection = field(default_factory=TimeoutsSection)
    lint: LintSection = field(default_factory=LintSection)
    train: TrainSection = field(default_factory=TrainSection)
    promotion: PromotionSection = field(default_factory=PromotionSection)
    test: TestSection = field(default_factory=TestSection)
    image: ImageSection = field(default_factory=ImageSection)
    docker: DockerSection = field(default_factory=DockerSection)
    registry: RegistrySection = field(default_factory=RegistrySection)
    trivy: TrivySection = field(default_factory=TrivySection)
    smoke: SmokeSection = field(default_factory=SmokeSection)
    deploy: DeploySection = field(default_factory=DeploySection)
    store: StoreSection = field(default_factory=StoreSection)
    profile: str = DEFAULT_PROFILE
    root: Path = Path(".")
    sources: Mapping[str, str] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=Secrets, repr=False)
    docker_host: str = ""
    # The environment for the tools the stages run (linters, pytest, Trivy): this process's, without
    # the credentials, so the code under test never sees them. Empty when none was given (tests).
    tool_environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    # The credential values this process was given (registry, AWS): scrubbed from every stage log line
    # and report. Values under 4 characters are left alone (they would turn common words into ***).
    secret_values: tuple[str, ...] = field(default=(), repr=False)

    def get(self, dotted: str) -> Any:
        """The value at a dotted key, e.g. ``deploy.ecs.cluster``."""
        node: Any = self
        for part in dotted.split("."):
            node = getattr(node, part)
        return node

    def path(self, relative: str) -> Path:
        """A configured path resolved against the repository root."""
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    @property
    def report_dir(self) -> Path:
        return self.path(self.pipeline.report_dir)

    @property
    def stage_reports(self) -> Path:
        """Where each stage's log and tool reports go (``reports/stages/``): the one place that says so."""
        return self.report_dir / "stages"

    def stage_log(self, stage: str) -> Path:
        return self.stage_reports / f"{stage}.log"

    @property
    def state_file(self) -> Path:
        return self.path(self.pipeline.state_dir) / "state.json"


# --- the schema, derived from the dataclasses ------------------------------------------------------

_META_FIELDS = {"profile", "root", "sources", "secrets", "docker_host", "tool_environ", "secret_values"}


@dataclass(frozen=True)
class Leaf:
    key: str
    type: Any
    default: Any
    rule: Rule | None = None


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"config field {f.name} has no default")


def _walk(
    cls: type,
    leaf: Callable[[str, Any, dataclasses.Field[Any]], Any],
    section: Callable[[type, dict[str, Any]], Any],
    prefix: str = "",
) -> Any:
    """The one walk of the tree (the Config's bookkeeping fields left out): each leaf becomes
    ``leaf(dotted key, type, field)``, and each section ``section(its class, {field name: what its field
    became})``."""
    hints = typing.get_type_hints(cls)
    parts: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not prefix and f.name in _META_FIELDS:
            continue
        key, hint = prefix + f.name, hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            parts[f.name] = _walk(hint, leaf, section, key + ".")
        else:
            parts[f.name] = leaf(key, hint, f)
    return section(cls, parts)


def _leaves(_cls: type, parts: dict[str, Any]) -> dict[str, Leaf]:
    """A section's leaves, its sections' included, by dotted key."""
    out: dict[str, Leaf] = {}
    for part in parts.values():
        out.update(part if isinstance(part, dict) else {part.key: part})
    return out


def build(values: Mapping[str, Any]) -> Config:
    """A :class:`Config` of the value of each leaf (by dotted key); its bookkeeping fields at their
    defaults."""
    made: Config = _walk(Config, lambda key, _hint, _field: values[key], lambda cls, parts: cls(**parts))
    return made


SCHEMA: dict[str, Leaf] = _walk(
    Config, lambda key, hint, f: Leaf(key, hint, _default(f), f.metadata.get("rule")), _leaves
)
SECTIONS = {k.rsplit(".", 1)[0] for k in SCHEMA if "." in k} | {k.split(".")[0] for k in SCHEMA}
