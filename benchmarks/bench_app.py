"""The Flask app's own cost per request, without a server: ``create_app()`` called as WSGI in this process.

Separates what the app spends (Flask, validation, metrics, ONNX Runtime) from what the server and the kernel
add, which ``bench_service.py`` measures together. Each request is timed in CPU time of this thread, first
back to back (caches warm), then with idle gaps between requests, as a server sees them below saturation.

    python benchmarks/bench_app.py [--model-dir model] [--requests 2000] [--gaps-ms 0,2,10]

Prints the median and p90 CPU microseconds per request for ``GET /health`` and a one-row
``POST /api/v1/predict`` at each gap. It judges no goal: it explains the numbers of ``bench_service.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from werkzeug.test import EnvironBuilder

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_service import (  # noqa: E402  # pylint: disable=wrong-import-position
    ROW,
    ensure_model,
    int_at_least,
)

WsgiApp = Callable[[dict[str, object], Callable[..., object]], Iterable[bytes]]


def cpu_us_per_request(
    app: WsgiApp, method: str, path: str, body: bytes, requests: int, gap_s: float
) -> list[float]:
    """Thread CPU time of each of ``requests`` calls, sleeping ``gap_s`` before each; fails on a non-200."""
    statuses: list[str] = []

    def start_response(status: str, _headers: object, _exc_info: object = None) -> None:
        statuses.append(status)

    times = []
    for _ in range(requests):
        # built before the clock starts, and anew each time: a builder's input stream is read only once
        environ = EnvironBuilder(
            path=path, method=method, data=body, content_type="application/json"
        ).get_environ()
        if gap_s:
            time.sleep(gap_s)
        started = time.thread_time()
        b"".join(app(environ, start_response))
        times.append((time.thread_time() - started) * 1e6)
        if not statuses[-1].startswith("200"):
            raise RuntimeError(f"{method} {path} answered {statuses[-1]}")
    return times


def _gaps_ms(text: str) -> list[float]:
    """``0,2,10`` -> [0.0, 2.0, 10.0]: milliseconds, each 0 or more."""
    gaps = []
    for part in text.split(","):
        try:
            gap = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a number of milliseconds") from None
        if not 0 <= gap < float("inf"):
            raise argparse.ArgumentTypeError(f"gaps must be 0 ms or more, not {part.strip()}")
        gaps.append(gap)
    return gaps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "model")
    parser.add_argument(
        "--requests", type=int_at_least(1), default=2000, help="requests per endpoint and gap"
    )
    parser.add_argument(
        "--gaps-ms",
        type=_gaps_ms,
        default="0,2,10",
        help="comma-separated idle gaps before each request (default 0,2,10)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the app as the image does, time both endpoints at every gap, print the table."""
    args = parse_args(argv)
    gaps = [gap / 1000 for gap in args.gaps_ms]
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["MODEL_DIR"] = str(ensure_model(args.model_dir, Path(scratch)))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(scratch) / "prometheus")
        from app import create_app  # reads the environment

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
                print(f"{name:<16} {gap * 1000:>7g} {statistics.median(times):>8.0f} {p90:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
