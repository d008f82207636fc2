"""Liveness, readiness and the model metadata endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from app import create_app


def test_health_is_ok(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_reports_the_model_version(client: FlaskClient, model_dir: Path) -> None:
    version = json.loads((model_dir / "metadata.json").read_text())["model_version"]
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "model_version": version}


def test_ready_is_503_without_a_model_while_health_stays_ok(model_dir: Path) -> None:
    client = create_app({"MODEL_DIR": str(model_dir), "LOAD_MODEL": False}).test_client()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "model_version": None}
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/model").status_code == 503


def test_model_endpoint_serves_the_metadata(client: FlaskClient, model_dir: Path) -> None:
    response = client.get("/api/v1/model")
    assert response.status_code == 200
    body = response.get_json()
    assert body == json.loads((model_dir / "metadata.json").read_text())
    assert body["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
