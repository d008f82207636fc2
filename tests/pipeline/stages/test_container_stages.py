"""The container stages against the real test bed: Docker engine, docker-registry, Trivy.

The project itself (app, model_training, Dockerfile) is copied into a temporary directory and run
through ``python -m pipeline`` as a user would; nothing is mocked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from pipeline import config
from pipeline.adapters.docker_containers import free_port
from pipeline.adapters.docker_engine import DockerEngine
from pipeline.adapters.registry import RegistryClient
from pipeline.outputs import BuildOutputs, PromotionOutputs
from pipeline.stages.smoke import CHECKOUT_LABEL, checkout_id
from tests.conftest import ROOT, record_passes, run_cli

pytestmark = pytest.mark.integration

PROJECT_FILES = (
    "app",
    "model_training",
    "requirements",
    "Dockerfile",
    ".dockerignore",
    "pipeline.toml",
)


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


class Project:
    """A copy of the project with settings pointing at this test's registry, port and names."""

    def __init__(self, root: Path, registry: str, base_image: str) -> None:
        self.root = root
        self.unique = uuid.uuid4().hex[:8]
        self.port = free_port()
        self.container = f"iris-test-{self.unique}"
        self.registry = registry
        self.sets = [
            f"image.base={base_image}",
            f"image.repository=iris-{self.unique}",
            f"registry.url={registry}",
            "trivy.scanners=secret,misconfig",
            f"deploy.local.port={self.port}",
            f"deploy.local.container_name={self.container}",
            "deploy.local.ready_timeout_s=40",
        ]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        sets = [item for s in self.sets for item in ("--set", s)]
        return run_cli([*args, *sets], self.root, env=env, timeout=900)

    def state(self) -> dict:
        return json.loads((self.root / ".pipeline" / "state.json").read_text(encoding="utf-8"))

    def stages(self) -> dict[str, dict]:
        doc = json.loads((self.root / "reports" / "pipeline.json").read_text(encoding="utf-8"))
        return {s["name"]: s for s in doc["stages"]}

    def live_image(self, engine: DockerEngine) -> str:
        return engine.client.api.inspect_container(self.container)["Config"]["Image"]


