"""Load benchmark of the production server: gunicorn + gunicorn.conf.py driven by ``wrk``.

Measures, in alternating rounds (so a drifting background load hits every endpoint alike; medians are
reported), a single-row ``POST /api/v1/predict``, a 100-row batch, and ``GET /health`` (a trivial JSON answer
from the same server) as the baseline, then checks the goals: single-row predict throughput at least
0.8x the baseline, p99 at most 15 ms, every worker's RSS at most 150 MB. Exits 1 naming each missed goal.

    python benchmarks/bench_service.py [--model-dir model] [--duration 10] [--rounds 3] [--connections 16]
                                       [--pace-ms N]

Without a trained model in ``--model-dir`` it trains one into a temporary directory first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ROW = [5.1, 3.5, 1.4, 0.2]
GOAL_RATIO = 0.8
GOAL_P99_MS = 15.0
GOAL_RSS_MB = 150.0
_LUA_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""
_LUA_PACE = """function delay()
  return math.random(0, {twice_mean_ms})
end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float


@dataclass(frozen=True)
class Ratios:
    """predict ÷ baseline, computed within each round (the two runs are seconds apart, so a load drift
    between rounds cancels out), then the median over the rounds."""

    throughput: float
    cpu: float


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def workers_cpu_seconds(master_pid: int) -> float:
    """User + system CPU time consumed so far by every thread of every gunicorn worker, from /proc."""
    ticks = 0
    for pid in _worker_pids(master_pid):
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(
    name: str, url: str, args: argparse.Namespace, master_pid: int, body: str | None = None
) -> Result:
    """Run wrk (POSTing ``body`` and pacing requests through a Lua script when asked) and parse its
    --latency report.

    Also measures the workers' CPU time per completed request: unlike req/s, it does not depend on how the
    scheduler shares the two cores between wrk and the server, so it is the stable way to compare endpoints.
    """
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    with tempfile.TemporaryDirectory() as scratch:
        lua = _LUA_POST.format(body=json.dumps(body)) if body is not None else ""
        if args.pace_ms:
            lua += _LUA_PACE.format(twice_mean_ms=2 * args.pace_ms)
        if lua:
            script = Path(scratch) / "requests.lua"
            script.write_text(lua, encoding="utf-8")
            command += ["-s", str(script)]
        cpu_before = workers_cpu_seconds(master_pid)
        output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
        cpu_used = workers_cpu_seconds(master_pid) - cpu_before
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)$", output, re.MULTILINE))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    completed = re.search(r"(\d+) requests in", output)
    if completed is None or int(completed.group(1)) == 0:
        raise RuntimeError(f"wrk completed no requests:\n{output}")
    return Result(
        name,
        float(rate.group(1)),
        _ms(percentiles["50"]),
        _ms(percentiles["99"]),
        errors,
        cpu_used / int(completed.group(1)) * 1e6,
    )


def median_result(runs: list[Result]) -> Result:
    """Per-metric median over the rounds of one endpoint; errors are summed."""
    return Result(
        runs[0].name,
        statistics.median(r.requests_per_s for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
        statistics.median(r.cpu_us_per_request for r in runs),
    )


def _worker_pids(master_pid: int) -> list[str]:
    """The gunicorn workers: the master's children."""
    return Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text(encoding="ascii").split()


def worker_rss_mb(master_pid: int) -> list[float]:
    """VmRSS of each gunicorn worker, from /proc."""
    sizes = []
    for pid in _worker_pids(master_pid):
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            sizes.append(int(match.group(1)) / 1024)
    return sizes


def ensure_model(model_dir: Path, scratch: Path) -> Path:
    """``model_dir`` if it holds a model, else a freshly trained one in ``scratch``."""
    if (model_dir / "iris_model.onnx").is_file():
        return model_dir
    target = scratch / "model"
    subprocess.run(
        [sys.executable, "-m", "model_training", "--output-dir", str(target)], cwd=REPO_ROOT, check=True
    )
    return target


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll /ready until 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not become ready")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``, else a usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "model")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; medians are reported (default 3)"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--pace-ms",
        type=int_at_least(0),
        default=0,
        help="each connection waits a random 0..2N ms (mean N) before each request: a load below saturation, "
        "so latency shows service time rather than queueing; the throughput ratio is then not judged "
        "(default 0: as fast as the server answers)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the server, measure, stop it, judge the goals."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = ensure_model(args.model_dir, Path(scratch))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {  # what the image's ENV sets, so the server does the same work per request as in production
            **os.environ,
            "BIND": f"127.0.0.1:{port}",
            "MODEL_DIR": str(model_dir),
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(Path(scratch) / "prometheus"),
        }
        with open(Path(scratch) / "gunicorn.log", "wb") as log:
            server = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped in finally
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(url, server)
            rounds = [
                [
                    run_wrk("health (baseline)", url + "/health", args, server.pid),
                    run_wrk(
                        "predict 1 row",
                        url + "/api/v1/predict",
                        args,
                        server.pid,
                        json.dumps({"instances": [ROW]}),
                    ),
                    run_wrk(
                        "predict 100 rows",
                        url + "/api/v1/predict",
                        args,
                        server.pid,
                        json.dumps({"instances": [ROW] * 100}),
                    ),
                ]
                for _ in range(args.rounds)
            ]
            results = [median_result(list(runs)) for runs in zip(*rounds, strict=True)]
            ratios = Ratios(
                throughput=statistics.median(r[1].requests_per_s / r[0].requests_per_s for r in rounds),
                cpu=statistics.median(r[0].cpu_us_per_request / r[1].cpu_us_per_request for r in rounds),
            )
            rss = worker_rss_mb(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    return report(results, ratios, rss, args)


def report(results: list[Result], ratios: Ratios, rss: list[float], args: argparse.Namespace) -> int:
    """Print the table and the verdict; 0 when every goal is met."""
    workers, threads = os.environ.get("GUNICORN_WORKERS", "2"), os.environ.get("GUNICORN_THREADS", "4")
    pacing = f", each connection pausing 0-{2 * args.pace_ms} ms per request" if args.pace_ms else ""
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency{pacing}, "
        f"median of {args.rounds} rounds; "
        f"gunicorn workers {workers}, threads {threads}; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'endpoint':<20} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'worker CPU us/req':>18}"
    )
    for r in results:
        print(
            f"{r.name:<20} {r.requests_per_s:>10.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}"
            f" {r.cpu_us_per_request:>18.0f}"
        )
    ratio = ratios.throughput
    print(f"worker RSS MB: {', '.join(f'{mb:.1f}' for mb in rss)}")
    print(f"predict / baseline throughput ratio (median of the rounds' ratios): {ratio:.2f}")
    print(f"the same by worker CPU per request (median of the rounds' ratios): {ratios.cpu:.2f}")
    missed = []
    if args.pace_ms:
        print("paced load: the throughput ratio is set by the pacing, not judged")
    elif ratio < GOAL_RATIO:
        missed.append(f"throughput ratio {ratio:.2f} < {GOAL_RATIO}")
    missed += [
        f"{r.name} p99 {r.p99_ms:.2f} ms > {GOAL_P99_MS} ms" for r in results if r.p99_ms > GOAL_P99_MS
    ]
    missed += [f"{r.name}: {r.errors} errors" for r in results if r.errors]
    if not rss or max(rss) > GOAL_RSS_MB:
        missed.append(f"worker RSS {max(rss, default=0):.1f} MB > {GOAL_RSS_MB} MB (or no workers found)")
    for line in missed:
        print(f"GOAL MISSED: {line}")
    print("all goals met" if not missed else f"{len(missed)} goal(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
