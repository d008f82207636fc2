"""Deploy targets, by the name ``deploy.target`` gives them; each is one module (``base`` says what a target
is). ``pipeline.stages.deploy`` and ``pipeline rollback`` pick theirs from :data:`TARGETS`."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.stages.targets.base import Deployed, DeployTarget, Release, RolledBack
from pipeline.stages.targets.ecs import EcsTarget
from pipeline.stages.targets.local import LocalTarget

TARGETS: dict[str, type[DeployTarget]] = {target.name: target for target in (LocalTarget, EcsTarget)}


def target_class(config: Config) -> type[DeployTarget]:
    """The class of the configured target (config validation allows only the names of :data:`TARGETS`)."""
    return TARGETS[config.deploy.target]


__all__ = ["TARGETS", "DeployTarget", "Deployed", "Release", "RolledBack", "target_class"]
