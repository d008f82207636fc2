"""The JSON API: predictions, model metadata, liveness and readiness (docs/api.md)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.predict import prediction_body
from app.state import current_state
from app.validation import json_body, parse_instances

bp = Blueprint("api", __name__)


def predict_json() -> Response:
    """Validate a JSON predict body and answer it; also serves JSON posted to ``/predict``."""
    state = current_state()
    model = state.ready_model()
    rows = parse_instances(json_body(request), state.settings.max_batch_rows)
    return jsonify(prediction_body(model, rows, state.metrics))


@bp.post("/api/v1/predict")
def predict() -> Response:
    """Batch prediction: ``{"instances": [...]}`` -> ``{"predictions": [...], "model_version": ...}``."""
    return predict_json()


@bp.get("/api/v1/model")
def model_metadata() -> Response:
    """The model's ``metadata.json`` as trained: version, features, classes, metrics, library versions."""
    return jsonify(current_state().ready_model().metadata)


@bp.get("/health")
def health() -> Response:
    """Liveness: the process answers HTTP. Deliberately independent of the model."""
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    """Readiness: 200 with the model version once the model is loaded, 503 before."""
    model = current_state().model
    if model is None:
        return jsonify({"status": "not ready", "model_version": None}), 503
    return jsonify({"status": "ready", "model_version": model.version}), 200
