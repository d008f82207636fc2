"""The production server for real: gunicorn with gunicorn.conf.py on a free loopback port."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.app.conftest import SETOSA, Server, start_gunicorn, wait_ready

pytestmark = pytest.mark.integration


def test_serves_predictions_and_stops_gracefully(model_dir: Path, tmp_path: Path) -> None:
    server = start_gunicorn(model_dir, tmp_path / "gunicorn.log")
    try:
        wait_ready(server)
        ready = requests.get(server.url + "/ready", timeout=5).json()
        response = requests.post(server.url + "/api/v1/predict", json={"instances": [SETOSA]}, timeout=5)
        assert response.status_code == 200
        assert response.json()["predictions"][0]["label"] == "setosa"
        assert response.json()["model_version"] == ready["model_version"]
        assert requests.get(server.url + "/nope", timeout=5).json()["error"]["code"] == "not_found"
    finally:
        code = server.stop()
    assert code == 0, server.log()
    log = server.log()
    assert "Using worker: gthread" in log
    assert '"POST /api/v1/predict HTTP/1.1" 200' in log  # access log on stdout


def test_multiprocess_metrics_add_up_across_workers(model_dir: Path, tmp_path: Path) -> None:
    server = start_gunicorn(
        model_dir, tmp_path / "gunicorn.log", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom")
    )
    try:
        wait_ready(server)
        with requests.Session() as first, requests.Session() as second:  # two connections, likely two workers
            for _ in range(10):
                first.get(server.url + "/health", timeout=5)
                second.get(server.url + "/health", timeout=5)
        metrics = requests.get(server.url + "/metrics", timeout=5).text
    finally:
        server.stop()
    assert 'http_requests_total{endpoint="/health",method="GET",status="200"} 20.0' in metrics
    assert "iris_model_info{model_version=" in metrics


def test_missing_model_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    server: Server = start_gunicorn(tmp_path / "no-model", tmp_path / "gunicorn.log")
    try:
        code = server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail("gunicorn kept running without a model:\n" + server.log())
    assert code != 0
    assert "cannot start the service: no model in" in server.log()
    assert "python -m model_training" in server.log()
