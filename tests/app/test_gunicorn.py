"""The production server for real: gunicorn with gunicorn.conf.py on a free loopback port."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import threading
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
    assert "Using worker: app.worker.HeaderFirstWorker" in log
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


class SlowClients:
    """``count`` connections that send a request line, then one header byte every ``every_s``, forever."""

    def __init__(self, url: str, count: int, every_s: float = 0.3) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sockets = [socket.create_connection((host, int(port)), timeout=5) for _ in range(count)]
        for sock in self.sockets:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, args=(every_s,), daemon=True)
        self._thread.start()

    def _trickle(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            for sock in self.sockets:
                try:
                    sock.send(b"x")
                except OSError:
                    pass

    def closed_by_server(self) -> int:
        """How many the server closed: one look at all of them at once (0.2 s), so the count is of now."""
        readable, _, _ = select.select(self.sockets, [], [], 0.2)
        closed = 0
        for sock in readable:
            try:
                closed += sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except OSError:
                closed += 1
        return closed

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def test_slow_clients_do_not_stall_the_service_and_are_closed_at_the_header_deadline(
    model_dir: Path, tmp_path: Path
) -> None:
    """20 connections trickling their headers: more than the 2 workers x 4 threads hold. /health still
    answers within a second (the image's HEALTHCHECK allows 3 s), and the slow ones are closed after
    GUNICORN_HEADER_TIMEOUT."""
    server = start_gunicorn(model_dir, tmp_path / "gunicorn.log", GUNICORN_HEADER_TIMEOUT="4")
    slow = None
    try:
        wait_ready(server)
        slow = SlowClients(server.url, 20)
        time.sleep(1.0)  # every slow connection is accepted and trickling
        for _ in range(5):
            started = time.monotonic()
            answer = requests.get(server.url + "/health", timeout=1)
            assert answer.status_code == 200
            assert time.monotonic() - started < 1.0
            time.sleep(0.2)
        prediction = requests.post(server.url + "/api/v1/predict", json={"instances": [SETOSA]}, timeout=1)
        assert prediction.json()["predictions"][0]["label"] == "setosa"
        assert slow.closed_by_server() == 0  # still within their 4 s
        time.sleep(3.5)
        assert slow.closed_by_server() == 20
    finally:
        if slow is not None:
            slow.stop()
        server.stop()


def test_headers_in_pieces_and_keep_alive_requests_are_answered(live_server: Server) -> None:
    host, port = live_server.url.removeprefix("http://").split(":")
    body = json.dumps({"instances": [SETOSA]}).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        for _ in range(3):  # three requests on one kept-alive connection, each sent in three pieces
            head = "POST /api/v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            sock.sendall(head.encode())
            time.sleep(0.1)
            sock.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode())
            time.sleep(0.1)
            sock.sendall(body)
            answer = sock.recv(65536)
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            head, _, rest = answer.partition(b"\r\n\r\n")
            length = int(
                next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(b":")[
                    1
                ]
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 OK"), head
            assert json.loads(rest)["predictions"][0]["label"] == "setosa"
