"""``train``: run ``python -m model_training`` and surface its metrics; cached when nothing changed.

Training runs in a child process so the pipeline never imports scikit-learn itself. The stage is
``cached`` when the training code, the quality threshold and the library versions (the Iris data is
bundled with scikit-learn, so its version stands for the data) hash to the same inputs as the model
in ``model/``, and that model's ONNX file still hashes to the recorded model version.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import GateFailed, StageFailed
from pipeline.stages.base import CACHED, Stage, StageContext, StageResult

_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")
MODEL_FILE = "iris_model.onnx"
METADATA_FILE = "metadata.json"


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def inputs_hash(config: Config) -> str:
    """A hash over everything that determines the trained model."""
    digest = hashlib.sha256()
    for entry in sorted(config.train.inputs):
        base = config.path(entry)
        files = (
            sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if base.is_dir()
            else [base]
        )
        for file in files:
            digest.update(str(file.relative_to(config.root)).encode())
            digest.update(file.read_bytes() if file.exists() else b"<missing>")
    digest.update(
        json.dumps(
            {"min_cv_accuracy": config.train.min_cv_accuracy, "libraries": _library_versions()},
            sort_keys=True,
        ).encode()
    )
    return digest.hexdigest()


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


class TrainStage(Stage):
    name = "train"
    description = "train, evaluate and export the model to ONNX; quality and parity gates"

    def plan(self, config: Config) -> list[str]:
        return [
            f"{Path(sys.executable).name} -m model_training --output-dir {config.train.output_dir} "
            f"--min-cv-accuracy {config.train.min_cv_accuracy}",
            "cached when model_training/, the threshold and library versions are unchanged",
        ]

    def run(self, ctx: StageContext) -> StageResult:
        model_dir = ctx.config.path(ctx.config.train.output_dir)
        wanted = inputs_hash(ctx.config)
        current = read_model_metadata(model_dir)
        previous = ctx.state.record(self.name)
        if (
            current is not None
            and previous is not None
            and previous.outputs.get("inputs_hash") == wanted
            and previous.outputs.get("model_version") == current.get("model_version")
        ):
            ctx.log(
                f"inputs unchanged (hash {wanted[:12]}) and {model_dir} "
                f"holds model {current['model_version']}"
            )
            ctx.record(**previous.outputs)
            return StageResult(
                status=CACHED, summary=metrics_summary(current), artifacts=self._artifacts(model_dir, current)
            )

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
                _last_line(res.output) or "model_training refused the model",
                hint="see reports/stages/train.log",
            )
        if res.returncode != 0:
            raise StageFailed(f"model_training exited {res.returncode}: {_last_line(res.output)}")
        meta = read_model_metadata(model_dir)
        if meta is None:
            raise StageFailed(f"model_training finished but {model_dir} holds no readable model and metadata")
        ctx.record(
            inputs_hash=wanted,
            model_version=meta["model_version"],
            model_dir=str(model_dir),
            cv_accuracy_mean=meta["cv_accuracy_mean"],
        )
        return StageResult(summary=metrics_summary(meta), artifacts=self._artifacts(model_dir, meta))

    @staticmethod
    def _artifacts(model_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "model_version": meta["model_version"],
            "model": str(model_dir / MODEL_FILE),
            "metadata": str(model_dir / METADATA_FILE),
        }


def _last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
