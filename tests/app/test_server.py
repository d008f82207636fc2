"""The production server for real: ``python -m app.serve`` (granian) on a free loopback port."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.app.conftest import SETOSA, Server, start_server, wait_ready
from tests.app.test_fuzz import HOSTILE_JSON

pytestmark = pytest.mark.integration


def test_serves_predictions_and_stops_gracefully(model_dir: Path, tmp_path: Path) -> None:
    server = start_server(model_dir, tmp_path / "server.log")
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
    assert "Starting granian" in log and "Granian shutdown completed" in log
    assert re.search(
        r'^127\.0\.0\.1 "POST /api/v1/predict HTTP/1\.1" 200 [\d.]+ms$', log, re.M
    ), log  # access log


def _worker_pids(server: Server) -> set[int]:
    path = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return {int(pid) for pid in path.read_text(encoding="ascii").split()}


def _wait_for_workers(server: Server, count: int, gone: int | None = None) -> set[int]:
    """Granian spawns its workers one after another, and the first one answers /ready before the next
    exists: wait (at most 15 s) until ``count`` workers run, ``gone`` not among them."""
    deadline = time.monotonic() + 15
    workers = _worker_pids(server)
    while time.monotonic() < deadline and (gone in workers or len(workers) != count):
        time.sleep(0.1)
        workers = _worker_pids(server)
    return workers


def test_the_model_is_loaded_once_and_a_killed_worker_is_replaced_without_loading_it_again(
    model_dir: Path, tmp_path: Path
) -> None:
    server = start_server(model_dir, tmp_path / "server.log")
    try:
        wait_ready(server)
        workers = _wait_for_workers(server, 2)
        assert len(workers) == 2, server.log()
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        workers = _wait_for_workers(server, 2, gone=victim)
        assert victim not in workers and len(workers) == 2, server.log()
        for _ in range(6):  # new connections land on both workers, the replacement included
            answer = requests.post(server.url + "/api/v1/predict", json={"instances": [SETOSA]}, timeout=5)
            assert answer.status_code == 200 and answer.json()["predictions"][0]["label"] == "setosa"
    finally:
        assert server.stop() == 0, server.log()
    loads = re.findall(r"^\[[^]]+\] \[(\d+)\] \[INFO\] model \w+ loaded from ", server.log(), re.M)
    assert loads == [str(server.process.pid)], server.log()  # once, in the main process: workers inherit it


def test_sigterm_lets_the_request_in_flight_finish(model_dir: Path, tmp_path: Path) -> None:
    """ECS stops a task with SIGTERM, then SIGKILL 30 s later: a request being served must still get its
    answer. Here it is half-sent when SIGTERM arrives, and its body completes a second later."""
    server = start_server(model_dir, tmp_path / "server.log")
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps({"instances": [SETOSA]}).encode()
    try:
        wait_ready(server)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.5)  # the app is reading the body in a worker thread
            sigterm_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            sock.sendall(body[10:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        code = server.process.wait(timeout=25)
        stopped_after = time.monotonic() - sigterm_at
    finally:
        server.stop()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    assert json.loads(payload)["predictions"][0]["label"] == "setosa"
    assert code == 0 and stopped_after < 20, (code, stopped_after, server.log())  # SERVER_GRACEFUL_TIMEOUT


def test_multiprocess_metrics_add_up_across_workers(model_dir: Path, tmp_path: Path) -> None:
    stale = tmp_path / "prom" / "counter_99999.db"  # a previous run's worker: its counts must not be added
    stale.parent.mkdir()
    stale.write_bytes(b"left over")
    server = start_server(model_dir, tmp_path / "server.log", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    try:
        wait_ready(server)
        with requests.Session() as first, requests.Session() as second:  # two connections, likely two workers
            for _ in range(10):
                first.get(server.url + "/health", timeout=5)
                second.get(server.url + "/health", timeout=5)
        metrics = requests.get(server.url + "/metrics", timeout=5).text
    finally:
        server.stop()
    assert not stale.exists()
    assert 'http_requests_total{endpoint="/health",method="GET",status="200"} 20.0' in metrics
    assert "iris_model_info{model_version=" in metrics


def exit_code(server: Server) -> int:
    """The code of a server expected to stop by itself at start-up; fails the test if it keeps running."""
    try:
        return server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.stop()
        raise AssertionError("the server kept running:\n" + server.log()) from None


def test_missing_model_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    server: Server = start_server(tmp_path / "no-model", tmp_path / "server.log")
    code = exit_code(server)
    assert code == 1
    assert "cannot start the service: no model in" in server.log()
    assert "python -m model_training" in server.log()
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SERVER_WORKERS", "two", "SERVER_WORKERS must be a whole number, not 'two'"),
        ("BIND", "localhost", "BIND must be HOST:PORT, not 'localhost'"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of critical, error, warning, info, debug, not 'loud'"),
        ("SERVER_BODY_TIMEOUT", "0", "SERVER_BODY_TIMEOUT must be between 1 and 3600, not 0"),
        ("SERVER_BODY_MIN_RATE", "fast", "SERVER_BODY_MIN_RATE must be a whole number, not 'fast'"),
        ("MAX_BATCH_ROWS", "-5", "MAX_BATCH_ROWS must be a positive integer, got '-5'"),
    ],
)
def test_a_bad_server_setting_exits_2_naming_it(
    model_dir: Path, tmp_path: Path, name: str, value: str, message: str
) -> None:
    server = start_server(model_dir, tmp_path / "server.log", **{name: value})
    code = exit_code(server)
    assert code == 2, server.log()
    assert server.log().strip() == f"cannot start the service: {message}"


def test_an_unwritable_metrics_folder_exits_with_a_clear_line_not_a_traceback(
    model_dir: Path, tmp_path: Path
) -> None:
    """What a --read-only container without a writable /tmp does at start-up."""
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    server: Server = start_server(
        model_dir, tmp_path / "server.log", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "a-file" / "prometheus")
    )
    code = exit_code(server)
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
    """SO_REUSEPORT: one listening socket per worker (2 by default), so the kernel spreads new connections
    (with one shared socket, whichever worker woke first took a burst of keep-alive connections)."""
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


def _assert_the_service_answers_fast(server: Server) -> None:
    """/health five times, each within a second (the image's HEALTHCHECK allows 3 s), then a prediction."""
    for _ in range(5):
        asked = time.monotonic()
        answer = requests.get(server.url + "/health", timeout=1)
        assert answer.status_code == 200
        assert time.monotonic() - asked < 1.0
        time.sleep(0.2)
    prediction = requests.post(server.url + "/api/v1/predict", json={"instances": [SETOSA]}, timeout=1)
    assert prediction.json()["predictions"][0]["label"] == "setosa"


def test_slow_clients_do_not_stall_the_service_and_are_closed_at_the_header_deadline(
    model_dir: Path, tmp_path: Path
) -> None:
    """20 connections trickling their headers: more than the 2 workers x 4 threads. /health still answers
    within a second (the image's HEALTHCHECK allows 3 s), and the slow ones are closed after
    SERVER_HEADER_TIMEOUT."""
    server = start_server(model_dir, tmp_path / "server.log", SERVER_HEADER_TIMEOUT="4")
    slow = None
    try:
        wait_ready(server)
        slow = SlowClients(server.url, 20)
        time.sleep(1.0)  # every slow connection is accepted and trickling
        _assert_the_service_answers_fast(server)
        assert slow.closed_by_server() == 0  # still within their 4 s
        time.sleep(3.5)
        assert slow.closed_by_server() == 20
    finally:
        if slow is not None:
            slow.stop()
        server.stop()


class SlowBodies(SlowClients):
    """``count`` requests whose headers are complete (``Content-Length: 100000``), then one body byte every
    ``every_s``."""

    def __init__(self, url: str, count: int, every_s: float = 1.0, length: int = 100000) -> None:
        host, port = url.removeprefix("http://").split(":")
        head = (
            b"POST /api/v1/predict HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {length}\r\n\r\n{{".encode()
        )
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(head)
            self.sockets.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, args=(every_s,), daemon=True)
        self._thread.start()

    def answered(self) -> int:
        """How many got something from the server (an answer or the end of the connection), right now."""
        readable, _, _ = select.select(self.sockets, [], [], 0.2)
        return len(readable)

    def answers(self) -> list[bytes]:
        """Each connection's status line, read until the server closed it (b"" if it got none; "open" if the
        server did not close it within 2 s)."""
        lines = []
        for sock in self.sockets:
            sock.settimeout(2)
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except TimeoutError:
                data = b"open " + data
            except OSError:
                pass
            lines.append(data.split(b"\r\n", 1)[0])
        return lines


