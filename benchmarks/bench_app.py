"""The Flask app's own cost per request, without a server: ``create_app()`` called as WSGI in this process.

Separates what the app spends (Flask, validation, metrics, ONNX Runtime) from what gunicorn and the kernel
add, which ``bench_service.py`` measures together. Each request is timed in CPU time of this thread, first
back to back (caches warm), then with idle gaps between requests, as a server sees them below saturation.

    python benchmarks/bench_app.py [--model-dir model] [--requests 2000] [--gaps-ms 0,2,10]

Prints the median and p90 CPU microseconds per request for ``GET /health`` and a one-row
``POST /api/v1/predict`` at each gap. It judges no goal: it explains the numbers of ``bench_service.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_service import ROW, ensure_model  # noqa: E402  # pylint: disable=wrong-import-position

WsgiApp = Callable[[dict[str, object], Callable[..., object]], Iterable[bytes]]


def _environ(method: str, path: str, body: bytes) -> dict[str, object]:
    """A minimal WSGI environ, as gunicorn would pass it."""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def cpu_us_per_request(
    app: WsgiApp, method: str, path: str, body: bytes, requests: int, gap_s: float
) -> list[float]:
    """Thread CPU time of each of ``requests`` calls, sleeping ``gap_s`` before each; fails on a non-200."""
    statuses: list[str] = []

    def start_response(status: str, _headers: object, _exc_info: object = None) -> None:
        statuses.append(status)

    times = []
    for _ in range(requests):
        if gap_s:
            time.sleep(gap_s)
        started = time.thread_time()
        b"".join(app(_environ(method, path, body), start_response))
        times.append((time.thread_time() - started) * 1e6)
        if not statuses[-1].startswith("200"):
            raise RuntimeError(f"{method} {path} answered {statuses[-1]}")
    return times


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "model")
    parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint and gap")
    parser.add_argument(
        "--gaps-ms", default="0,2,10", help="comma-separated idle gaps before each request (default 0,2,10)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the app as the image does, time both endpoints at every gap, print the table."""
    args = parse_args(argv)
    gaps = [float(gap) / 1000 for gap in args.gaps_ms.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["MODEL_DIR"] = str(ensure_model(args.model_dir, Path(scratch)))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(scratch) / "prometheus")
        from app import create_app  # pylint: disable=import-outside-toplevel  # reads the environment

        app = create_app()
        runs = {
            "health": ("GET", "/health", b""),
            "predict 1 row": ("POST", "/api/v1/predict", json.dumps({"instances": [ROW]}).encode()),
        }
        print(f"CPU us per request in the WSGI app, {args.requests} requests each (no server, no network)")
        print(f"{'endpoint':<16} {'gap ms':>7} {'median':>8} {'p90':>8}")
        for gap in gaps:
            for name, (method, path, body) in runs.items():
                times = sorted(cpu_us_per_request(app, method, path, body, args.requests, gap))
                p90 = times[int(len(times) * 0.9)]
                print(f"{name:<16} {gap * 1000:>7.0f} {statistics.median(times):>8.0f} {p90:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
