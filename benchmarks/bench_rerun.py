"""First run, cold run, then warm reruns: what a fresh agent pays, and what the stage cache saves.

Each round, first the **first run** a newcomer or a fresh Jenkins agent gets (issue 21): a fresh clone of
HEAD, a fresh ``.venv`` made by ``scripts/bootstrap.sh`` with empty download caches (timed on its own),
then ``run --stage all --profile local`` with every tool cache empty (``XDG_CACHE_HOME``: Trivy's, black's)
and an engine that has the base image but no layer of this project's image (the round's base image is the
test bed's with one label added, so its ID, and every cache key built on it, is new).

Then, in another fresh clone that uses this checkout's ``.venv`` (engine layer cache warm): ``run --stage
all`` cold, again with nothing changed, after touching only ``README.md``, and after changing one line in
``app/`` (issue 10). Each step's wall time and each stage's status.

Goals (2 cores): first run <= 90 s; no-change rerun <= 10 s and <= 0.1 x the cold run; README-only the
same; the ``app/`` change reruns exactly the stages whose inputs include ``app/``; cold run <= 60 s.

Needs the test bed (``bash scripts/testbed.sh up``: engine, registry on localhost:5000, base image).
Run: ``.venv/bin/python benchmarks/bench_rerun.py [--rounds 3] [--first-run-only]``; exits 1 when a goal
is missed.
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
STAGES = ("lint", "train", "promotion", "test", "trivy-fs", "build", "trivy-image", "smoke", "push", "deploy")
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


def run_pipeline(
    clone: Path,
    env: dict[str, str],
    sets: list[str],
    python: str = sys.executable,
    extra: list[str] | None = None,
) -> tuple[float, dict[str, str], Timeline]:
    argv = [python, "-m", "pipeline", "run", "--stage", "all", "--profile", "local", *(extra or [])]
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


def fresh_base_image(base: str, tag: str) -> None:
    """``base`` with one label more: the same files, a new image ID, so no cached layer builds on it."""
    dockerfile = f"FROM {base}\nLABEL io.mlops.bench-first-run={tag}\n"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=dockerfile,
        text=True,
        check=True,
        capture_output=True,
    )


def remove_deployment(name: str) -> None:
    """The round's containers and every tag of its repository: a round leaves nothing in the engine. By tag,
    not by image ID: an ID may also carry tags that are not the round's (the base image's)."""
    subprocess.run(["docker", "rm", "-f", name, f"{name}-previous"], capture_output=True, check=False)
    refs = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference=*/{name}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if refs:
        subprocess.run(["docker", "rmi", *refs], capture_output=True, check=False)


def first_run(env: dict[str, str]) -> tuple[float, float, dict[str, str], Timeline]:
    """(bootstrap seconds, pipeline seconds, statuses, timeline) of a fresh clone with a fresh ``.venv``."""
    unique = uuid.uuid4().hex[:8]
    name = f"bench-first-{unique}"
    base = f"bench-first-base:{unique}"
    fresh_base_image(env.get("PIPELINE_IMAGE__BASE", "python:3.11-slim"), base)
    sets = [f"image.repository={name}", f"deploy.local.container_name={name}", f"image.base={base}"]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-first-") as tmp:
            clone = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            caches = Path(tmp) / "cache"
            fresh = {**env, "XDG_CACHE_HOME": str(caches), "UV_CACHE_DIR": str(caches / "uv")}
            fresh["PIP_CACHE_DIR"] = str(caches / "pip")
            started = time.perf_counter()
            subprocess.run(
                ["bash", "scripts/bootstrap.sh"], cwd=clone, env=fresh, check=True, capture_output=True
            )
            bootstrap_s = time.perf_counter() - started
            sets.append(f"deploy.local.port={_free_port()}")
            python = str(clone / ".venv" / "bin" / "python")
            seconds, statuses, timeline = run_pipeline(clone, fresh, sets, python)
    finally:
        remove_deployment(name)
        subprocess.run(["docker", "rmi", "-f", base], capture_output=True, check=False)
    return bootstrap_s, seconds, statuses, timeline


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
            remove_deployment(name)
    return results


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def testbed_environ() -> dict[str, str]:
    """This environment with the test bed's (``scripts/testbed.sh env``), as the pipeline needs it."""
    env = {**os.environ, "CI": "true"}
    env.setdefault("DOCKER_HOST", "unix:///var/run/docker.sock")
    testbed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "testbed.sh"), "env"], capture_output=True, text=True, check=True
    )
    for line in testbed.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env.setdefault(name, value)
    if not (Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "trivy" / "db" / "trivy.db").exists():
        env.setdefault("PIPELINE_TRIVY__SCANNERS", "secret,misconfig")  # no public vulnerability DB here
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--first-run-only", action="store_true", help="only the first-run round(s)")
    args = parser.parse_args()
    env = testbed_environ()
    if shutil.which("docker") is None:
        raise SystemExit("bench_rerun: the docker CLI is needed (bash scripts/testbed.sh install)")

    firsts, rounds = [], []
    for _ in range(args.rounds):
        firsts.append(first_run(env))
        if not args.first_run_only:
            rounds.append(one_round(env))
    bootstrap = statistics.median(f[0] for f in firsts)
    first = statistics.median(f[1] for f in firsts)
    print(
        f"first run: bootstrap.sh (fresh .venv, empty caches) median {bootstrap:.1f} s "
        f"({', '.join(f'{f[0]:.1f}' for f in firsts)}); then run --stage all median {first:.1f} s "
        f"({', '.join(f'{f[1]:.1f}' for f in firsts)})"
    )
    print("first run of the last round, by stage (seconds after the first stage started, and duration):")
    for stage, offset, duration in firsts[-1][3]:
        print(f"  {stage:<12} {offset:>6.1f} +{duration:>5.1f}")
    if args.first_run_only:
        met = first <= 90
        print(f"{'met' if met else 'NOT MET':>7}  first run <= 90 s")
        return 0 if met else 1

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
        ("first run <= 90 s", first <= 90),
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
