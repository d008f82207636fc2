"""Two agents, one store: what a second agent pays for a commit another agent ran (issue 25).

Each round: a fresh prefix of an S3 bucket on a real ``moto_server`` (started here) as ``store.url``; two
fresh clones of HEAD in different folders, each with its own ``.pipeline/`` (the agents). Agent 1 runs
``run --stage all`` cold; then agent 2 runs the same commit, and then again after changing one line in
``app/``. Agent 1 skips ``deploy``: a deploy moves the champion that ``promotion`` compares with, so agent 2's
``promotion`` would run again for that reason and not the commit's. Wall times and each stage's status.

Goals (2 cores): agent 2's run of the unchanged commit <= 10 s with every cacheable stage ``cached`` (from
the store: its log says so); after the ``app/`` change it reruns exactly the stages whose inputs include
``app/``.

Both agents use this machine's one Docker engine, so agent 2 finds agent 1's image in it (``build``'s cache
hit checks that the image is there); an agent with an engine of its own would build the image again (the
registry pull of issue 25 item 3 is not built yet).

Needs the test bed (``bash scripts/testbed.sh up``: engine, registry on localhost:5000, base image).
Run: ``.venv/bin/python benchmarks/bench_shared_store.py [--rounds 3]``; exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_rerun import (  # pylint: disable=wrong-import-position
    NEVER_CACHED,
    READ_APP,
    ROOT,
    STAGES,
    _free_port,
    change_app,
    remove_deployment,
    run_pipeline,
    testbed_environ,
)

BUCKET = "bench-shared-store"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@contextmanager
def moto_s3() -> Iterator[str]:
    """A ``moto_server`` on a free loopback port with :data:`BUCKET`; yields its URL."""
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import boto3

        client = boto3.client("s3", region_name="us-east-1", endpoint_url=url, **_keywords())
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # pylint: disable=broad-exception-caught  # not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _keywords() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def stale_stages(clone: Path, env: dict[str, str], sets: list[str]) -> set[str]:
    """The cacheable stages the dry run says would run now, before any change (``promotion`` after a
    deploy changed the champion it compares with)."""
    argv = [sys.executable, "-m", "pipeline", "run", "--stage", "all", "--dry-run", "--profile", "local"]
    for item in sets:
        argv += ["--set", item]
    out = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, check=True).stdout
    stale, stage = set(), ""
    for line in out.splitlines():
        if found := re.match(r"\d+\. (\S+)", line):
            stage = found.group(1)
        elif line.strip().startswith("-> runs") and stage not in NEVER_CACHED:
            stale.add(stage)
    return stale


Step = tuple[float, dict[str, str], str, set[str]]


def one_round(env: dict[str, str], endpoint: str) -> dict[str, Step]:
    """Seconds, statuses, agent 2's lint log and the stages stale before the step, of each step of a round."""
    unique = uuid.uuid4().hex[:8]
    name = f"bench-shared-{unique}"
    sets = [
        f"image.repository={name}",
        f"deploy.local.container_name={name}",
        f"deploy.local.port={_free_port()}",
        f"store.url=s3://{BUCKET}/{unique}",
        f"store.endpoint_url={endpoint}",
        "store.region=us-east-1",
    ]
    agent_env = {**env, **CREDENTIALS}
    steps: dict[str, Step] = {}
    with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
        first, second = Path(tmp) / "agent-1", Path(tmp) / "agent-2"
        for clone in (first, second):
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        try:
            # Agent 1 builds and pushes but does not deploy: a deploy moves the champion that promotion
            # compares with, which would make agent 2's promotion run again for that reason, not the commit's.
            seconds, statuses, _ = run_pipeline(
                first, {**agent_env, "NODE_NAME": "agent-1"}, sets, extra=["--skip", "deploy"]
            )
            steps["agent 1, cold"] = (seconds, statuses, "", set())
            for label, change in (("agent 2, same commit", None), ("agent 2, one line in app/", change_app)):
                stale = stale_stages(second, agent_env, sets) if change is not None else set()
                if change is not None:
                    change(second)
                seconds, statuses, _ = run_pipeline(second, {**agent_env, "NODE_NAME": "agent-2"}, sets)
                log = (second / "reports" / "stages" / "lint.log").read_text(
                    encoding="utf-8", errors="replace"
                )
                steps[label] = (seconds, statuses, log, stale)
        finally:
            remove_deployment(name)
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    env = testbed_environ()
    if shutil.which("docker") is None:
        raise SystemExit("bench_shared_store: the docker CLI is needed (bash scripts/testbed.sh install)")
    with moto_s3() as endpoint:
        rounds = [one_round(env, endpoint) for _ in range(args.rounds)]

    labels = list(rounds[0])
    seconds = {label: statistics.median(r[label][0] for r in rounds) for label in labels}
    print(f"{'step':<28} {'median s':>9}  {'each round':<20}  stages that ran (last round)")
    for label in labels:
        statuses = rounds[-1][label][1]
        ran = [n for n in STAGES if statuses.get(n) == "passed" and n not in NEVER_CACHED]
        each = ", ".join(f"{r[label][0]:.1f}" for r in rounds)
        print(f"{label:<28} {seconds[label]:>9.1f}  {each:<20}  {', '.join(ran) or '-'}")

    same = [r["agent 2, same commit"] for r in rounds]
    cacheable = [n for n in STAGES if n not in NEVER_CACHED]
    all_cached = all(all(s[1].get(n) == "cached" for n in cacheable) for s in same)
    from_store = all("in the shared store" in s[2] for s in same)
    changed = rounds[-1]["agent 2, one line in app/"]
    app_ran = {n for n, s in changed[1].items() if s == "passed"} - NEVER_CACHED
    print(f"stale before the app/ change (the dry run): {', '.join(sorted(changed[3])) or '-'}")
    goals = [
        ("agent 2, same commit <= 10 s", seconds["agent 2, same commit"] <= 10),
        ("agent 2, same commit: every cacheable stage cached", all_cached),
        ("agent 2, same commit: from the shared store (lint's log says so)", from_store),
        (
            "agent 2, app/ change reruns exactly the stages that read app/ (and those already stale)",
            app_ran == READ_APP | changed[3],
        ),
    ]
    for goal, met in goals:
        print(f"{'met' if met else 'NOT MET':>7}  {goal}")
    return 0 if all(met for _, met in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
