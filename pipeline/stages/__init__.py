"""The stage registry: the ten stages of the README's "Stages", in their order.

The runner, ``list``, ``doctor`` and ``--dry-run`` all read this one list. Stage modules import their
adapters (docker-py, boto3) only inside ``run``, so importing the registry stays cheap.
"""

from __future__ import annotations

from pipeline.stages.base import Stage
from pipeline.stages.build import BuildStage
from pipeline.stages.deploy import DeployStage
from pipeline.stages.lint import LintStage
from pipeline.stages.promotion import PromotionStage
from pipeline.stages.push import PushStage
from pipeline.stages.scan import TrivyFsStage, TrivyImageStage
from pipeline.stages.smoke import SmokeStage
from pipeline.stages.test import TestStage
from pipeline.stages.train import TrainStage

STAGES: tuple[Stage, ...] = (
    LintStage(),
    TrainStage(),
    PromotionStage(),
    TestStage(),
    TrivyFsStage(),
    BuildStage(),
    TrivyImageStage(),
    SmokeStage(),
    PushStage(),
    DeployStage(),
)
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
ORDER: tuple[str, ...] = tuple(stage.name for stage in STAGES)

__all__ = ["BY_NAME", "ORDER", "STAGES", "Stage"]
