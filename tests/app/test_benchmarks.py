"""The benchmark scripts run end to end (briefly), so the numbers in the README can be reproduced."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RUNS = (
    "service predict 1 row",
    "baseline predict 1 row",
    "service health",
    "service predict 100 rows",
    "service predict 1 row, paced",
)


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _table(stdout: str) -> dict[str, tuple[float, int]]:
    """bench_service's rows: run -> (req/s, errors); every run must have one."""
    rows = {}
    for name in RUNS:
        row = re.search(rf"^{re.escape(name)}\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+(\d+)\s+\d+$", stdout, re.M)
        assert row, stdout
        rows[name] = (float(row.group(1)), int(row.group(2)))
    return rows


def test_bench_service_measures_the_service_against_the_bare_baseline(model_dir: Path) -> None:
    result = _run("bench_service.py", "--model-dir", str(model_dir), "--duration", "1", "--rounds", "1")
    assert result.returncode in (0, 1), result.stderr  # 1: a goal missed, which this short run may well
    rows = _table(result.stdout)
    assert all(rate > 0 and errors == 0 for rate, errors in rows.values()), result.stdout
    assert "service: python -m app.serve" in result.stdout
    assert re.search(r"^service worker RSS MB: [\d.]+, [\d.]+$", result.stdout, re.M), result.stdout
    assert re.search(r"^baseline worker RSS MB: [\d.]+, [\d.]+$", result.stdout, re.M), result.stdout
    assert re.search(r"^service / baseline, .*: [\d.]+$", result.stdout, re.M), result.stdout
    # the paced runs offer about half of the measured capacity: well below it, whatever the machine
    paced = re.search(
        r"^paced: each connection pausing 0-(\d+) ms per request, ([\d.]+) of", result.stdout, re.M
    )
    assert paced and 0.1 < float(paced.group(2)) < 0.8, result.stdout
    assert rows["service predict 1 row, paced"][0] < rows["service predict 1 row"][0]
    assert result.stdout.rstrip().endswith(("all goals met", "goal(s) missed"))


def test_bench_service_paces_as_told_and_names_a_server_that_cannot_start(model_dir: Path) -> None:
    result = _run(
        "bench_service.py",
        "--model-dir",
        str(model_dir),
        "--duration",
        "1",
        "--rounds",
        "1",
        "--pace-ms",
        "20",
    )
    assert result.returncode in (0, 1), result.stderr
    assert "paced: each connection pausing 0-40 ms per request" in result.stdout
    # 16 connections pausing 20 ms on average: at most 800 requests/s, whatever the server could do
    assert 0 < _table(result.stdout)["service predict 1 row, paced"][0] < 900, result.stdout

    broken = _run("bench_service.py", "--model-dir", str(model_dir), "--service-cmd", "python -m app.nothing")
    assert broken.returncode != 0 and "the service server exited with 1" in broken.stderr, broken.stderr


def test_bench_app_times_both_endpoints_at_each_gap(model_dir: Path) -> None:
    result = _run("bench_app.py", "--model-dir", str(model_dir), "--requests", "50", "--gaps-ms", "0,1")
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^(health|predict 1 row)\s+(\d+)\s+(\d+)\s+(\d+)$", result.stdout, re.M)
    assert sorted((name, gap) for name, gap, _, _ in rows) == [
        ("health", "0"),
        ("health", "1"),
        ("predict 1 row", "0"),
        ("predict 1 row", "1"),
    ], result.stdout
    assert all(0 < int(median) <= int(p90) for _, _, median, p90 in rows), result.stdout
