"""``GET /openapi.json``: the OpenAPI 3.1 description of every route, built from the same constants the
validation uses (feature names, bounds, row limit), so the document cannot drift from behaviour."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.schema import FEATURES, MAXIMUM, MIN_EXCLUSIVE, UNIT
from app.state import current_state

bp = Blueprint("openapi", __name__)

_REF = "#/components/schemas/"


def _json(schema_name: str, description: str) -> dict[str, object]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + schema_name}}},
    }


def _errors(*statuses: int) -> dict[str, object]:
    text = {
        400: (
            "Invalid JSON, missing or unknown fields, non-numeric, NaN/Infinity, out-of-range values, "
            "wrong row length."
        ),
        404: "No such route.",
        405: "Method not allowed.",
        413: "Body over the size limit, or more instances than the row limit.",
        415: "Wrong content type.",
        503: "The model is not loaded yet.",
    }
    return {str(status): _json("Error", text[status]) for status in statuses}


def _feature_value() -> dict[str, object]:
    return {
        "type": "number",
        "exclusiveMinimum": MIN_EXCLUSIVE,
        "maximum": MAXIMUM,
        "description": f"Measurement in {UNIT}; a JSON number (not a string or boolean), finite.",
    }


def _schemas(max_rows: int) -> dict[str, object]:
    names = [name for name, _ in FEATURES]
    named = {
        "type": "object",
        "properties": {name: {**_feature_value(), "title": f"{label} ({UNIT})"} for name, label in FEATURES},
        "required": names,
        "additionalProperties": False,
    }
    row = {
        "type": "array",
        "description": "The four values in order: " + ", ".join(names) + ".",
        "prefixItems": [_feature_value() for _ in names],
        "items": False,
        "minItems": len(names),
        "maxItems": len(names),
    }
    return {
        "NamedInstance": named,
        "RowInstance": row,
        "PredictRequest": {
            "type": "object",
            "properties": {
                "instances": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_rows,
                    "items": {"oneOf": [{"$ref": _REF + "NamedInstance"}, {"$ref": _REF + "RowInstance"}]},
                }
            },
            "required": ["instances"],
            "additionalProperties": False,
        },
        "Prediction": {
            "type": "object",
            "properties": {
                "label": {"type": "string", "examples": ["setosa"]},
                "class_id": {"type": "integer", "minimum": 0},
                "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
            },
            "required": ["label", "class_id", "probabilities"],
        },
        "PredictResponse": {
            "type": "object",
            "properties": {
                "predictions": {"type": "array", "items": {"$ref": _REF + "Prediction"}},
                "model_version": {"type": "string"},
            },
            "required": ["predictions", "model_version"],
        },
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                    "required": ["code", "message", "details"],
                }
            },
            "required": ["error"],
        },
        "Health": {"type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]},
        "Ready": {
            "type": "object",
            "properties": {
                "status": {"enum": ["ready", "not ready"]},
                "model_version": {"type": ["string", "null"]},
            },
            "required": ["status", "model_version"],
        },
        "ModelMetadata": {
            "type": "object",
            "description": "The model's metadata.json as written by `python -m model_training`.",
            "properties": {
                "model_version": {"type": "string"},
                "created_at": {"type": "string"},
                "classes": {"type": "array", "items": {"type": "string"}},
                "feature_names": {"type": "array", "items": {"type": "string"}},
                "cv_accuracy_mean": {"type": "number"},
                "cv_accuracy_std": {"type": "number"},
                "holdout_accuracy": {"type": "number"},
                "holdout_macro_f1": {"type": "number"},
            },
            "required": ["model_version", "classes", "feature_names"],
        },
    }


def _form_body() -> dict[str, object]:
    return {
        "type": "object",
        "properties": {name: {"type": "string", "title": f"{label} ({UNIT})"} for name, label in FEATURES},
    }


def _paths() -> dict[str, object]:
    html = {"text/html": {"schema": {"type": "string"}}}
    predict_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF + "PredictRequest"}}},
    }
    return {
        "/": {
            "get": {
                "summary": "The prediction form",
                "responses": {"200": {"description": "HTML form", "content": html}},
            }
        },
        "/predict": {
            "post": {
                "summary": "Form flow: form data answers HTML; a JSON body answers like /api/v1/predict",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": _form_body()},
                        "multipart/form-data": {"schema": _form_body()},
                        "application/json": {"schema": {"$ref": _REF + "PredictRequest"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": (
                            "The page with the species and probabilities (form), or predictions (JSON)"
                        ),
                        "content": {
                            **html,
                            "application/json": {"schema": {"$ref": _REF + "PredictResponse"}},
                        },
                    },
                    "400": {
                        "description": (
                            "Form: the page re-rendered with each error beside its field. JSON: an Error."
                        ),
                        "content": {**html, "application/json": {"schema": {"$ref": _REF + "Error"}}},
                    },
                    **_errors(413, 415, 503),
                },
            }
        },
        "/api/v1/predict": {
            "post": {
                "summary": "Classify a batch of flowers",
                "requestBody": predict_body,
                "responses": {
                    "200": _json("PredictResponse", "One prediction per instance, in order"),
                    **_errors(400, 413, 415, 503),
                },
            }
        },
        "/api/v1/model": {
            "get": {
                "summary": "Metadata of the loaded model",
                "responses": {"200": _json("ModelMetadata", "metadata.json"), **_errors(503)},
            }
        },
        "/health": {
            "get": {"summary": "Liveness", "responses": {"200": _json("Health", "The process answers")}}
        },
        "/ready": {
            "get": {
                "summary": "Readiness: the model is loaded",
                "responses": {"200": _json("Ready", "Ready"), "503": _json("Ready", "Model not loaded")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def build_spec(max_rows: int, model_version: str | None) -> dict[str, object]:
    """The OpenAPI document for a service with this row limit."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Iris classifier",
            "version": "1",
            "description": (
                f"Classifies iris flowers from four measurements in {UNIT} (each 0 < x <= {MAXIMUM:g}). "
                f"Loaded model: {model_version or 'none'}. Every 4xx answers an Error object; "
                "unknown routes answer 404 and wrong methods 405 the same way."
            ),
        },
        "paths": _paths(),
        "components": {"schemas": _schemas(max_rows)},
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the document for this app's settings."""
    state = current_state()
    return jsonify(build_spec(state.settings.max_batch_rows, state.model.version if state.model else None))
