"""Turn validated rows into the response body (docs/api.md, "Predictions"), for the API and the web page."""

from __future__ import annotations

import numpy as np

from app.metrics import Metrics
from app.model import IrisModel

PROBABILITY_DECIMALS = 6


def predict_rows(model: IrisModel, rows: np.ndarray, metrics: Metrics) -> list[dict[str, object]]:
    """One model run for the whole batch, then ``[{"label", "class_id", "probabilities"}, ...]``."""
    result = model.predict(rows)
    names = model.class_names
    # float32 -> rounded float64 so clients see 0.97, not 0.9700000286102295
    probabilities = result.probabilities.astype(np.float64).round(PROBABILITY_DECIMALS).tolist()
    class_ids = result.class_ids.tolist()
    metrics.count_predictions(names[class_id] for class_id in class_ids)
    return [
        {"label": names[class_id], "class_id": class_id, "probabilities": dict(zip(names, row, strict=True))}
        for class_id, row in zip(class_ids, probabilities, strict=True)
    ]


def prediction_body(model: IrisModel, rows: np.ndarray, metrics: Metrics) -> dict[str, object]:
    """The full API response body."""
    return {"predictions": predict_rows(model, rows, metrics), "model_version": model.version}
