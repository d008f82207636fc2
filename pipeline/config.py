"""Configuration: ``pipeline.toml`` + profile + environment + ``--set``, parsed and validated once.

The schema is the tree of frozen dataclasses below; every leaf has a type, a default and a dotted key
(``deploy.ecs.cluster``). Loading walks the layers lowest first (README, "Configuration"), checks every key
and value against the schema and remembers which layer set each value, so ``pipeline config`` can say where a
value came from. Nothing else in the pipeline reads ``os.environ``: what stages need from the
environment (registry credentials, AWS settings) is read here and carried in :class:`Config`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import references
from pipeline.errors import ConfigError
from pipeline.secret_env import CREDENTIAL_NAME, CREDENTIAL_VARIABLES, is_secret_name

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


def _leaves(cls: type, prefix: str = "") -> dict[str, Leaf]:
    hints = typing.get_type_hints(cls)
    out: dict[str, Leaf] = {}
    for f in dataclasses.fields(cls):
        if not prefix and f.name in _META_FIELDS:
            continue
        key = prefix + f.name
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            out.update(_leaves(hint, key + "."))
        else:
            out[key] = Leaf(key, hint, _default(f), f.metadata.get("rule"))
    return out


SCHEMA: dict[str, Leaf] = _leaves(Config)
SECTIONS = {k.rsplit(".", 1)[0] for k in SCHEMA if "." in k} | {k.split(".")[0] for k in SCHEMA}

# Environment variables that map onto config keys (besides PIPELINE_SECTION__KEY for any key).
ENV_ALIASES: dict[str, str] = {
    "AWS_ENDPOINT_URL": "deploy.ecs.endpoint_url",
    "AWS_REGION": "deploy.ecs.region",
    "AWS_DEFAULT_REGION": "deploy.ecs.region",
    # Jenkins' names for the branch it checked out (detached). Read in name order: GIT_BRANCH wins.
    "BRANCH_NAME": "image.branch",
    "GIT_BRANCH": "image.branch",
}
# The remote of Jenkins' git plugin: GIT_BRANCH is "origin/main" for branch main.
REMOTE_PREFIX = "origin/"

# boto3's keyword for each of AWS's credential variables (AWS_SECURITY_TOKEN: the older name of the last).
AWS_ENV = {
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "aws_session_token": ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"),
}
# Checked in this order: the first variable present wins (REGISTRY_* before DOCKERHUB_*).
SECRET_ENV = {
    "registry_username": ("REGISTRY_USERNAME", "DOCKERHUB_USERNAME"),
    "registry_password": ("REGISTRY_PASSWORD", "DOCKERHUB_TOKEN"),
}


# What the tools the pipeline runs (linters, pytest, Trivy, hadolint) get of this process's environment: an
# allowlist, so a credential under a name nobody thought of (a Jenkins binding, a cloud SDK's token) never
# reaches the code under test. A name that looks like a credential (...PASSWORD, ...TOKEN, ...SECRET, ..._KEY)
# is left out even under an allowed prefix, such as TRIVY_PASSWORD.
TOOL_ENV_NAMES = frozenset(
    """PATH HOME USER LOGNAME SHELL LANG LANGUAGE TZ TMPDIR TEMP TMP TERM COLUMNS LINES NO_COLOR FORCE_COLOR
    CI VIRTUAL_ENV SOURCE_DATE_EPOCH DOCKER_HOST DOCKER_CERT_PATH DOCKER_TLS_VERIFY DOCKER_CONFIG
    SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY
    http_proxy https_proxy no_proxy all_proxy PYTHONPATH PYTHONHASHSEED PYTHONDONTWRITEBYTECODE PYTHONUTF8
    PYTHONIOENCODING PYTEST_ADDOPTS""".split()
)
TOOL_ENV_PREFIXES = ("LC_", "XDG_", "TRIVY_", "PIP_", "COVERAGE_", "HYPOTHESIS_", "MYPY_", "RUFF_", "BLACK_")


def tool_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` that tools the pipeline runs may see (see ``TOOL_ENV_NAMES``)."""
    return {
        name: value
        for name, value in environ.items()
        if (name in TOOL_ENV_NAMES or name.startswith(TOOL_ENV_PREFIXES))
        and name not in CREDENTIAL_VARIABLES
        and not CREDENTIAL_NAME.search(name)
    }


def _type_name(tp: Any) -> str:
    if tp == tuple[str, ...]:
        return "list of strings"
    return getattr(tp, "__name__", str(tp))


def coerce(leaf: Leaf, value: Any, source: str) -> Any:
    """Check ``value`` against the leaf's type; TOML values must already have the right type."""
    tp = leaf.type

    def bad(expected: str) -> ConfigError:
        return ConfigError(
            f"expected {expected}, got {type(value).__name__} {value!r}", key=leaf.key, source=source
        )

    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if tp == tuple[str, ...]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    raise ConfigError(f"unsupported type {tp!r}", key=leaf.key, source=source)  # pragma: no cover


