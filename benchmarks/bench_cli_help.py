"""How long ``python -m pipeline --help`` takes, cold process to exit (goal: at most 0.5 s on 2 cores).

The CLI imports docker-py, boto3 and scikit-learn only inside the stages that use them; this
benchmark keeps that honest. Run: ``.venv/bin/python benchmarks/bench_cli_help.py [--runs 20]``.
Exits 1 when the mean is over the goal.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "pipeline", "--help"]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)  # warm the OS file cache once
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    mean = statistics.mean(times)
    print(
        f"python -m pipeline --help: mean {mean * 1000:.0f} ms, "
        f"median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {args.runs} runs "
        f"(goal <= {GOAL_S * 1000:.0f} ms)"
    )
    if mean > GOAL_S:
        print("GOAL MISSED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
