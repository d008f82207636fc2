"""How long a fresh ``.venv`` takes: pip against uv, with empty download caches, in paired alternating rounds.

This is the first minute or two of ``scripts/run-local.sh`` on a new machine (and of every build on a fresh
Jenkins agent). Each round makes one virtualenv with each installer, in alternating order, from the locked
``requirements/dev.txt``, each with its own empty cache (what a new machine has), and times it; the
medians are compared. A round's two runs see the same network and the same load, so the pairing, not
the absolute numbers, is what to read.

Run: ``.venv/bin/python benchmarks/bench_bootstrap.py [--rounds 3]`` (needs PyPI; no root).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements" / "dev.txt"
# The versions scripts/bootstrap.sh pins.
PIP = "pip==25.3"
UV = "uv==0.13.9"
PYTHON = os.environ.get("PYTHON", "python3")


def _run(argv: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench_bootstrap: {' '.join(argv[:4])} ... failed:\n{proc.stderr[-3000:]}")


def with_pip(venv: Path, cache: Path) -> float:
    env = {**os.environ, "PIP_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    _run([PYTHON, "-m", "venv", str(venv)], env)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", PIP], env)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], env)
    return time.perf_counter() - started


def with_uv(venv: Path, cache: Path) -> float:
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "PIP_CACHE_DIR": str(cache / "pip")}
    started = time.perf_counter()
    _run([PYTHON, "-m", "venv", str(venv)], env)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", UV], env)
    uv, python = str(venv / "bin" / "uv"), str(venv / "bin" / "python")
    flags = ["--native-tls", "--compile-bytecode", "-q"]
    _run([uv, "pip", "install", "--python", python, *flags, "-r", str(REQUIREMENTS)], env)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"pip": [], "uv": []}
    for round_no in range(args.rounds):
        order = [("pip", with_pip), ("uv", with_uv)]
        if round_no % 2:
            order.reverse()
        for name, make in order:
            with tempfile.TemporaryDirectory(prefix=f"bench-bootstrap-{name}-") as tmp:
                seconds = make(Path(tmp) / "venv", Path(tmp) / "cache")
            times[name].append(seconds)
            print(f"round {round_no + 1}: {name:<3} {seconds:6.1f} s", flush=True)
    for name, each in times.items():
        rounds = ", ".join(f"{s:.1f}" for s in each)
        print(f"{name:<3} median {statistics.median(each):6.1f} s  (rounds: {rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
