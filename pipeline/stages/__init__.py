"""The stage registry: the nine stages of SPEC §2, in their order.

The runner, ``list``, ``doctor`` and ``--dry-run`` all read this one list. Stage modules import their
adapters (docker-py, boto3) only inside ``run``, so importing the registry stays cheap.
"""

from __future__ import annotations

from pipeline.stages.base import NotImplementedStage, Stage
from pipeline.stages.lint import LintStage
from pipeline.stages.test import TestStage
from pipeline.stages.train import TrainStage


def _placeholder(name: str, needs: tuple[str, ...], description: str) -> Stage:
    cls = type(
        name.replace("-", "_").title().replace("_", "") + "Stage",
        (NotImplementedStage,),
        {"name": name, "needs": needs, "description": description},
    )
    return cls()


def _all() -> list[Stage]:
    return [
        LintStage(),
        TrainStage(),
        TestStage(),
        _placeholder("trivy-fs", (), "Trivy on the source tree"),
        _placeholder("build", ("lint", "test", "trivy-fs"), "docker-py build of the service image"),
        _placeholder("trivy-image", ("build",), "Trivy on the built image"),
        _placeholder("smoke", ("build",), "run the built image and check a known prediction"),
        _placeholder("push", ("trivy-image", "smoke"), "push the image; verify the digest in the registry"),
        _placeholder("deploy", ("push",), "deploy to the local engine or AWS ECS"),
    ]


STAGES: tuple[Stage, ...] = tuple(_all())
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
ORDER: tuple[str, ...] = tuple(stage.name for stage in STAGES)

__all__ = ["BY_NAME", "ORDER", "STAGES", "Stage"]
