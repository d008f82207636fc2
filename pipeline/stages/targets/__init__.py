"""Deploy targets, by the name ``deploy.target`` gives them; each is one module (``base`` says what a target
is). ``pipeline.stages.deploy`` and ``pipeline rollback`` pick theirs from :data:`TARGETS`."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.stages.targets.base import Deployed, DeployTarget, Release, RolledBack
from pipeline.stages.targets.ecs import EcsTarget
from pipeline.stages.targets.local import LocalTarget

TARGETS: dict[str, type[DeployTarget]] = {target.name: target for target in (LocalTarget, EcsTarget)}


def target_class(config: Config) -> type[DeployTarget]:
    """The class of the configured target; :class:`ConfigError` (exit 2) for a name :data:`TARGETS` lacks.
    The CLI calls it when it loads the config, so a bad ``deploy.target`` stops every command at once."""
    try:
        return TARGETS[config.deploy.target]
    except KeyError:
        raise ConfigError(
            f"{config.deploy.target!r} is not one of {', '.join(TARGETS)}",
            key="deploy.target",
            source=config.sources.get("deploy.target"),
        ) from None


__all__ = ["TARGETS", "DeployTarget", "Deployed", "Release", "RolledBack", "target_class"]
