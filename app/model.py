"""The model behind one small interface: :meth:`IrisModel.load`, :meth:`IrisModel.predict`, ``metadata``.

The ONNX graph is loaded once (by ``app/serve.py`` in the main process, inherited by the forked workers) and
evaluated with one intra-op thread: requests are tiny, so parallelism comes from workers, not
from ONNX Runtime threads competing for the same two cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from app.schema import FEATURE_NAMES

ONNX_FILE = "iris_model.onnx"
METADATA_FILE = "metadata.json"


class ModelLoadError(RuntimeError):
    """The model directory is missing, unreadable or does not describe the model the service expects."""


class Predictions(NamedTuple):
    """One batch of results: class ids (N) and probabilities (N x classes), rows in request order."""

    class_ids: np.ndarray
    probabilities: np.ndarray


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No spinning threads: they would burn the CPU the other worker needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class IrisModel:
    """A loaded ONNX classifier plus its ``metadata.json``."""

    def __init__(self, session: ort.InferenceSession, metadata: dict[str, object]) -> None:
        self._session = session
        self.metadata = metadata
        self.version = str(metadata["model_version"])
        classes = metadata["classes"]
        if not isinstance(classes, list | tuple):
            raise ValueError("metadata.json: 'classes' must be a list")
        self.class_names: tuple[str, ...] = tuple(str(name) for name in classes)
        self._input_name = session.get_inputs()[0].name
        self._outputs = [output.name for output in session.get_outputs()]

    @classmethod
    def load(cls, model_dir: str | Path) -> IrisModel:
        """Load ``iris_model.onnx`` and ``metadata.json`` from ``model_dir``.

        Raises :class:`ModelLoadError` when either is missing or unreadable.
        """
        directory = Path(model_dir)
        onnx_path, metadata_path = directory / ONNX_FILE, directory / METADATA_FILE
        hint = "train one with `python -m model_training --output-dir DIR` or set MODEL_DIR"
        if not onnx_path.is_file() or not metadata_path.is_file():
            raise ModelLoadError(
                f"no model in {directory.resolve()}: {ONNX_FILE} or {METADATA_FILE} is missing; {hint}"
            )
        try:
            metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
            session = ort.InferenceSession(
                onnx_path.read_bytes(), _session_options(), providers=["CPUExecutionProvider"]
            )
        # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception directly
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise ModelLoadError(f"cannot load the model in {directory.resolve()}: {exc}; {hint}") from exc
        _check_contract(metadata, session, directory)
        return cls(session, metadata)

    def predict(self, rows: np.ndarray) -> Predictions:
        """Classify a float32 (N x 4) array in one ONNX Runtime call."""
        class_ids, probabilities = self._session.run(self._outputs, {self._input_name: rows})
        return Predictions(class_ids, probabilities)  # both tensors: ndarrays already (no ZipMap)


def _check_contract(metadata: object, session: ort.InferenceSession, directory: Path) -> None:
    """Refuse a model whose features, classes or outputs are not what the API promises."""
    problems = []
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{directory / METADATA_FILE} is not a JSON object")
    if not isinstance(metadata.get("model_version"), str):
        problems.append("metadata has no model_version")
    if tuple(metadata.get("feature_names") or ()) != FEATURE_NAMES:
        problems.append(f"features {metadata.get('feature_names')!r} are not {list(FEATURE_NAMES)!r}")
    classes = metadata.get("classes")
    if not isinstance(classes, list) or not classes:
        problems.append("metadata has no classes")
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or inputs[0].shape[-1] != len(FEATURE_NAMES) or len(outputs) != 2:
        problems.append("the ONNX graph is not one (N x 4) input to (label, probabilities) outputs")
    if problems:
        raise ModelLoadError(
            f"the model in {directory.resolve()} does not fit this service: " + "; ".join(problems)
        )