def parse_text(leaf: Leaf, text: str, source: str) -> Any:
    """Turn a string from ``--set`` or the environment into a value of the leaf's type."""
    tp = leaf.type
    try:
        if tp is bool:
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return coerce(leaf, float(text), source)
        if tp == tuple[str, ...]:
            stripped = text.strip()
            if stripped.startswith("["):
                return coerce(leaf, json.loads(stripped), source)
            return tuple(part.strip() for part in stripped.split(",") if part.strip())
        return text
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {text!r} as {_type_name(tp)}", key=leaf.key, source=source) from exc


def _flatten(table: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        key = prefix + name
        if isinstance(value, dict):
            if key not in SECTIONS:
                raise _unknown(key, source)
            out.update(_flatten(value, source, key + "."))
        else:
            out[key] = value
    return out


# Keys that were settings once, and why they are gone: a config that still sets one is told, not ignored.
REMOVED = {
    "deploy.ecs.mode": "no longer a setting (it was never read): the ECS service's own deployment "
    "configuration decides the strategy (README, 'Deploying to ECS'); delete the line",
}


def _unknown(key: str, source: str) -> ConfigError:
    if key in REMOVED:
        return ConfigError(REMOVED[key], key=key, source=source)
    close = [k for k in SCHEMA if k.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]]
    hint = f"did you mean {close[0]}?" if close else "see 'python -m pipeline config' for the valid keys"
    return ConfigError("unknown key", key=key, source=source, hint=hint)


def _apply(values: dict[str, Any], sources: dict[str, str], flat: dict[str, Any], source: str) -> None:
    for key, value in flat.items():
        leaf = SCHEMA.get(key)
        if leaf is None:
            raise _unknown(key, source)
        values[key] = coerce(leaf, value, source)
        sources[key] = source


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
            hint="save it as UTF-8, as TOML requires",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def parse_assignment(text: str) -> tuple[str, str]:
    """Split a ``--set key=value`` argument."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r} is not KEY=VALUE", hint="e.g. --set trivy.severity=CRITICAL")
    return key, value


def load(
    root: Path,
    *,
    profile: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Config:
    """Build the one :class:`Config` of this invocation, lowest layer first (README, "Configuration")."""
    environ = environ if environ is not None else {}
    path = config_file or root / CONFIG_FILE
    values: dict[str, Any] = {k: leaf.default for k, leaf in SCHEMA.items()}
    sources: dict[str, str] = {k: "default" for k in SCHEMA}

    document = _read_toml(path) if path.exists() else {}
    profiles = document.pop("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError("must be a table of profiles", key="profiles", source=str(path.name))
    _apply(values, sources, _flatten(document, path.name), path.name)

    profile = profile or environ.get("PIPELINE_PROFILE") or DEFAULT_PROFILE
    if profile not in profiles and profile != DEFAULT_PROFILE:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(
            f"unknown profile '{profile}'",
            key="--profile",
            hint=f"profiles in {path.name}: {known}",
        )
    for name, other in sorted(profiles.items()):  # every profile's keys, not only the selected one's
        if not isinstance(other, dict):
            raise ConfigError("must be a table", key=f"profiles.{name}", source=path.name)
        source = f"{path.name} [profiles.{name}]"
        _apply(dict(values), dict(sources), _flatten(other, source), source)
    table = profiles.get(profile, {})
    _apply(
        values,
        sources,
        _flatten(table, f"{path.name} [profiles.{profile}]"),
        f"{path.name} [profiles.{profile}]",
    )

    for name, text in sorted(environ.items()):
        key = ENV_ALIASES.get(name)
        if key is None and name.startswith("PIPELINE_") and "__" in name:
            key = name[len("PIPELINE_") :].lower().replace("__", ".")
        if key is None:
            continue
        leaf = SCHEMA.get(key)
        if leaf is None:
            raise _unknown(key, f"environment variable {name}")
        values[key] = parse_text(leaf, text, f"env {name}")
        sources[key] = f"env {name}"

    for text in overrides:
        key, raw = parse_assignment(text)
        leaf = SCHEMA.get(key)
        if leaf is None:
            raise _unknown(key, "--set")
        values[key] = parse_text(leaf, raw, "--set")
        sources[key] = "--set"

    values["image.branch"] = values["image.branch"].strip().removeprefix(REMOTE_PREFIX)
    _validate(values, sources)
    secrets = Secrets(
        **{
            name: next((environ[var] for var in names if environ.get(var)), "")
            for name, names in SECRET_ENV.items()
        },
        aws=tuple(
            (name, value)
            for name, value in (
                (n, next((environ[v] for v in vs if environ.get(v)), "")) for n, vs in AWS_ENV.items()
            )
            if value
        ),
    )
    sections: Config = _build(Config, values, "")
    return dataclasses.replace(
        sections,
        profile=profile,
        root=root,
        sources=sources,
        secrets=secrets,
        docker_host=environ.get("DOCKER_HOST", ""),
        tool_environ=tool_environment(environ),
        secret_values=secret_values(environ),
    )


def secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The values the scrubber takes out of logs and reports: those of every credential variable
    (``secret_env.is_secret_name``), from 4 characters (shorter would scrub common words), and from 8 for
    a name that only looks like a credential (``TOKENIZERS_PARALLELISM=false`` is not one)."""
    return tuple(
        value
        for name, value in environ.items()
        if is_secret_name(name) and len(value) >= (4 if name in CREDENTIAL_VARIABLES else 8)
    )


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not prefix and f.name in _META_FIELDS:
            continue
        key = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], values, key + ".")
        else:
            kwargs[f.name] = values[key]
    return cls(**kwargs)


