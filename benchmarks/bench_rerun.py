"""Cold run, then warm reruns: what the stage cache saves (issue 10's benchmark).

From a fresh clone of this repository's HEAD (engine, base image and layer cache warm, nothing else):
``run --stage all --profile local`` cold, then again with nothing changed, then after touching only
``README.md``, then after changing one line in ``app/``. Each step's wall time and each stage's status.

Goals (2 cores): no-change rerun <= 10 s and <= 0.1 x the cold run; README-only the same; the ``app/``
change reruns exactly the stages whose inputs include ``app/``; cold run <= 60 s.

Needs the test bed (``bash scripts/testbed.sh up``: engine, registry on localhost:5000, base image).
Run: ``.venv/bin/python benchmarks/bench_rerun.py [--rounds 3]``; exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("lint", "train", "test", "trivy-fs", "build", "trivy-image", "smoke", "push", "deploy")
NEVER_CACHED = {"smoke", "push", "deploy"}
# The stages whose declared inputs include app/ (see each stage's inputs()).
READ_APP = {"lint", "test", "trivy-fs", "build", "trivy-image"}


def touch_readme(clone: Path) -> None:
    with (clone / "README.md").open("a", encoding="utf-8") as fh:
        fh.write("\nA line added by the benchmark.\n")


def change_app(clone: Path) -> None:
    init = clone / "app" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    init.write_text(
        text.replace("builds the Flask app", "builds the Flask app (edited)", 1), encoding="utf-8"
    )


STEPS = (
    ("cold", None),
    ("no change", None),
    ("README.md only", touch_readme),
    ("one line in app/", change_app),
)


Timeline = list[tuple[str, float, float]]  # (stage, seconds after the first stage started, duration)


def run_pipeline(clone: Path, env: dict[str, str], sets: list[str]) -> tuple[float, dict[str, str], Timeline]:
    argv = [sys.executable, "-m", "pipeline", "run", "--stage", "all", "--profile", "local"]
    for item in sets:
        argv += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit(f"bench_rerun: the pipeline failed (exit {proc.returncode}) in {clone}")
    doc = json.loads((clone / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    ran = [s for s in doc["stages"] if s.get("started_at")]
    starts = {s["name"]: datetime.fromisoformat(s["started_at"]).timestamp() for s in ran}
    first = min(starts.values(), default=0.0)
    timeline = [(s["name"], starts[s["name"]] - first, float(s.get("duration_s") or 0)) for s in ran]
    return seconds, {s["name"]: s["status"] for s in doc["stages"]}, sorted(timeline, key=lambda t: t[1])


def one_round(env: dict[str, str]) -> list[tuple[str, float, dict[str, str], Timeline]]:
    unique = uuid.uuid4().hex[:8]
    name = f"bench-rerun-{unique}"
    sets = [f"image.repository={name}", f"deploy.local.container_name={name}", "deploy.local.port=0"]
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        sets[-1] = f"deploy.local.port={_free_port()}"
        results = []
        try:
            for label, change in STEPS:
                if change is not None:
                    change(clone)
                results.append((label, *run_pipeline(clone, env, sets)))
        finally:
            subprocess.run(["docker", "rm", "-f", name, f"{name}-previous"], capture_output=True, check=False)
    return results


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    env = {**os.environ, "CI": "true"}
    env.setdefault("DOCKER_HOST", "unix:///var/run/docker.sock")
    testbed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "testbed.sh"), "env"], capture_output=True, text=True, check=True
    )
    for line in testbed.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env.setdefault(name, value)
    if not (Path.home() / ".cache" / "trivy" / "db" / "trivy.db").exists():
        env.setdefault("PIPELINE_TRIVY__SCANNERS", "secret,misconfig")  # no public vulnerability DB here
    if shutil.which("docker") is None:
        raise SystemExit("bench_rerun: the docker CLI is needed (bash scripts/testbed.sh install)")

    rounds = [one_round(env) for _ in range(args.rounds)]
    seconds = {label: statistics.median(r[i][1] for r in rounds) for i, (label, _) in enumerate(STEPS)}
    print(f"{'step':<18} {'median s':>9}  {'each round':<20}  stages (last round)")
    for i, (label, _) in enumerate(STEPS):
        statuses = rounds[-1][i][2]
        ran = [n for n in STAGES if statuses.get(n) == "passed" and n not in NEVER_CACHED]
        each = ", ".join(f"{r[i][1]:.1f}" for r in rounds)
        print(f"{label:<18} {seconds[label]:>9.1f}  {each:<20}  ran: {', '.join(ran) or '-'}")

    print("cold run of the last round, by stage (seconds after the first stage started, and duration):")
    for stage, offset, duration in rounds[-1][0][3]:
        print(f"  {stage:<12} {offset:>6.1f} +{duration:>5.1f}")

    cold = seconds["cold"]
    app_ran = {n for n, s in rounds[-1][3][2].items() if s == "passed"} - NEVER_CACHED
    goals = [
        ("no-change rerun <= 10 s", seconds["no change"] <= 10),
        ("no-change rerun <= 0.1 x cold", seconds["no change"] <= 0.1 * cold),
        ("README-only rerun <= 10 s", seconds["README.md only"] <= 10),
        ("README-only rerun <= 0.1 x cold", seconds["README.md only"] <= 0.1 * cold),
        ("app/ change reruns exactly the stages that read app/", app_ran == READ_APP),
        ("cold run <= 60 s", cold <= 60),
    ]
    for goal, met in goals:
        print(f"{'met' if met else 'NOT MET':>7}  {goal}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
