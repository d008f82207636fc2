"""One training run end to end: data -> CV gate -> fit -> evaluate -> ONNX -> parity gate -> publish."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import joblib

from model_training import params
from model_training.artifacts import json_bytes, publish
from model_training.data import load_dataset
from model_training.export import model_version, to_onnx_bytes
from model_training.gates import check_parity, check_quality
from model_training.metadata import build_metadata
from model_training.train import Evaluation, cross_validate, evaluate, fit, split


@dataclass(frozen=True)
class TrainingResult:
    """What a successful run published."""

    output_dir: Path
    model_version: str
    evaluation: Evaluation
    metadata: dict[str, object]

    def summary(self) -> str:
        """The one line printed at the end of a run."""
        return (
            f"cv accuracy {self.evaluation.cv_accuracy_mean:.3f} ± {self.evaluation.cv_accuracy_std:.3f}, "
            f"holdout accuracy {self.evaluation.holdout_accuracy:.3f}, "
            f"macro-F1 {self.evaluation.holdout_macro_f1:.3f}, model {self.model_version}"
        )


def _joblib_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def run_training(output_dir: Path, min_cv_accuracy: float = params.DEFAULT_MIN_CV_ACCURACY) -> TrainingResult:
    """Train, gate and publish; raises :class:`~model_training.gates.GateFailed` before writing anything."""
    dataset = load_dataset()
    data = split(dataset)
    cv_scores = cross_validate(data)
    clf = fit(data)
    evaluation = evaluate(clf, data, cv_scores)
    check_quality(evaluation, min_cv_accuracy)  # before export: a refused model costs no conversion

    onnx_bytes = to_onnx_bytes(clf, dataset.features.shape[1])
    parity = check_parity(clf, onnx_bytes, dataset.features)
    version = model_version(onnx_bytes)
    metadata = build_metadata(
        version=version,
        dataset=dataset,
        evaluation=evaluation,
        parity=parity,
        min_cv_accuracy=min_cv_accuracy,
        training_rows=int(data.train_x.shape[0]),
    )
    # The class the model gives each of the dataset's rows, in its order: the fixed evaluation set on which
    # the pipeline's promotion gate counts how many answers a new model changes against the one deployed.
    metadata["evaluation_predictions"] = [int(label) for label in clf.predict(dataset.features)]
    publish(
        output_dir,
        {
            params.MODEL_FILE_ONNX: onnx_bytes,
            params.MODEL_FILE_JOBLIB: _joblib_bytes(clf),
            params.METADATA_FILE: json_bytes(metadata),
        },
    )
    return TrainingResult(output_dir, version, evaluation, metadata)
