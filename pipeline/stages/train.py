"""``train``: run ``python -m model_training`` and surface its metrics.

Training runs in a child process so the pipeline never imports scikit-learn itself. Its inputs are
the training code, the threshold and the library versions (the Iris data is bundled with
scikit-learn, so its version stands for the data); with the same inputs the runner reports it
``cached``, provided ``model/`` still holds the model it recorded (its ONNX file hashes to that
model version).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.cache import Inputs
from pipeline.config import Config
from pipeline.errors import GateFailed, StageFailed
from pipeline.outputs import TrainOutputs
from pipeline.stages.base import Stage, StageContext, StageResult
from pipeline.state import StageRecord

LIBRARIES = ("python", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")
MODEL_FILE = "iris_model.onnx"
METADATA_FILE = "metadata.json"


def read_model_metadata(model_dir: Path) -> dict[str, Any] | None:
    """``model/metadata.json`` when it exists and its ONNX file matches its model version."""
    try:
        meta = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
        onnx_hash = hashlib.sha256((model_dir / MODEL_FILE).read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not onnx_hash.startswith(str(meta.get("model_version", "-"))):
        return None
    return meta


def metrics_summary(meta: dict[str, Any]) -> str:
    return (
        f"cv accuracy {meta['cv_accuracy_mean']:.3f} ± {meta['cv_accuracy_std']:.3f}, "
        f"holdout {meta['holdout_accuracy']:.3f}, model {meta['model_version']}"
    )


def model_missing(config: Config, selected: set[str]) -> tuple[str, str] | None:
    """For a stage that reads the trained model: ``("train", what)`` when there is none and ``train`` is not
    selected to make it (``Stage.missing_input``), else None."""
    if not (config.path(config.train.output_dir) / MODEL_FILE).exists() and "train" not in selected:
        return "train", f"a trained model in {config.train.output_dir}/"
    return None


class TrainStage(Stage):
    name = "train"
    description = "train, evaluate and export the model to ONNX; quality and parity gates"
    outputs = TrainOutputs
    cacheable = True

    def inputs(self, config: Config) -> Inputs:
        return Inputs(files=config.train.inputs, config=("train",), tools=LIBRARIES)

    def plan(self, config: Config) -> list[str]:
        return [
            f"{Path(sys.executable).name} -m model_training --output-dir {config.train.output_dir} "
            f"--min-cv-accuracy {config.train.min_cv_accuracy}",
        ]

    def produces(self, config: Config) -> tuple[Path, ...]:
        return (config.path(config.train.output_dir),)

    def reuse(self, ctx: StageContext, record: StageRecord) -> StageResult | None:
        model_dir = ctx.config.path(ctx.config.train.output_dir)
        current = read_model_metadata(model_dir)
        recorded = record.outputs.get("model_version")
        if current is None or current.get("model_version") != recorded:
            ctx.log(f"{model_dir} no longer holds model {recorded}")
            return None
        return super().reuse(ctx, record)

    def run(self, ctx: StageContext) -> StageResult:
        model_dir = ctx.config.path(ctx.config.train.output_dir)
        ctx.progress("training")
        res = ctx.run_tool(
            [
                sys.executable,
                "-m",
                "model_training",
                "--output-dir",
                str(model_dir),
                "--min-cv-accuracy",
                str(ctx.config.train.min_cv_accuracy),
            ],
        )
        if res.returncode == 1:
            raise GateFailed(
                res.last_line or "model_training refused the model",
                hint=f"see {ctx.log_path}",
            )
        if res.returncode != 0:
            raise StageFailed(f"model_training exited {res.returncode}: {res.last_line}")
        meta = read_model_metadata(model_dir)
        if meta is None:
            raise StageFailed(f"model_training finished but {model_dir} holds no readable model and metadata")
        ctx.record(
            TrainOutputs(
                model_version=meta["model_version"],
                model_dir=str(model_dir),
                cv_accuracy_mean=meta["cv_accuracy_mean"],
            )
        )
        return StageResult(summary=metrics_summary(meta), artifacts=self._artifacts(model_dir, meta))

    @staticmethod
    def _artifacts(model_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "model_version": meta["model_version"],
            "model": str(model_dir / MODEL_FILE),
            "metadata": str(model_dir / METADATA_FILE),
        }