@pytest.fixture
def project(tmp_path: Path, start_registry, base_image: str, engine: DockerEngine):
    registry = start_registry()
    proj = Project(copy_project(tmp_path / "project"), registry.address, base_image)
    yield proj
    for name in (proj.container, f"{proj.container}-previous"):
        engine.remove_container(name)
    for image in engine.client.api.images(name=f"*/iris-{proj.unique}"):
        engine.remove_image(image["Id"], force=True)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def image_healthy_non_root_and_stopped_gracefully(engine: DockerEngine, image: str) -> None:
    """The image's own HEALTHCHECK command turns the container healthy (probed every 0.5 s here instead of
    15 s: an empty test inherits the image's), its server runs as uid 10001, and ``docker stop`` (SIGTERM, as
    ECS stops a task) ends it with exit 0 long before the 30 s SIGKILL."""
    container = engine.client.containers.run(
        image, detach=True, healthcheck={"test": [], "interval": 500_000_000, "start_period": 0}
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            container.reload()
            health = container.attrs["State"].get("Health", {}).get("Status")
            if health == "healthy" or container.status != "running":
                break
            time.sleep(0.25)
        assert health == "healthy", container.logs().decode(errors="replace")[-3000:]
        assert engine.container_uid(container.name) == 10001
        started = time.monotonic()
        container.stop(timeout=30)
        stopped_after = time.monotonic() - started
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0, container.logs().decode(errors="replace")[-3000:]
        assert stopped_after < 10, stopped_after
        assert "Granian shutdown completed" in container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_build_scan_smoke_push_deploy_rollback(
    project: Project, engine: DockerEngine, base_image: str
) -> None:
    ok(project.run("run", "--stage", "all", "--skip", "lint,test"))
    stages = project.stages()
    assert {n: s["status"] for n, s in stages.items()} == {
        "train": "passed",
        "promotion": "passed",
        "trivy-fs": "passed",
        "build": "passed",
        "trivy-image": "passed",
        "smoke": "passed",
        "push": "passed",
        "deploy": "passed",
        "lint": "skipped",
        "test": "skipped",
    }
    state = project.state()["stages"]
    model_version = state["train"]["outputs"]["model_version"]
    digest = state["push"]["outputs"]["digest"]
    registry = RegistryClient(project.registry)
    for ref in state["build"]["outputs"]["tags"]:
        repo, tag = ref.rsplit(":", 1)
        assert registry.manifest_digest(repo.split("/", 1)[1], tag) == digest
    labels = engine.image_labels(state["build"]["outputs"]["image_id"])
    assert labels["io.mlops.model.version"] == model_version
    assert labels["org.opencontainers.image.revision"]
    reports = project.root / "reports" / "stages"
    for name in (
        "trivy-fs.json",
        "trivy-fs.sarif",
        "trivy-image.json",
        "trivy-image.sarif",
        "trivy-image.cdx.json",
    ):
        assert (reports / name).stat().st_size > 0, name
    assert "removed container smoke-" in (reports / "smoke.log").read_text(encoding="utf-8")

    # the service is live, by digest
    base = f"http://127.0.0.1:{project.port}"
    assert requests.get(f"{base}/api/v1/model", timeout=5).json()["model_version"] == model_version
    first = project.live_image(engine)
    assert first == state["push"]["outputs"]["image"]
    image_healthy_non_root_and_stopped_gracefully(engine, first)
    # the release carries the model's metrics: the next build's promotion gate compares with them
    release = project.state()["extra"]["releases"][f"local:{project.container}"][-1]
    assert release["model"]["model_version"] == model_version
    assert len(release["model"]["evaluation_predictions"]) == 150
    assert f"no champion on local:{project.container} yet" in stages["promotion"]["summary"]

    # nothing changed but the champion, now this model: promotion compares again, the build is served from
    # the inputs-hash cache (build alone would be refused: its prerequisite promotion is stale)
    ok(project.run("run", "--stage", "promotion,build", "--skip", "lint,test"))
    assert project.stages()["build"]["status"] == "cached"
    assert f"vs champion {model_version}: not worse" in project.stages()["promotion"]["summary"]
    assert "0/150 answers changed" in project.stages()["promotion"]["summary"]

    # a smoke container a killed run (kill -9) left behind: the next smoke run of this checkout sweeps it
    orphan = engine.run_container(
        base_image,
        name=f"smoke-orphan-{project.unique}",
        labels={CHECKOUT_LABEL: checkout_id(config.load(project.root))},
        command=["sleep", "600"],
    )

    # a second release, then rollback to the first
    with (project.root / "app" / "__init__.py").open("a", encoding="utf-8") as fh:
        fh.write("\n# release 2\n")
    ok(project.run("run", "--from", "build", "--skip", "lint,test,trivy-fs"))
    assert engine.find_container(orphan) is None
    assert "left by an earlier smoke run that was killed" in (reports / "smoke.log").read_text(
        encoding="utf-8"
    )
    second = project.live_image(engine)
    assert second != first and project.stages()["build"]["status"] == "passed"
    # only the app layer is new: the user, venv and model layers keep their digests (the Dockerfile declares
    # the per-build labels after the last layer), so the push sends one layer and mounts the rest
    layers = [engine.client.api.inspect_image(ref)["RootFS"]["Layers"] for ref in (first, second)]
    assert layers[0][:-1] == layers[1][:-1] and layers[0][-1] != layers[1][-1]
    assert (reports / "push.log").read_text(encoding="utf-8").count(": Pushed") == 1
    out = ok(project.run("rollback"))
    assert f"to {first}" in out
    assert project.live_image(engine) == first
    assert requests.get(f"{base}/ready", timeout=5).status_code == 200


def test_broken_image_fails_smoke_and_local_deploy_rolls_back(project: Project, engine: DockerEngine) -> None:
    ok(project.run("run", "--stage", "all", "--skip", "lint,test"))
    good = project.live_image(engine)

    init = project.root / "app" / "__init__.py"
    init.write_text(
        init.read_text(encoding="utf-8") + '\nraise RuntimeError("broken on purpose")\n', encoding="utf-8"
    )
    proc = project.run("run", "--stage", "build,smoke", "--skip", "lint,promotion,test,trivy-fs")
    assert proc.returncode == 1
    smoke = project.stages()["smoke"]
    assert smoke["status"] == "failed" and "stopped before it was ready" in smoke["error"]
    assert "broken on purpose" in (project.root / "reports" / "stages" / "smoke.log").read_text(
        encoding="utf-8"
    )
    run_id = json.loads((project.root / "reports" / "pipeline.json").read_text(encoding="utf-8"))["run_id"]
    assert engine.containers_by_label("io.mlops.smoke", run_id) == [], "smoke removed its container"

    # push the broken image by hand and deploy it: it is tried beside the good release, which stays live
    broken = project.state()["stages"]["build"]["outputs"]["tags"][0]
    repo, tag = broken.rsplit(":", 1)
    digest = engine.push(repo, tag, log=lambda _line: None)
    proc = project.run("run", "--stage", "deploy", "--set", f"deploy.image={repo}@{digest}")
    assert proc.returncode == 1
    deploy = project.stages()["deploy"]
    assert "never became ready" in deploy["error"] and "the live release was not touched" in deploy["error"]
    assert project.live_image(engine) == good
    assert engine.find_container(f"{project.container}-candidate") is None, "the candidate is removed"
    assert requests.get(f"http://127.0.0.1:{project.port}/ready", timeout=5).status_code == 200


def _state_with_image(root: Path, image_ref: str, image_id: str) -> None:
    """A run state as build, trivy-image and smoke leave it, for an image made by the test."""
    build = BuildOutputs(image_id=image_id, tags=[image_ref], image=image_ref, model_version=None, model=None)
    record_passes(root, build=build.to_json(), trivy_image={}, smoke={})


def _built_repo(tmp_path: Path, toml: str, image_ref: str, image_id: str) -> Path:
    """A checkout with ``pipeline.toml`` and a run state in which build made ``image_ref``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pipeline.toml").write_text(toml, encoding="utf-8")
    _state_with_image(repo, image_ref, image_id)
    return repo


def _tiny_image(engine: DockerEngine, context: Path, ref: str) -> str:
    return engine.build(context, "Dockerfile", [ref], log=lambda _line: None)


@pytest.mark.parametrize("case", ["wrong-credentials", "registry-stopped"])
def test_push_failures_exit_1_and_never_leak_the_password(
    case: str,
    tmp_path: Path,
    start_registry,
    htpasswd_file: Callable[[str, str], Path],
    engine: DockerEngine,
    tiny_context: Path,
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    registry = start_registry(htpasswd=htpasswd_file("ci", "the-right-one"))
    ref = f"{registry.address}/tiny-{uuid.uuid4().hex[:8]}:v1"
    image_id = _tiny_image(engine, tiny_context, ref)
    repo = _built_repo(tmp_path, f'[registry]\nurl = "{registry.address}"\npush_retries = 2\n', ref, image_id)
    if case == "registry-stopped":
        registry.stop()
    try:
        proc = run_cli(
            ["run", "--stage", "push"], repo, env={"REGISTRY_USERNAME": "ci", "REGISTRY_PASSWORD": password}
        )
    finally:
        engine.remove_image(image_id, force=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]["error"]
    if case == "wrong-credentials":
        assert "auth" in error.lower() or "credentials" in error.lower(), error
    else:
        assert "connect" in error.lower(), error
    everything = (
        proc.stdout
        + proc.stderr
        + "".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in (repo / "reports").rglob("*")
            if p.is_file()
        )
    )
    assert password not in everything
    assert password not in (repo / ".pipeline" / "state.json").read_text(encoding="utf-8")


def test_push_goes_to_the_registry_configured_now_not_the_one_build_named(
    tmp_path: Path,
    start_registry,
    htpasswd_file: Callable[[str, str], Path],
    engine: DockerEngine,
    tiny_context: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built for registry A, pushed with --set registry.url=B: B gets it; B's credentials never go to A."""
    monkeypatch.delenv("PIPELINE_IMAGE__REPOSITORY")  # the repository is this test's pipeline.toml's
    registry_a = start_registry()
    registry_b = start_registry(htpasswd=htpasswd_file("b-user", "b-password"))
    name = f"tiny-{uuid.uuid4().hex[:8]}"
    ref_a = f"{registry_a.address}/{name}:v1"
    image_id = _tiny_image(engine, tiny_context, ref_a)
    toml = f'[image]\nrepository = "{name}"\n[registry]\nurl = "{registry_a.address}"\n'
    repo = _built_repo(tmp_path, toml, ref_a, image_id)
    try:
        proc = run_cli(
            ["run", "--stage", "push", "--set", f"registry.url={registry_b.address}"],
            repo,
            env={"REGISTRY_USERNAME": "b-user", "REGISTRY_PASSWORD": "b-password"},
        )
    finally:
        engine.remove_image(image_id, force=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pushed = json.loads((repo / ".pipeline" / "state.json").read_text(encoding="utf-8"))["stages"]["push"]
    assert pushed["outputs"]["image"].startswith(f"{registry_b.address}/{name}@sha256:")
    digest = pushed["outputs"]["digest"]
    assert RegistryClient(registry_b.address, "b-user", "b-password").manifest_digest(name, "v1") == digest
    assert f"/v2/{name}/" not in registry_a.log_path.read_text(encoding="utf-8"), "nothing was sent to A"
    assert RegistryClient(registry_a.address).manifest_digest(name, "v1") is None
    push_log = (repo / "reports" / "stages" / "push.log").read_text(encoding="utf-8")
    assert "was built for another registry" in push_log


def test_trivy_fs_gates_on_a_planted_secret_and_a_root_dockerfile(make_repo) -> None:
    key_id = "AKIA" + "QYLPMN5HHHFPZAM2"  # assembled at run time: the repository carries no key
    repo = make_repo(
        {
            "pipeline.toml": '[trivy]\nscanners = ["secret", "misconfig"]\n',
            "config/settings.py": (
                f'AWS_ACCESS_KEY_ID = "{key_id}"\n'
                f'AWS_SECRET_ACCESS_KEY = "{"w" * 8}J/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
            ),
            "Dockerfile": 'FROM alpine:3.19\nRUN echo hi\nCMD ["sh"]\n',
        }
    )
    proc = run_cli(["run", "--stage", "trivy-fs"], repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    log = (repo / "reports" / "stages" / "trivy-fs.log").read_text(encoding="utf-8")
    assert "aws-access-key-id" in log and "CRITICAL" in log
    assert "DS-0002" in log or "DS002" in log
    error = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]["error"]
    assert "secret" in error and "CRITICAL" in error

    # accept the secret by id and raise the gate above the HIGH misconfiguration: it passes,
    # and still says what it saw
    (repo / ".trivyignore").write_text("aws-access-key-id\naws-secret-access-key\n", encoding="utf-8")
    proc = run_cli(["run", "--stage", "trivy-fs", "--set", "trivy.severity=CRITICAL"], repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0][
        "summary"
    ]
    assert "misconfig" in summary and "HIGH" in summary


@pytest.mark.parametrize(
    ("sets", "blocking"),
    [
        (["trivy.severity=HIGH"], {"FAKE-2026-0001", "FAKE-2026-0002"}),
        (["trivy.severity=CRITICAL"], {"FAKE-2026-0002"}),
        (["trivy.severity=HIGH", "trivy.ignore_unfixed=true"], {"FAKE-2026-0001"}),
        (
            ["trivy.severity=LOW", "trivy.ignore_unfixed=true", "trivy.ignore_file=ignore.txt"],
            {"FAKE-2026-0003"},
        ),
        (["trivy.severity=CRITICAL", "trivy.ignore_unfixed=true"], set()),
    ],
)
def test_trivy_fs_vulnerability_gate_with_a_real_db(
    make_repo, fake_trivy_cache: Path, sets: list[str], blocking: set[str]
) -> None:
    repo = make_repo(
        {
            "pipeline.toml": '[trivy]\nscanners = ["vuln"]\nskip_db_update = true\n',
            "requirements.txt": "acme-widgets==1.0.0\nglobex-utils==2.3.0\n",
            "ignore.txt": "FAKE-2026-0001\nFAKE-2026-0004\n",
        }
    )
    args = ["run", "--stage", "trivy-fs", "--set", f"trivy.cache_dir={fake_trivy_cache}"]
    for s in sets:
        args += ["--set", s]
    proc = run_cli(args, repo)
    stage = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]
    assert proc.returncode == (1 if blocking else 0), proc.stdout + proc.stderr
    if blocking:
        found = {word for word in stage["error"].replace(",", " ").split() if word.startswith("FAKE-")}
        assert found == blocking
    report = json.loads((repo / "reports" / "stages" / "trivy-fs.json").read_text(encoding="utf-8"))
    reported = {
        v["VulnerabilityID"] for r in report.get("Results", []) for v in r.get("Vulnerabilities") or []
    }
    assert blocking <= reported


def test_vuln_scan_without_a_db_fails_with_a_fix(make_repo, tmp_path: Path) -> None:
    repo = make_repo(
        {
            "pipeline.toml": '[trivy]\nscanners = ["vuln"]\nskip_db_update = true\n',
            "requirements.txt": "acme-widgets==1.0.0\n",
        }
    )
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    proc = run_cli(["run", "--stage", "trivy-fs", "--set", f"trivy.cache_dir={empty}"], repo)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # found by preflight: no DB in the cache dir
    assert "no vulnerability DB" in proc.stderr
    proc = run_cli(
        [
            "run",
            "--stage",
            "trivy-fs",
            "--set",
            f"trivy.cache_dir={empty}",
            "--set",
            "trivy.skip_db_update=false",
            "--set",
            "trivy.db_repository=127.0.0.1:9/none",
        ],
        repo,
    )
    assert proc.returncode == 1
    error = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]["error"]
    assert "secret" in error and "misconfig" in error, error  # the message says how to scan offline