def test_slow_bodies_do_not_stall_the_service_and_get_a_408_at_the_body_deadline(
    model_dir: Path, tmp_path: Path
) -> None:
    """200 requests whose body trickles in at a byte a second: granian's WSGI interface held a thread for
    each (8 stopped /health). /health still answers within a second, and each slow one gets a 408 and is
    closed at SERVER_BODY_TIMEOUT (plus a second per SERVER_BODY_MIN_RATE bytes received: 500, so ~0 here)."""
    server = start_server(model_dir, tmp_path / "server.log", SERVER_BODY_TIMEOUT="4")
    slow = None
    try:
        wait_ready(server)
        slow = SlowBodies(server.url, 200)
        started = time.monotonic()
        time.sleep(1.0)  # every slow request is in, its headers complete
        _assert_the_service_answers_fast(server)
        assert time.monotonic() - started < 3.5
        assert slow.answered() == 0  # still within their 4 s
        time.sleep(max(0.0, started + 5.5 - time.monotonic()))
        assert slow.answered() == 200
        assert set(slow.answers()) == {b"HTTP/1.1 408 Request Timeout"}  # and each connection closed
        assert requests.get(server.url + "/health", timeout=1).status_code == 200
    finally:
        if slow is not None:
            slow.stop()
        server.stop()


