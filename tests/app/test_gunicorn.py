"""The production server for real: gunicorn with gunicorn.conf.py on a free loopback port."""

from __future__ import annotations

import json
import subprocess
import time
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


def test_an_unwritable_metrics_folder_exits_with_a_clear_line_not_a_traceback(
    model_dir: Path, tmp_path: Path
) -> None:
    """What a --read-only container without a writable /tmp does at start-up."""
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    server: Server = start_gunicorn(
        model_dir, tmp_path / "gunicorn.log", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "a-file" / "prometheus")
    )
    try:
        code = server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail("gunicorn kept running:\n" + server.log())
    assert code == 3, server.log()
    assert "PROMETHEUS_MULTIPROC_DIR" in server.log() and "is not writable (Not a directory)" in server.log()
    assert "--tmpfs /tmp" in server.log()
    assert "Traceback" not in server.log()


def test_bodies_without_content_length_are_read_and_limited(live_server: Server) -> None:
    """Chunked uploads take werkzeug's path (the fast path needs a Content-Length): same answers and limit."""

    def chunks(*parts: bytes):
        yield from parts

    body = json.dumps({"instances": [SETOSA, SETOSA]}).encode()
    answer = requests.post(
        live_server.url + "/api/v1/predict",
        data=chunks(body[:10], body[10:]),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    assert [p["label"] for p in answer.json()["predictions"]] == ["setosa", "setosa"]

    huge = requests.post(
        live_server.url + "/api/v1/predict",
        data=chunks(b'{"instances": [', b" " * (2 * 1024 * 1024), b"]}"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert huge.status_code == 413, huge.text
    assert huge.json()["error"]["code"] == "payload_too_large"


def _listening_sockets(port: int) -> int:
    rows = [line.split() for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]]
    return sum(1 for f in rows if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port)  # 0A: LISTEN


def test_each_worker_listens_on_its_own_socket(live_server: Server) -> None:
    """reuse_port: one listening socket per worker (2 by default), so the kernel spreads new connections."""
    port = int(live_server.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while _listening_sockets(port) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # a worker that is (re)starting opens its socket a moment after it forks
    assert _listening_sockets(port) == 2, live_server.log()
