"""Load benchmark of the production server against a bare baseline, both driven by ``wrk``.

Starts two servers on loopback ports: the service as the image runs it (``python -m app.serve``: granian with
every feature on: validation, metrics, access log) and a bare baseline (``benchmarks/bare_app.py``: parse the
JSON, one ONNX call, label and probabilities back; served the standard way, gunicorn with 2 gthread workers
x 4 threads and no access log). In alternating rounds it measures single-row ``POST /api/v1/predict`` on both,
then ``GET /health`` and a 100-row batch on the service for reference, and finally the service's single-row
predict at a paced load of about half its measured capacity. Medians are reported.

Goals (2-core machine): the service answers at least 1.2x the baseline's single-row predictions per second,
its p99 is at most 15 ms at saturation and at most 5 ms at the paced load, every worker's RSS at most 150 MB.
Exits 1 naming each missed goal, 2 on a usage error.

    python benchmarks/bench_service.py [--model-dir model] [--duration 10] [--rounds 3] [--connections 16]
                                       [--pace-ms N] [--service-cmd "python -m app.serve"]

Without a trained model in ``--model-dir`` it trains one into a temporary directory first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ROW = [5.1, 3.5, 1.4, 0.2]
GOAL_VS_BASELINE = 1.2
GOAL_P99_MS = 15.0
GOAL_PACED_P99_MS = 5.0
GOAL_RSS_MB = 150.0
SERVICE_CMD = "python -m app.serve"
BASELINE_CMD = (
    "python -m gunicorn --workers 2 --threads 4 --worker-class gthread --bind {bind} benchmarks.bare_app:app"
)
_LUA_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""
_LUA_PACE = """function delay()
  return math.random(0, {twice_mean_ms})
end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
PREDICT_1 = json.dumps({"instances": [ROW]})
PREDICT_100 = json.dumps({"instances": [ROW] * 100})


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
class Server:
    """A server this benchmark started."""

    name: str
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


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


def workers_cpu_seconds(main_pid: int) -> float:
    """User + system CPU time consumed so far by every thread of every worker, from /proc."""
    ticks = 0
    for pid in _worker_pids(main_pid):
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(
    name: str, server: Server, path: str, args: argparse.Namespace, body: str | None = None, pace_ms: int = 0
) -> Result:
    """Run wrk against ``server`` (POSTing ``body``, pacing requests through a Lua script when asked) and
    parse its --latency report.

    Also measures the workers' CPU time per completed request: unlike req/s, it does not depend on how the
    scheduler shares the two cores between wrk and the server, so it is the stable way to compare.
    """
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    with tempfile.TemporaryDirectory() as scratch:
        lua = _LUA_POST.format(body=json.dumps(body)) if body is not None else ""
        if pace_ms:
            lua += _LUA_PACE.format(twice_mean_ms=2 * pace_ms)
        if lua:
            script = Path(scratch) / "requests.lua"
            script.write_text(lua, encoding="utf-8")
            command += ["-s", str(script)]
        cpu_before = workers_cpu_seconds(server.pid)
        output = subprocess.run(
            [*command, server.url + path], capture_output=True, text=True, check=True
        ).stdout
        cpu_used = workers_cpu_seconds(server.pid) - cpu_before
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


def _worker_pids(main_pid: int) -> list[str]:
    """The workers: the main process's children."""
    return Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text(encoding="ascii").split()


