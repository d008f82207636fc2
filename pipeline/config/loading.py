"""Loading the configuration: ``pipeline.toml`` + profile + environment + ``--set``, lowest layer first
(README, "Configuration"), each value checked against the schema (:mod:`pipeline.config.schema`) with the
layer that set it remembered, so ``pipeline config`` can say where a value came from. Nothing else in the
pipeline reads ``os.environ``: what stages need from the environment (registry credentials, AWS settings) is
read here and carried in :class:`Config`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline import references
from pipeline.config.schema import (
    CONFIG_FILE,
    DEFAULT_PROFILE,
    SCHEMA,
    SECTIONS,
    Config,
    Leaf,
    Secrets,
    build,
)
from pipeline.errors import ConfigError
from pipeline.tool_env import secret_values, tool_environment

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


def _refuse_empty_profile(
    profile: str | None, environ: Mapping[str, str], profiles: Mapping[str, Any]
) -> None:
    """Refuse (exit 2) an empty or blank ``--profile``, or ``$PIPELINE_PROFILE`` when it is the one read.

    Empty is what a CI system passes when it lost the value (Jenkins leaves parameters out of the
    environment on a job's first build): taking it as "the default profile" would run the wrong one.
    """
    if profile is not None:
        what, fix, value = "--profile is empty", "or leave the option out", profile
    elif "PIPELINE_PROFILE" in environ:
        what, fix, value = (
            "PIPELINE_PROFILE is set but empty",
            "or unset the variable",
            environ["PIPELINE_PROFILE"],
        )
    else:
        return
    if not value.strip():
        names = list(profiles) if DEFAULT_PROFILE in profiles else [DEFAULT_PROFILE, *profiles]
        raise ConfigError(f"{what}: name a profile of {CONFIG_FILE} ({', '.join(names)}), {fix}")


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

    _refuse_empty_profile(profile, environ, profiles)
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
    sections = build(values)
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
