"""The stage cache shared through the store: two agents, each its own clone and ``.pipeline/``, one store (a
shared folder, or S3 on a real moto_server), the real ``train`` stage run by ``python -m pipeline``."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.support.s3 import BUCKET, S3Server

pytestmark = pytest.mark.xdist_group("shared-cache")

AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project's tracked files, committed in a repository the agents clone."""
    root = tmp_path_factory.mktemp("origin")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        if (ROOT / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, root / rel)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "origin"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True)
    return root


Agent = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def agents(origin: Path, tmp_path: Path) -> Callable[[str], Agent]:
    """``agents(name)``: a fresh clone in its own folder, and a function that runs the pipeline in it."""

    def make(name: str) -> Agent:
        root = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(origin), str(root)], check=True)

        def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
            return run_cli(list(args), cwd=root, env={"NODE_NAME": name, **(env or {})}, timeout=300)

        run.root = root  # type: ignore[attr-defined]
        return run

    return make


def statuses(root: Path) -> dict[str, str]:
    report = json.loads((root / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    return {stage["name"]: stage["status"] for stage in report["stages"]}


def model_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "model").iterdir())}


def store_settings(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[list[str], dict[str, str]]:
    """``--set`` options and environment that point an agent at a fresh store of ``kind``."""
    if kind == "folder":
        share = tmp_path / "share"
        share.mkdir(exist_ok=True)
        return ["--set", f"store.url=file://{share}"], {}
    server: S3Server = request.getfixturevalue("s3_server")
    url = f"s3://{BUCKET}/agents-{uuid.uuid4().hex[:10]}"
    return [
        "--set",
        f"store.url={url}",
        "--set",
        f"store.endpoint_url={server.endpoint_url}",
        "--set",
        "store.region=us-east-1",
    ], dict(AWS_TEST_ENV)


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_a_pass_on_one_agent_is_a_hit_on_another_with_its_files(
    kind: str, agents: Callable[[str], Agent], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options, env = store_settings(kind, tmp_path, request)
    first, second = agents("agent-1"), agents("agent-2")

    ran = first("run", "--stage", "train", *options, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert statuses(first.root) == {"train": "passed"}  # type: ignore[attr-defined]

    planned = second("run", "--stage", "train", "--dry-run", *options, env=env)
    assert (
        "cached: in the shared store: run " in planned.stdout and "on agent-1" in planned.stdout
    ), planned.stdout

    taken = second("run", "--stage", "train", *options, env=env)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert statuses(second.root) == {"train": "cached"}  # type: ignore[attr-defined]
    assert model_bytes(second.root) == model_bytes(first.root)  # type: ignore[attr-defined]
    log = (second.root / "reports" / "stages" / "train.log").read_text(encoding="utf-8")  # type: ignore[attr-defined]
    assert "cached: in the shared store" in log and "--- the log of that run ---" in log

    # The next run on the second agent finds it in its own .pipeline, without asking the store.
    again = second("run", "--stage", "train", "--set", "store.url=file:///nonexistent-share")
    assert statuses(second.root) == {"train": "cached"}, again.stdout + again.stderr  # type: ignore[attr-defined]


def test_a_damaged_blob_is_a_miss_with_one_warning_and_the_stage_runs(
    agents: Callable[[str], Agent], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options, env = store_settings("folder", tmp_path, request)
    first, second = agents("agent-1"), agents("agent-2")
    assert first("run", "--stage", "train", *options, env=env).returncode == 0
    onnx = (first.root / "model" / "iris_model.onnx").read_bytes()  # type: ignore[attr-defined]
    import hashlib

    digest = hashlib.sha256(onnx).hexdigest()
    blob = tmp_path / "share" / "blobs" / "sha256" / digest[:2] / digest
    assert blob.is_file()
    blob.write_bytes(onnx[:-10] + b"0123456789")

    ran = second("run", "--stage", "train", *options, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert statuses(second.root) == {"train": "passed"}  # type: ignore[attr-defined]
    log = (second.root / "reports" / "stages" / "train.log").read_text(encoding="utf-8")  # type: ignore[attr-defined]
    assert log.count("is not used: its copy of iris_model.onnx is damaged") == 1, log
    # The damaged copy was removed, and the second agent's pass stored a good one again.
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest


def test_a_store_that_is_down_lets_the_run_go_on_uncached_and_says_so(agents: Callable[[str], Agent]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    agent = agents("agent-1")
    ran = agent(
        "run",
        "--stage",
        "train",
        "--set",
        f"store.url=s3://{BUCKET}/down",
        "--set",
        f"store.endpoint_url=http://127.0.0.1:{closed}",
        "--set",
        "store.region=us-east-1",
        env=AWS_TEST_ENV,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert statuses(agent.root) == {"train": "passed"}  # type: ignore[attr-defined]
    assert ran.stderr.count("goes on without the shared cache") == 1, ran.stderr


def test_store_write_false_reads_the_cache_but_never_fills_it(
    agents: Callable[[str], Agent], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options, env = store_settings("folder", tmp_path, request)
    untrusted, trusted, reader = agents("pull-request"), agents("main"), agents("another-pr")
    assert (
        untrusted("run", "--stage", "train", *options, "--set", "store.write=false", env=env).returncode == 0
    )
    assert not (tmp_path / "share" / "cache").exists()

    assert trusted("run", "--stage", "train", *options, env=env).returncode == 0
    assert reader("run", "--stage", "train", *options, "--set", "store.write=false", env=env).returncode == 0
    assert statuses(reader.root) == {"train": "cached"}  # type: ignore[attr-defined]


def test_doctor_writes_and_reads_the_store_and_fails_when_it_cannot(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    good = run_cli(["doctor", "--stage", "train", "--set", f"store.url=file://{share}"], cwd=ROOT)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "written and read" in good.stdout
    assert not (share / "doctor").exists() or not any((share / "doctor").iterdir())
    gone = run_cli(
        ["doctor", "--stage", "train", "--set", f"store.url=file://{tmp_path}/unmounted"], cwd=ROOT
    )
    assert gone.returncode == 3, gone.stdout + gone.stderr
    assert "does not exist" in gone.stdout


def test_an_agent_whose_engine_lacks_the_image_pulls_it_by_digest_instead_of_building_it(
    agents: Callable[[str], Agent], tmp_path: Path, request: pytest.FixtureRequest, second_engine: str
) -> None:
    """Agent 1 on the test bed's engine builds and pushes to the test bed's registry; agent 2 on an engine of
    its own (tests/support/second_engine.py: its own data root, only the base image in it) takes every stage
    up to trivy-image from the store, build by pulling the image by digest, not by building it."""
    options, env = store_settings("folder", tmp_path, request)
    options += ["--set", "trivy.scanners=secret,misconfig"]  # Trivy's public vulnerability DB is out of reach
    first, second = agents("agent-1"), agents("agent-2")
    ran = first("run", "--stage", "all", "--skip", "deploy", *options, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads((first.root / "reports" / "pipeline.json").read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    image_id = next(s for s in report["stages"] if s["name"] == "build")["artifacts"]["image_id"]
    assert not _engine_has(second_engine, image_id)

    upto = "lint,train,promotion,test,trivy-fs,build,trivy-image"
    again = second("run", "--stage", upto, *options, env={**env, "DOCKER_HOST": second_engine})
    assert again.returncode == 0, again.stdout + again.stderr
    stages = json.loads((second.root / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"]  # type: ignore[attr-defined]
    by_name = {s["name"]: s for s in stages}
    assert {n: s["status"] for n, s in by_name.items()} == dict.fromkeys(upto.split(","), "cached")
    assert "pulled from " in by_name["build"]["summary"] and "@sha256:" in by_name["build"]["summary"]
    assert _engine_has(second_engine, image_id)


def _engine_has(host: str, image_id: str) -> bool:
    found = subprocess.run(
        ["docker", "-H", host, "image", "inspect", "--format", "{{.Id}}", image_id],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.returncode == 0 and found.stdout.strip() == image_id