def rss_mb(pid: int | str) -> float:
    """VmRSS of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def worker_rss_mb(main_pid: int) -> list[float]:
    """VmRSS of each worker."""
    return [rss_mb(pid) for pid in _worker_pids(main_pid)]


def ensure_model(model_dir: Path, scratch: Path) -> Path:
    """``model_dir`` if it holds a model, else a freshly trained one in ``scratch``."""
    if (model_dir / "iris_model.onnx").is_file():
        return model_dir
    target = scratch / "model"
    subprocess.run(
        [sys.executable, "-m", "model_training", "--output-dir", str(target)], cwd=REPO_ROOT, check=True
    )
    return target


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


@contextmanager
def started(name: str, command: str, env: dict[str, str], scratch: Path) -> Iterator[Server]:
    """Start ``command`` (``python`` is this interpreter; ``{bind}`` the address) from the repository root,
    wait for ``/ready``, and stop it with SIGTERM afterwards."""
    port = free_port()
    argv = [sys.executable if word == "python" else word for word in shlex.split(command)]
    argv = [word.replace("{bind}", f"127.0.0.1:{port}") for word in argv]
    log_path = scratch / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped below
            argv,
            cwd=REPO_ROOT,
            env={**env, "BIND": f"127.0.0.1:{port}"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, process, f"http://127.0.0.1:{port}")
    try:
        wait_ready(server, log_path)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(server: Server, log_path: Path, timeout: float = 30.0) -> None:
    """Poll /ready until 200; fail with the server's output if it exits or never gets there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the {server.name} server exited with {server.process.returncode}:\n"
                + log_path.read_text(encoding="utf-8", errors="replace")
            )
        try:
            with urllib.request.urlopen(server.url + "/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the {server.name} server was not ready within {timeout:.0f} s")


@dataclass(frozen=True)
class Measurement:
    """Everything one benchmark run measured."""

    results: list[Result]  # medians over the rounds, in table order
    vs_baseline: float  # service / baseline single-row predict req/s, median of the rounds' ratios
    vs_baseline_cpu: float  # the same by worker CPU per request
    pace_ms: int
    capacity: float  # the service's single-row predict req/s at saturation (median)
    service_rss: list[float]
    service_main_rss: float
    baseline_rss: list[float]


def measure(service: Server, baseline: Server, args: argparse.Namespace) -> Measurement:
    """The alternating saturated rounds, then the paced ones."""
    rounds = []
    for number in range(args.rounds):
        pair = [(service, "service predict 1 row"), (baseline, "baseline predict 1 row")]
        if number % 2:  # whoever goes first in a round gets the cooler machine: take turns
            pair.reverse()
        runs = {name: run_wrk(name, server, "/api/v1/predict", args, PREDICT_1) for server, name in pair}
        runs["service health"] = run_wrk("service health", service, "/health", args)
        runs["service predict 100 rows"] = run_wrk(
            "service predict 100 rows", service, "/api/v1/predict", args, PREDICT_100
        )
        rounds.append(runs)
    names = ["service predict 1 row", "baseline predict 1 row", "service health", "service predict 100 rows"]
    results = [median_result([r[name] for r in rounds]) for name in names]
    capacity = results[0].requests_per_s
    # 16 connections each pausing a mean of N ms offer about 16000 / (N + latency) req/s: N just under
    # 2000 * 16 / C offers about half of the capacity C (the latency is small once the queue is gone).
    pace_ms = args.pace_ms or max(1, int(2000 * args.connections / capacity))
    paced = [
        run_wrk("service predict 1 row, paced", service, "/api/v1/predict", args, PREDICT_1, pace_ms)
        for _ in range(args.rounds)
    ]
    results.append(median_result(paced))
    return Measurement(
        results=results,
        vs_baseline=statistics.median(
            r["service predict 1 row"].requests_per_s / r["baseline predict 1 row"].requests_per_s
            for r in rounds
        ),
        vs_baseline_cpu=statistics.median(
            r["baseline predict 1 row"].cpu_us_per_request / r["service predict 1 row"].cpu_us_per_request
            for r in rounds
        ),
        pace_ms=pace_ms,
        capacity=capacity,
        service_rss=worker_rss_mb(service.pid),
        service_main_rss=rss_mb(service.pid),
        baseline_rss=worker_rss_mb(baseline.pid),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "model")
    parser.add_argument(
        "--duration", type=int_at_least(1), default=10, help="seconds per wrk run (default 10)"
    )
    parser.add_argument(
        "--rounds",
        type=int_at_least(1),
        default=3,
        help="alternating rounds; medians are reported (default 3)",
    )
    parser.add_argument("--connections", type=int_at_least(1), default=16)
    parser.add_argument("--threads", type=int_at_least(1), default=2, help="wrk threads")
    parser.add_argument(
        "--pace-ms",
        type=int_at_least(0),
        default=0,
        help="the paced runs: each connection waits a random 0..2N ms (mean N) before each request "
        "(default 0: N chosen to offer about half of the measured capacity)",
    )
    parser.add_argument(
        "--service-cmd",
        default=SERVICE_CMD,
        help=f"how to start the service, from the repository root (default {SERVICE_CMD!r}); "
        "for trying another server: 'python' is this interpreter, BIND holds the address",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start both servers, measure, stop them, judge the goals."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        model_dir = ensure_model(args.model_dir, scratch)
        env = {  # what the image's ENV sets, so the service does the same work per request as in production
            **os.environ,
            "MODEL_DIR": str(model_dir),
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / "prometheus"),
        }
        bare_env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        try:
            with (
                started("service", args.service_cmd, env, scratch) as service,
                started("baseline", BASELINE_CMD, bare_env, scratch) as baseline,
            ):
                measurement = measure(service, baseline, args)
        except RuntimeError as exc:  # a server that did not start, or wrk output that could not be read
            print(f"bench_service: {exc}", file=sys.stderr)
            return 1
    return report(measurement, args)


