"""The bare baseline of ``bench_service.py``: the smallest Flask app that answers a prediction.

It parses the JSON body, calls the same ONNX model once (with the service's session options) and returns the
label and probabilities of each row: no validation, metrics, logging or error handling. Served the standard
way: ``gunicorn --workers 2 --threads 4 --worker-class gthread benchmarks.bare_app:app`` with ``MODEL_DIR``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
from flask import Flask, jsonify, request

_MODEL_DIR = Path(os.environ.get("MODEL_DIR", "model"))
_OPTIONS = ort.SessionOptions()
_OPTIONS.intra_op_num_threads = 1
_OPTIONS.inter_op_num_threads = 1
_OPTIONS.add_session_config_entry("session.intra_op.allow_spinning", "0")
_SESSION = ort.InferenceSession(
    str(_MODEL_DIR / "iris_model.onnx"), _OPTIONS, providers=["CPUExecutionProvider"]
)
_INPUT = _SESSION.get_inputs()[0].name
_OUTPUTS = [output.name for output in _SESSION.get_outputs()]
_CLASSES = json.loads((_MODEL_DIR / "metadata.json").read_text(encoding="utf-8"))["classes"]

app = Flask(__name__)


@app.post("/api/v1/predict")
def predict():  # type: ignore[no-untyped-def]
    rows = np.asarray(request.get_json()["instances"], dtype=np.float32)
    class_ids, probabilities = _SESSION.run(_OUTPUTS, {_INPUT: rows})
    return jsonify(
        predictions=[
            {"label": _CLASSES[int(i)], "probabilities": dict(zip(_CLASSES, map(float, p), strict=True))}
            for i, p in zip(class_ids, probabilities, strict=True)
        ]
    )


@app.get("/ready")
def ready():  # type: ignore[no-untyped-def]
    return jsonify(status="ready")
