"""The promise itself: the Jenkinsfile's one ``sh`` step runs the whole pipeline inside the Jenkins container.

Jenkins cannot be had here, so the container is the stand-in built from ``custom_jenkins/Dockerfile``'s
``tools`` stage (the tool layer the real controller gets) on the test bed's base image. It is started the
way ``custom_jenkins/manage.sh up`` starts Jenkins: the engine's socket mounted, the default bridge
network, uid 1000 plus the socket's group, the workspace as a volume, no host network, not privileged.
Inside it runs the exact ``sh`` command of the ``Jenkinsfile`` (evaluated by the Groovy harness, not
copied) with ``PROFILE=local`` and ``STAGES=all``, against a registry that listens on the host's loopback,
which the container itself cannot reach. The deployed service must answer from the host; ``doctor`` and
``rollback`` run in the container too.

What differs from a real controller: the base image (Debian 12 + Python 3.11 from debootstrap instead
of jenkins/jenkins with its JDK), and the environment a controller would pass with ``-e`` is given here
(the local base image, Trivy without its public vulnerability database, a free port and unique names).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from pipeline.adapters.docker_engine import DockerEngine, free_port
from tests.conftest import ROOT, SPEC_STAGES
from tests.jenkins.test_jenkinsfile import HARNESS, JENKINSFILE, java_home
from tests.support.realtools import BASE_IMAGE, Registry, launch_registry, require_tool

# One process runs this module (scripts/test.sh: --dist loadgroup): its fixture runs the whole pipeline once.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("jenkins-in-container")]

SOCKET = "/var/run/docker.sock"
SECRETS = {
    "REGISTRY_USERNAME": "ci-robot",
    "REGISTRY_PASSWORD": "reg-s3cret-9f2c41d7",
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE1234",
    "AWS_SECRET_ACCESS_KEY": "aws-s3cret-0b7e5a93c1d2",
}


def jenkins_sh_step(**params: str) -> tuple[str, dict[str, str]]:
    """The Jenkinsfile's one sh script and the environment it sees, for a build with ``params``."""
    groovy = require_tool("groovy")
    args = [arg for name, value in params.items() for arg in ("--param", f"{name}={value}")]
    result = subprocess.run(
        [groovy, str(HARNESS), *args, str(JENKINSFILE)],
        cwd=ROOT,
        env={**os.environ, "JAVA_HOME": java_home()},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (sh,) = json.loads(result.stdout)["sh"]
    return sh["script"], dict(sh["envValues"])


def make_workspace(dest: Path) -> Path:
    """What Jenkins checks out: the project's files (as in this working tree) in a git repo on main."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "checkout"], cwd=dest, check=True)
    subprocess.run(["chown", "-R", "1000:1000", str(dest)], check=True)
    return dest


@dataclass
class Controller:
    """Runs commands in the stand-in as Jenkins runs its builds, in one workspace."""

    image: str
    workspace: Path
    env: dict[str, str]

    def run(self, script: str, timeout_s: float = 1500) -> subprocess.CompletedProcess[str]:
        argv = [
            "docker", "run", "--rm",
            "--user", "1000:1000",
            "--group-add", str(os.stat(SOCKET).st_gid),
            "--volume", f"{SOCKET}:{SOCKET}",
            "--volume", f"{self.workspace}:/ws",
            "--workdir", "/ws",
        ]  # fmt: skip
        for name in self.env:
            argv += ["--env", name]  # values travel in this process's environment, not on the command line
        argv += [self.image, "bash", "-c", script]
        return subprocess.run(
            argv,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


@dataclass
class JenkinsRun:
    controller: Controller
    build: subprocess.CompletedProcess[str]
    registry: Registry
    port: int
    container_name: str
    repository: str

    @property
    def reports(self) -> Path:
        return self.controller.workspace / "reports"

    def stages(self) -> dict[str, dict]:
        doc = json.loads((self.reports / "pipeline.json").read_text(encoding="utf-8"))
        return {s["name"]: s for s in doc["stages"]}


@pytest.fixture(scope="module")
def jenkins_run(
    jenkins_standin: str, engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JenkinsRun]:
    unique = uuid.uuid4().hex[:8]
    registry = launch_registry(tmp_path_factory.mktemp("registry") / "data")
    script, step_env = jenkins_sh_step(PROFILE="local", STAGES="all")
    masked = {name for name, value in step_env.items() if value.startswith("<masked:")}
    assert masked == set(SECRETS), "the sh step runs inside both credential bindings"
    port, name, repository = free_port(), f"iris-jenkins-{unique}", f"iris-jenkins-{unique}"
    env = {
        **{k: v for k, v in step_env.items() if k not in masked},
        **SECRETS,  # what withCredentials binds
        # What the controller's `docker run -e` would set on this machine: the local base image (no
        # Docker Hub), no vulnerability DB (no public registry), and names of this test's own.
        "PIPELINE_IMAGE__BASE": BASE_IMAGE,
        "PIPELINE_TRIVY__SCANNERS": "secret,misconfig",
        "PIPELINE_REGISTRY__URL": registry.address,
        "PIPELINE_IMAGE__REPOSITORY": repository,
        "PIPELINE_DEPLOY__LOCAL__PORT": str(port),
        "PIPELINE_DEPLOY__LOCAL__CONTAINER_NAME": name,
    }
    controller = Controller(jenkins_standin, make_workspace(tmp_path_factory.mktemp("ws")), env)
    build = controller.run(script)
    run = JenkinsRun(controller, build, registry, port, name, f"{registry.address}/{repository}")
    try:
        yield run
    finally:
        for container in (name, f"{name}-previous"):
            engine.remove_container(container)
        for image in engine.client.images.list(name=run.repository):
            engine.remove_image(image.id, force=True)
        registry.stop()


def _explain(run: JenkinsRun) -> str:
    build = run.build
    return f"exit {build.returncode}\n--- stdout\n{build.stdout[-6000:]}\n--- stderr\n{build.stderr[-3000:]}"


def test_every_stage_passes_inside_the_jenkins_container(jenkins_run: JenkinsRun) -> None:
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    stages = jenkins_run.stages()
    assert list(stages) == list(SPEC_STAGES)
    assert {n: s["status"] for n, s in stages.items()} == dict.fromkeys(SPEC_STAGES, "passed")
    smoke_log = (jenkins_run.reports / "stages" / "smoke.log").read_text(encoding="utf-8")
    assert "join network 'bridge'" in smoke_log, "the smoke container is reached on the shared network"
    push_log = (jenkins_run.reports / "stages" / "push.log").read_text(encoding="utf-8")
    assert "asked through the engine" in push_log


def test_the_reports_jenkins_publishes_are_there(jenkins_run: JenkinsRun) -> None:
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    for rel in (
        "pipeline.json",
        "pipeline-junit.xml",
        "stages/test-junit.xml",
        "stages/deploy.log",
        "index.html",
        "report.css",
    ):
        assert (jenkins_run.reports / rel).is_file(), rel
    page = (jenkins_run.reports / "index.html").read_text(encoding="utf-8")
    assert 'id="timeline"' in page and 'id="confusion-matrix"' in page and "deployed to" in page


def test_the_deployed_service_answers_from_the_host(jenkins_run: JenkinsRun, engine: DockerEngine) -> None:
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    base = f"http://127.0.0.1:{jenkins_run.port}"
    assert requests.get(f"{base}/ready", timeout=5).status_code == 200
    answer = requests.post(f"{base}/api/v1/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=5)
    assert answer.json()["predictions"][0]["label"] == "setosa"
    pushed = jenkins_run.stages()["push"]["artifacts"]["image"]
    assert engine.container_state(jenkins_run.container_name).image == pushed


def test_no_secret_reaches_a_report_or_the_build_log(jenkins_run: JenkinsRun) -> None:
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    texts = [jenkins_run.build.stdout, jenkins_run.build.stderr]
    texts += [
        p.read_text(encoding="utf-8", errors="replace") for p in jenkins_run.reports.rglob("*") if p.is_file()
    ]
    state = jenkins_run.controller.workspace / ".pipeline" / "state.json"
    texts.append(state.read_text(encoding="utf-8"))
    for name, value in SECRETS.items():
        if name.endswith(("PASSWORD", "SECRET_ACCESS_KEY")):
            assert not any(value in text for text in texts), f"{name} leaked"


def test_doctor_in_the_container_says_how_it_reaches_containers_and_the_registry(
    jenkins_run: JenkinsRun,
) -> None:
    result = jenkins_run.controller.run(".venv/bin/python -m pipeline doctor --profile local", timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr
    flat = " ".join(result.stdout.split())
    assert "join network 'bridge'" in flat
    assert "asked through the engine" in flat


def test_rollback_from_inside_the_container(jenkins_run: JenkinsRun, engine: DockerEngine) -> None:
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    first = jenkins_run.stages()["push"]["artifacts"]["image"]
    workspace = jenkins_run.controller.workspace
    with (workspace / "app" / "__init__.py").open("a", encoding="utf-8") as fh:
        fh.write("# a second release\n")
    second = jenkins_run.controller.run(
        ".venv/bin/python -m pipeline run --stage build,smoke,push,deploy "
        "--skip lint,test,trivy-fs,trivy-image --profile local",
        timeout_s=900,
    )
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    released = engine.container_state(jenkins_run.container_name).image
    assert released != first and released.startswith(jenkins_run.repository + "@sha256:")

    result = jenkins_run.controller.run(
        ".venv/bin/python -m pipeline rollback --profile local", timeout_s=300
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"to {first}" in result.stdout
    assert engine.container_state(jenkins_run.container_name).image == first
    assert requests.get(f"http://127.0.0.1:{jenkins_run.port}/ready", timeout=5).status_code == 200