def report(m: Measurement, args: argparse.Namespace) -> int:
    """Print the table and the verdict; 0 when every goal is met."""
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, median of {args.rounds} "
        f"rounds; service: {args.service_cmd}; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'run':<30} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'worker CPU us/req':>18}")
    for r in m.results:
        print(
            f"{r.name:<30} {r.requests_per_s:>10.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}"
            f" {r.cpu_us_per_request:>18.0f}"
        )
    paced = m.results[-1]
    print(
        f"paced: each connection pausing 0-{2 * m.pace_ms} ms per request, "
        f"{paced.requests_per_s / m.capacity:.2f} of the service's capacity"
    )
    print(f"service worker RSS MB: {', '.join(f'{mb:.1f}' for mb in m.service_rss)}")
    print(f"service main process RSS MB: {m.service_main_rss:.1f}")
    print(f"baseline worker RSS MB: {', '.join(f'{mb:.1f}' for mb in m.baseline_rss)}")
    print(
        f"service / baseline, single-row predictions per second (median of the rounds): {m.vs_baseline:.2f}"
    )
    print(f"the same by worker CPU per request (median of the rounds): {m.vs_baseline_cpu:.2f}")
    saturated = m.results[0]
    missed = []
    if m.vs_baseline < GOAL_VS_BASELINE:
        missed.append(f"service / baseline {m.vs_baseline:.2f} < {GOAL_VS_BASELINE}")
    if saturated.p99_ms > GOAL_P99_MS:
        missed.append(f"{saturated.name} p99 {saturated.p99_ms:.2f} ms > {GOAL_P99_MS} ms")
    if paced.p99_ms > GOAL_PACED_P99_MS:
        missed.append(f"{paced.name} p99 {paced.p99_ms:.2f} ms > {GOAL_PACED_P99_MS} ms")
    missed += [f"{r.name}: {r.errors} errors" for r in m.results if r.errors]
    if not m.service_rss or max(m.service_rss) > GOAL_RSS_MB:
        missed.append(
            f"service worker RSS {max(m.service_rss, default=0):.1f} MB > {GOAL_RSS_MB} MB"
            " (or no workers found)"
        )
    for line in missed:
        print(f"GOAL MISSED: {line}")
    print("all goals met" if not missed else f"{len(missed)} goal(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
