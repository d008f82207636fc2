"""Convert the fitted forest to ONNX bytes the service can run without scikit-learn.

The graph takes ``X`` (float32, N x 4) and returns ``label`` (int64, N) and ``probabilities`` (float32,
N x classes) as plain tensors (no ZipMap), so the service reads one array per batch. The bytes depend only
on the forest and the pinned opset (no timestamps), which is what makes the model version reproducible.
"""

from __future__ import annotations

import hashlib

import numpy as np
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier

from model_training.params import INPUT_NAME, ONNX_TARGET_OPSET

LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"


def to_onnx_bytes(clf: RandomForestClassifier, n_features: int) -> bytes:
    """Serialised ONNX model for ``clf``; raises if the converter produced unexpected tensor names."""
    sample = np.zeros((1, n_features), dtype=np.float32)
    model = to_onnx(
        clf,
        sample,
        options={id(clf): {"zipmap": False}},
        target_opset=ONNX_TARGET_OPSET,
    )
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    if inputs != [INPUT_NAME] or outputs != [LABEL_OUTPUT, PROBABILITIES_OUTPUT]:
        raise RuntimeError(f"unexpected ONNX signature: inputs {inputs}, outputs {outputs}")
    return model.SerializeToString()


def model_version(onnx_bytes: bytes) -> str:
    """Short content hash of the ONNX bytes: the same model always gets the same version."""
    return hashlib.sha256(onnx_bytes).hexdigest()[:12]