def _validate(values: dict[str, Any], sources: dict[str, str]) -> None:
    """Each leaf's :class:`Rule` (choices, ranges), then the names and references (``pipeline.references``).
    ``deploy.target``: the names of ``pipeline.stages.targets.TARGETS``, checked there when a command loads
    the config (``target_class``): that dict is the one list of targets."""
    for key, leaf in SCHEMA.items():
        problem = leaf.rule.problem(values[key]) if leaf.rule else None
        if problem:
            raise ConfigError(problem, key=key, source=sources[key])
    if not values["image.repository"]:
        raise ConfigError("must not be empty", key="image.repository", source=sources["image.repository"])
    _validate_names(values, sources)


def _validate_names(values: dict[str, Any], sources: dict[str, str]) -> None:
    """Every image reference and container name the stages hand to Docker or ECS, against their grammar
    (``pipeline.references``): a name Docker would refuse, or a shell fragment, stops here (exit 2)."""

    def refuse(key: str, value: str, rule: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{value!r} is not {rule}", key=key, source=sources[key], hint=hint)

    if not references.is_name(values["image.repository"]):
        raise refuse("image.repository", values["image.repository"], references.NAME_RULE)
    if values["registry.url"] and not references.is_registry(values["registry.url"]):
        rule = "a registry HOST[:PORT], optionally /NAMESPACE (no scheme: no https://)"
        raise refuse("registry.url", values["registry.url"], rule)
    if not references.is_reference(values["image.base"]):
        raise refuse("image.base", values["image.base"], references.REFERENCE_RULE)
    for template in values["image.tags"]:
        _check_tag_template(template, sources["image.tags"])
    deploy_image = values["deploy.image"]
    digest = references.reference_digest(deploy_image) if deploy_image else None
    if deploy_image and (digest is None or not references.is_sha256_digest(digest)):
        raise refuse(
            "deploy.image",
            deploy_image,
            "a digest reference NAME@sha256:<64 hex digits>",
            hint="a tag can move; deploy what was pushed, by digest",
        )
    name = values["deploy.local.container_name"]
    if not references.is_container_name(name):
        raise refuse("deploy.local.container_name", name, references.CONTAINER_RULE)
    for key in ("deploy.ecs.container", "deploy.ecs.extra_containers"):
        value = values[key]
        for item in value if isinstance(value, tuple) else (value,) if value else ():
            if not references.is_ecs_container_name(item):
                raise refuse(key, item, references.ECS_CONTAINER_RULE)


# What an image.tags template is filled with to check it: the longest a git sha makes, and a branch.
_TAG_SAMPLE = {"git_sha": "0" * 40 + "-dirty", "branch": "main"}


def _check_tag_template(template: str, source: str) -> None:
    name, _, condition = template.partition("@")
    problem = None
    if condition not in ("", "default-branch"):
        problem = f"{template!r}: '@{condition}' is not a condition (only '@default-branch')"
    else:
        try:
            tag = name.format(**_TAG_SAMPLE)
        except (KeyError, IndexError, ValueError):
            problem = f"{template!r}: only {{git_sha}} and {{branch}} can be filled in"
        else:
            if not references.is_tag(tag):
                problem = f"{template!r} does not make {references.TAG_RULE}"
    if problem:
        raise ConfigError(problem, key="image.tags", source=source)


def redacted(config: Config) -> list[tuple[str, Any, str]]:
    """Every key with its value and source, plus the secrets (presence only), for ``pipeline config``."""
    rows = [(key, config.get(key), config.sources.get(key, "default")) for key in SCHEMA]
    for name, names in SECRET_ENV.items():
        value = getattr(config.secrets, name)
        rows.append((f"secrets.{name}", "<set>" if value else "<not set>", " or ".join(names)))
    return rows