@pytest.mark.parametrize("command", [["doctor", "--stage", "build"], ["run", "--stage", "smoke"]])
def test_engine_not_running_exits_3(make_repo, command: list[str]) -> None:
    repo = make_repo(
        {
            "pipeline.toml": "",
        }
    )
    build = BuildOutputs(image_id="sha256:x", tags=["r:t"], image="r:t", model_version=None, model=None)
    record_passes(repo, build=build.to_json())
    proc = run_cli(command, repo, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "docker engine" in (proc.stdout + proc.stderr).lower()
    assert "testbed.sh up" in proc.stdout + proc.stderr


def test_failing_run_fails_build_with_the_engine_error(make_repo, base_image: str) -> None:
    repo = make_repo(
        {
            # a placeholder model: the model check (promotion) is off, the engine's error is the subject
            "pipeline.toml": f'[image]\nbase = "{base_image}"\nrepository = "fail-{uuid.uuid4().hex[:8]}"\n'
            "[promotion]\ngate = false\n",
            "Dockerfile": 'ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nRUN echo "about to fail" && exit 3\n',
            "model/iris_model.onnx": "placeholder",
        }
    )
    waived = PromotionOutputs("waived", None, None, "local:x", None, None, "promotion gate waived")
    record_passes(repo, lint={}, promotion=waived.to_json(), test={}, trivy_fs={})
    proc = run_cli(["run", "--stage", "build"], repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    stage = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]
    assert "docker build failed" in stage["summary"]
    assert "returned a non-zero code: 3" in stage["summary"]
    assert "about to fail" in (repo / "reports" / "stages" / "build.log").read_text(encoding="utf-8")


def test_doctor_never_prints_the_registry_password(make_repo) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    repo = make_repo({"pipeline.toml": '[registry]\nurl = "127.0.0.1:9"\n'})
    proc = run_cli(
        ["doctor", "--stage", "push"], repo, env={"REGISTRY_USERNAME": "ci", "REGISTRY_PASSWORD": password}
    )
    assert proc.returncode == 3  # the registry does not answer
    assert "registry" in proc.stdout
    assert password not in proc.stdout + proc.stderr
    assert password[:8] not in proc.stdout + proc.stderr


def test_an_ignore_entry_removed_scans_the_image_again(
    make_repo, engine: DockerEngine, tiny_context: Path, image_cleanup: list[str]
) -> None:
    """Issue 26: an image with a CRITICAL secret, accepted once by .trivyignore, was reported ``cached``
    after the entry was removed. The ignore file is an input of trivy-image: the scan runs and fails."""
    key_id = "AKIA" + "QYLPMN5HHHFPZAM2"  # assembled at run time: the repository carries no key
    (tiny_context / "settings.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{key_id}"\nAWS_SECRET_ACCESS_KEY = "{"w" * 8}J/K7MDENG/bPxRfiCYEXAMPLEKEY"\n',
        encoding="utf-8",
    )
    dockerfile = "FROM scratch\nCOPY settings.py /app/settings.py\n"
    (tiny_context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    ref = f"secret-{uuid.uuid4().hex[:8]}:v1"
    image_id = _tiny_image(engine, tiny_context, ref)
    image_cleanup.append(ref)
    repo = make_repo({"pipeline.toml": '[trivy]\nscanners = ["secret"]\n'})
    built = BuildOutputs(image_id=image_id, tags=[ref], image=ref, model_version=None, model=None)
    record_passes(repo, build=built.to_json())
    (repo / ".trivyignore").write_text("aws-access-key-id\naws-secret-access-key\n", encoding="utf-8")
    ok(run_cli(["run", "--stage", "trivy-image"], repo))

    (repo / ".trivyignore").write_text("aws-secret-access-key\n", encoding="utf-8")
    proc = run_cli(["run", "--stage", "trivy-image"], repo)
    stage = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]
    assert proc.returncode == 1 and stage["status"] == "failed", stage
    assert "CRITICAL" in stage["error"] and "aws-access-key-id" in stage["error"], stage


def _base_at(engine: DockerEngine, tmp_path: Path, ref: str, patch: str) -> str:
    """Tag ``ref`` to a one-file image holding ``patch``: a base image, or the same tag moved to a patch."""
    context = tmp_path / f"base-{uuid.uuid4().hex[:8]}"
    context.mkdir()
    (context / "patch.txt").write_text(patch, encoding="utf-8")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY patch.txt /patch.txt\n", encoding="utf-8")
    return engine.build(context, "Dockerfile", [ref], log=lambda _line: None)


def _base_repo(make_repo, base: str) -> Path:
    """A checkout whose Dockerfile builds on ``image.base``, with lint, test and trivy-fs passed."""
    unique = uuid.uuid4().hex[:8]
    repo = make_repo(
        {
            "pipeline.toml": (
                f'[image]\nbase = "{base}"\nrepository = "moved-{unique}"\n'
                f'[deploy.local]\ncontainer_name = "none-{unique}"\n'
                "[promotion]\ngate = false\n"  # a placeholder model: the base image is the subject
            ),
            "Dockerfile": "ARG PYTHON_IMAGE\nFROM ${PYTHON_IMAGE}\nCOPY model/ /model/\n",
            ".dockerignore": "reports\n.pipeline\n",  # what each run writes is not the image's
            "model/iris_model.onnx": "placeholder",
        }
    )
    waived = PromotionOutputs("waived", None, None, "local:x", None, None, "promotion gate waived")
    record_passes(repo, lint={}, promotion=waived.to_json(), test={}, trivy_fs={})
    return repo


def test_a_base_image_moved_under_its_tag_rebuilds(
    make_repo, engine: DockerEngine, tmp_path: Path, image_cleanup: list[str]
) -> None:
    """Issue 26: a base image moved under the same tag left build (and so trivy-image) cached, and the
    deployed image lacked the patch. The image the engine resolves ``image.base`` to is a build input."""
    base = f"base-{uuid.uuid4().hex[:8]}:3.11"
    image_cleanup.append(base)
    _base_at(engine, tmp_path, base, "unpatched\n")
    repo = _base_repo(make_repo, base)
    ok(run_cli(["run", "--stage", "build"], repo, env={"PIPELINE_IMAGE__BASE": base}))
    state = json.loads((repo / ".pipeline" / "state.json").read_text(encoding="utf-8"))
    first = state["stages"]["build"]["outputs"]["image_id"]
    image_cleanup.append(first)
    ok(run_cli(["run", "--stage", "build"], repo, env={"PIPELINE_IMAGE__BASE": base}))  # unchanged: cached
    assert (
        json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]["status"]
        == "cached"
    )

    patched = _base_at(engine, tmp_path, base, "patched\n")  # the same tag, another image
    dry = ok(run_cli(["run", "--stage", "build", "--dry-run"], repo, env={"PIPELINE_IMAGE__BASE": base}))
    assert "-> runs: extra base-image changed" in dry, dry
    ok(run_cli(["run", "--stage", "build"], repo, env={"PIPELINE_IMAGE__BASE": base}))
    stage = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]
    assert stage["status"] == "passed", stage
    state = json.loads((repo / ".pipeline" / "state.json").read_text(encoding="utf-8"))
    second = state["stages"]["build"]["outputs"]["image_id"]
    image_cleanup.append(second)
    layers = engine.client.api.inspect_image(second)["RootFS"]["Layers"]
    assert second != first and engine.client.api.inspect_image(patched)["RootFS"]["Layers"][0] in layers
    # trivy-image follows build's output: the scan of the unpatched image does not stand in for this one
    assert state["stages"]["build"]["inputs"]["extra:base-image"] == patched


def test_a_base_image_the_engine_lacks_is_a_miss_until_built(
    make_repo, engine: DockerEngine, tmp_path: Path, image_cleanup: list[str]
) -> None:
    """Before the build pulls it, nobody knows which image the base tag names: the dry run says build runs,
    and why; once built, the record holds the base it was built on, and the next run is cached."""
    base = f"base-{uuid.uuid4().hex[:8]}:3.11"
    image_cleanup.append(base)
    _base_at(engine, tmp_path, base, "base\n")
    repo = _base_repo(make_repo, base)
    ok(run_cli(["run", "--stage", "build"], repo, env={"PIPELINE_IMAGE__BASE": base}))
    state = json.loads((repo / ".pipeline" / "state.json").read_text(encoding="utf-8"))
    image_cleanup.append(state["stages"]["build"]["outputs"]["image_id"])
    engine.client.api.remove_image(base)  # the built image keeps its layers; the tag is gone
    dry = ok(run_cli(["run", "--stage", "build", "--dry-run"], repo, env={"PIPELINE_IMAGE__BASE": base}))
    assert f"-> runs: not known before it runs: base-image: {base} is not in the engine yet" in dry, dry