def test_a_small_body_gets_its_size_at_the_minimum_rate_up_front_and_no_more(
    model_dir: Path, tmp_path: Path
) -> None:
    """A declared body up to 4 KiB is read whole, its deadline set when its headers are in: the timeout plus
    its size at SERVER_BODY_MIN_RATE (1000 bytes at 500 B/s: 2 s more). Trickled a byte a second, it gets
    its 408 then (within the watchdog's 0.5 s), not later."""
    server = start_server(model_dir, tmp_path / "server.log", SERVER_BODY_TIMEOUT="2")
    slow = None
    try:
        wait_ready(server)
        slow = SlowBodies(server.url, 5, length=1000)
        started = time.monotonic()
        time.sleep(3.0)
        assert slow.answered() == 0  # within its 2 + 2 s
        time.sleep(max(0.0, started + 5.5 - time.monotonic()))
        assert set(slow.answers()) == {b"HTTP/1.1 408 Request Timeout"}
    finally:
        if slow is not None:
            slow.stop()
        server.stop()


def test_a_body_faster_than_the_minimum_rate_is_read_past_the_body_timeout(
    model_dir: Path, tmp_path: Path
) -> None:
    """Each SERVER_BODY_MIN_RATE bytes received give the body one more second: a 6.7 KB body sent at
    2 KB/s over 3 s gets its 200 with SERVER_BODY_TIMEOUT=1 (500 B/s adds 2 s per KB)."""
    server = start_server(model_dir, tmp_path / "server.log", SERVER_BODY_TIMEOUT="1")
    try:
        wait_ready(server)
        host, port = server.url.removeprefix("http://").split(":")
        body = json.dumps({"instances": [SETOSA] * 80}).encode()
        assert len(body) > 6000
        started = time.monotonic()
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            for offset in range(0, len(body), 400):
                sock.sendall(body[offset : offset + 400])
                time.sleep(0.2)
            answer = sock.recv(65536)
        assert time.monotonic() - started > 2.5
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    finally:
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


def test_oversized_headers_are_refused_and_the_service_goes_on(live_server: Server) -> None:
    """64 KiB for the request line and headers, 100 headers at most: a 431, and nothing else is affected."""
    fits = requests.get(live_server.url + "/health", headers={"X-Big": "x" * 60_000}, timeout=10)
    huge = requests.get(live_server.url + "/health", headers={"X-Big": "x" * 100_000}, timeout=10)
    many = requests.get(live_server.url + "/health", headers={f"X-{i}": "y" for i in range(120)}, timeout=10)
    assert (fits.status_code, huge.status_code, many.status_code) == (200, 431, 431)
    assert requests.get(live_server.url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize("raw", HOSTILE_JSON, ids=lambda raw: f"{raw[:30]!r}...{len(raw)}B")
def test_hostile_json_payloads_are_4xx_through_the_server(live_server: Server, raw: bytes) -> None:
    """The hostile-input suite of test_fuzz.py, through the real server rather than Flask's test client."""
    answer = requests.post(
        live_server.url + "/api/v1/predict",
        data=raw,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= answer.status_code < 500, answer.text[:300]
    assert answer.json()["error"]["code"], answer.text[:300]
