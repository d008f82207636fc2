"""The promise itself: the Jenkinsfile's one ``sh`` step runs the whole pipeline on the Jenkins agent.

Jenkins cannot be had here, so the agent is the stand-in built from ``custom_jenkins/Dockerfile``'s ``tools``
stage (the tool layer the real agent gets) on the test bed's base image. It is started the way
``custom_jenkins/manage.sh up`` starts the agent: the engine's socket mounted, a user-defined network of its
own (manage.sh's ``jenkins``), uid 1000 plus the socket's group, an init, the workspace as a volume, no host
network, not privileged. Inside it a build runs as Jenkins runs one (``Controller``): the exact ``sh`` command
of the ``Jenkinsfile`` (evaluated by the Groovy harness, not copied) with ``PROFILE=local`` and
``STAGES=all``, written to a script file and run by ``sh -xe``, in a detached checkout, with Jenkins'
environment, against a registry that listens on the host's loopback, which the container itself cannot
reach. The deployed service must answer from the host; ``doctor``, ``rollback`` and an abort run in the
agent too.

What differs from a real agent: the base image (Debian 12 + Python 3.11 from debootstrap; the agent's Java
and agent.jar are left out: nothing of the build runs through them), and the environment an operator would
pass with ``-e`` is given here (the local base image, Trivy without its public vulnerability database, a free
port and unique names).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.adapters.docker_containers import free_port
from pipeline.adapters.docker_engine import DockerEngine
from tests.conftest import README_STAGES, ROOT
from tests.jenkins.test_jenkinsfile import HARNESS, JENKINSFILE, java_home, published
from tests.support import report_formats as formats
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
    (sh,) = jenkins_record(**params)["sh"]
    return sh["script"], dict(sh["envValues"])


def jenkins_record(**params: str) -> dict[str, Any]:
    """What the Jenkinsfile does in a build with ``params``: the Groovy harness's record."""
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
    record: dict[str, Any] = json.loads(result.stdout)
    return record


# Where the agent keeps its builds (casc.yaml: the node's remoteFS), and the job's workspace in it.
AGENT_HOME = "/home/jenkins"
WORKSPACE = f"{AGENT_HOME}/agent/workspace/iris-classifier"
ORIGIN = "https://git.example.invalid/iris-classifier.git"


def make_workspace(dest: Path) -> tuple[Path, str]:
    """What the git plugin leaves: the project's files (as in this working tree) committed on ``main`` of an
    origin, fetched into the workspace as ``refs/remotes/origin/*`` and checked out *detached* at that
    commit (GitSCM: ``git fetch +refs/heads/*:refs/remotes/origin/*``, then ``git checkout -f SHA``; no
    local branch). Returns the workspace and the commit."""
    origin, work = dest / "origin", dest / "workspace"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (origin / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, origin / rel)
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=origin, check=True)
    subprocess.run(["git", "add", "-A"], cwd=origin, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "checkout"], cwd=origin, check=True)
    work.mkdir()
    for step in (
        ["init", "-q"],
        ["remote", "add", "origin", ORIGIN],
        ["fetch", "-q", "--tags", "--force", str(origin), "+refs/heads/*:refs/remotes/origin/*"],
        ["checkout", "-q", "-f", "refs/remotes/origin/main^{commit}"],
    ):
        subprocess.run([*git, *step], cwd=work, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["chown", "-R", "1000:1000", str(work)], check=True)
    return work, commit


def jenkins_environment(commit: str) -> dict[str, str]:
    """What Jenkins puts into a build's environment on the agent, besides the job's own ``environment {}``:
    core's ``Run.getEnvironment`` and ``Executor`` (BUILD_*, JOB_*, JENKINS_URL, NODE_NAME, WORKSPACE,
    JENKINS_NODE_COOKIE), the git plugin (GIT_BRANCH as ``origin/main``, GIT_COMMIT, GIT_URL) and
    durable-task (JENKINS_SERVER_COOKIE, set by its launcher; ``BourneShellScript``)."""
    number, url = "7", "http://jenkins.example.invalid:8080/"
    return {
        "HOME": AGENT_HOME,
        "WORKSPACE": WORKSPACE,
        "WORKSPACE_TMP": f"{WORKSPACE}@tmp",
        "JENKINS_URL": url,
        "JOB_NAME": "iris-classifier",
        "JOB_BASE_NAME": "iris-classifier",
        "JOB_URL": f"{url}job/iris-classifier/",
        "BUILD_NUMBER": number,
        "BUILD_ID": number,
        "BUILD_TAG": f"jenkins-iris-classifier-{number}",
        "BUILD_URL": f"{url}job/iris-classifier/{number}/",
        "NODE_NAME": "agent",
        "NODE_LABELS": "agent pipeline",
        "EXECUTOR_NUMBER": "0",
        "GIT_BRANCH": "origin/main",
        "GIT_COMMIT": commit,
        "GIT_URL": ORIGIN,
        "JENKINS_NODE_COOKIE": uuid.uuid4().hex,
        "JENKINS_SERVER_COOKIE": f"durable-{uuid.uuid4().hex}",
    }


@dataclass
class Controller:
    """Runs commands on the stand-in agent as Jenkins runs a ``sh`` step, in one workspace: the script
    written to a file under ``WORKSPACE@tmp/durable-*/`` and run as ``sh -xe FILE`` (durable-task's
    ``BourneShellScript``: ``'sh' -xe`` unless the script starts with ``#!``; ``sh`` is dash on Debian),
    as uid 1000 with the socket's group, in ``WORKSPACE``, under a real init (tini: ``docker run --init``)
    so that signals reach the build's processes as they would on an agent."""

    image: str
    workspace: Path
    env: dict[str, str]
    network: str

    def _script(self, script: str) -> tuple[Path, str]:
        """The step's script as durable-task writes it: (the control dirs' parent, its path in the agent)."""
        control = self.workspace.parent / "workspace@tmp" / f"durable-{uuid.uuid4().hex[:8]}"
        control.mkdir(parents=True)
        (control / "script.sh").write_text(script, encoding="utf-8")
        subprocess.run(["chown", "-R", "1000:1000", str(control.parent)], check=True)
        return control.parent, f"{WORKSPACE}@tmp/{control.name}/script.sh"

    def _agent(self, tmp: Path) -> list[str]:
        """``docker run`` options of the agent: uid 1000, the socket and its group, the workspace."""
        argv = [
            "--init",
            "--network", self.network,
            "--user", "1000:1000",
            "--group-add", str(os.stat(SOCKET).st_gid),
            "--volume", f"{SOCKET}:{SOCKET}",
            "--volume", f"{self.workspace}:{WORKSPACE}",
            "--volume", f"{tmp}:{WORKSPACE}@tmp",
            "--workdir", WORKSPACE,
        ]  # fmt: skip
        return argv + self._env_args()

    def _env_args(self) -> list[str]:
        """``--env NAME`` for each variable: the values travel in this process's environment, not on the
        command line."""
        return [arg for name in self.env for arg in ("--env", name)]

    def run(self, script: str, timeout_s: float = 1500) -> subprocess.CompletedProcess[str]:
        tmp, path = self._script(script)
        return subprocess.run(
            ["docker", "run", "--rm", *self._agent(tmp), self.image, "sh", "-xe", path],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def start(self, script: str, name: str) -> None:
        """The step in the background, in a long-lived agent container ``name``: the container's main process
        stands for the agent's JVM (it outlives the build, as on a real agent, so that a dead ``sh`` does not
        take the build's other processes down with the container), and the step is ``docker exec``-ed."""
        tmp, path = self._script(script)
        env = {**os.environ, **self.env}
        for argv in (
            ["docker", "run", "--detach", "--name", name, *self._agent(tmp), self.image, "sleep", "infinity"],
            ["docker", "exec", "--detach", *self._env_args(), name, "sh", "-xe", path],
        ):
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)


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
    workspace, commit = make_workspace(tmp_path_factory.mktemp("ws"))
    network = f"jenkins-test-{unique}"  # manage.sh puts the agent on a network of its own, `jenkins`
    subprocess.run(["docker", "network", "create", network], capture_output=True, check=True, timeout=60)
    controller = Controller(jenkins_standin, workspace, {**jenkins_environment(commit), **env}, network)
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
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False, timeout=60)


def _explain(run: JenkinsRun) -> str:
    build = run.build
    return f"exit {build.returncode}\n--- stdout\n{build.stdout[-6000:]}\n--- stderr\n{build.stderr[-3000:]}"


def test_every_stage_passes_inside_the_jenkins_container(jenkins_run: JenkinsRun) -> None:
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    stages = jenkins_run.stages()
    assert list(stages) == list(README_STAGES)
    assert {n: s["status"] for n, s in stages.items()} == dict.fromkeys(README_STAGES, "passed")
    smoke_log = (jenkins_run.reports / "stages" / "smoke.log").read_text(encoding="utf-8")
    assert f"join network '{jenkins_run.controller.network}'" in smoke_log, "reached on the agent's network"
    push_log = (jenkins_run.reports / "stages" / "push.log").read_text(encoding="utf-8")
    assert "asked through the engine" in push_log


def test_a_build_of_main_pushes_latest_from_the_detached_checkout(jenkins_run: JenkinsRun) -> None:
    """The git plugin checks out a commit, not a branch: the branch comes from GIT_BRANCH=origin/main."""
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    head = subprocess.run(
        ["git", "-c", "safe.directory=*", "rev-parse", "--abbrev-ref", "HEAD"],
        cwd=jenkins_run.controller.workspace,
        capture_output=True,
        text=True,
        check=True,
    )
    assert head.stdout.strip() == "HEAD", "the stand-in's checkout is detached, as Jenkins' is"
    name = jenkins_run.repository.split("/", 1)[1]
    tags = requests.get(f"http://{jenkins_run.registry.address}/v2/{name}/tags/list", timeout=10).json()
    commit = jenkins_run.controller.env["GIT_COMMIT"]
    assert {"latest", commit[:12]} <= set(tags["tags"]) or {"latest", commit} <= set(tags["tags"]), tags
    assert "+ .venv/bin/python -m pipeline run" in jenkins_run.build.stderr, "sh -xe traces the command"


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
    build_url = jenkins_run.controller.env["BUILD_URL"]
    assert (
        json.loads((jenkins_run.reports / "pipeline.json").read_text(encoding="utf-8"))["build_url"]
        == build_url
    )
    assert f'<a id="build-url" href="{build_url}">' in page, "the report links back to the Jenkins build"


def _junit_cases(path: Path) -> list[str]:
    """The junit plugin's input: JUnit XML, a ``testsuites`` or ``testsuite`` root holding test cases."""
    root = ET.parse(path).getroot()
    assert root.tag in ("testsuites", "testsuite"), root.tag
    return [case.get("name", "") for case in root.iter("testcase")]


def _pylint(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    assert "rated at" in text, "pylint ran to its score"
    interesting = [line for line in text.splitlines() if "[" in line]
    issues = formats.pylint_issues(path)
    assert len(issues) == len(interesting), f"lines PyLintParser would drop: {interesting}"
    assert all(i.get("type") and i.get("symbol") for i in issues), issues  # parseable: [C0114(symbol), obj]
    return issues


def _mypy(path: Path) -> list[tuple[str, int, str, str]]:
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    issues = formats.mypy_issues(path)
    assert len(issues) == len(lines), f"lines MyPyParser would drop: {lines}"
    return issues


def _cobertura(path: Path) -> dict[str, dict[int, int]]:
    files = formats.cobertura_lines(path)
    covered = {name for name, lines in files.items() if any(lines.values())}
    assert any(name.startswith(("pipeline/", "app/")) for name in covered), sorted(files)[:10]
    return files


def _html(path: Path) -> list[str]:
    """HTML Publisher serves the page and the files beside it: the stylesheet it links must be there."""
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)">', path.read_text(encoding="utf-8"))
    assert sheets and all((path.parent / sheet).is_file() for sheet in sheets), sheets
    return sheets


# What reads each published file in Jenkins, as tests/support/report_formats.py mirrors it (the parser's
# source is named there and beside each step in the Jenkinsfile).
READERS: dict[str, Callable[[Path], object]] = {
    "junit": _junit_cases,
    "archiveArtifacts": lambda path: path.exists(),
    "publishHTML": _html,
    "recordIssues:pyLint": _pylint,
    "recordIssues:analysisParser": lambda p: formats.json_issues(
        p, ("code", "message", "location", "filename")
    ),
    "recordIssues:myPy": _mypy,
    "recordIssues:hadoLint": lambda p: formats.json_issues(p, ("code", "level", "line", "file", "message")),
    "recordIssues:sarif": formats.sarif_results,
    "recordCoverage:COBERTURA": _cobertura,
}


def test_every_file_the_jenkinsfile_publishes_is_there_and_parses(jenkins_run: JenkinsRun) -> None:
    """After the whole pipeline ran in the agent stand-in, each pattern of the Jenkinsfile's junit,
    archiveArtifacts, publishHTML, recordIssues and recordCoverage finds its files in the workspace, and each
    file reads as its Jenkins parser reads it."""
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    workspace = jenkins_run.controller.workspace
    patterns = published(jenkins_record(PROFILE="local", STAGES="all"))
    assert set(patterns.values()) == set(
        READERS
    ), "a publisher this test cannot read, or one it no longer sees"
    read: dict[str, object] = {}
    for pattern, publisher in sorted(patterns.items()):
        files = sorted(workspace.glob(pattern))
        assert files, f"{publisher}: nothing matches {pattern} after the run"
        for path in files:
            read[path.relative_to(workspace).as_posix()] = READERS[publisher](path)
    assert "lint" in read["reports/pipeline-junit.xml"] and read["reports/stages/test-junit.xml"]
    print({name: len(value) if isinstance(value, (list, dict)) else value for name, value in read.items()})


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
    assert f"join network '{jenkins_run.controller.network}'" in flat
    assert "asked through the engine" in flat


def test_rollback_from_inside_the_container(jenkins_run: JenkinsRun, engine: DockerEngine) -> None:
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    first = jenkins_run.stages()["push"]["artifacts"]["image"]
    workspace = jenkins_run.controller.workspace
    with (workspace / "app" / "__init__.py").open("a", encoding="utf-8") as fh:
        fh.write("# a second release\n")
    second = jenkins_run.controller.run(
        ".venv/bin/python -m pipeline run --stage promotion,build,smoke,push,deploy "
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


def build_processes(container: str) -> list[int]:
    """Host pids of the build's processes in the agent ``container``: all but its init and the process that
    stands for the agent (``sleep infinity``), as ``docker top`` lists them."""
    top = subprocess.run(
        ["docker", "top", container, "-eo", "pid,args"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.splitlines()[1:]
    rows = [line.strip().split(None, 1) for line in top]
    return [int(pid) for pid, args in rows if not args.startswith(("/sbin/docker-init", "sleep infinity"))]


def test_an_abort_as_jenkins_sends_it_during_the_swap(jenkins_run: JenkinsRun, engine: DockerEngine) -> None:
    """Jenkins' abort: SIGTERM to every process of the build, SIGKILL 5 s later (core's ProcessTree,
    ``SoftKillWaitSeconds`` = 5). Sent here in the middle of the deploy's swap of a new release. After it:
    no process or container of the run is left, ``reports/pipeline.json`` is whole or absent, and the
    release that served before serves again, at once or after the next command (``status``) says it
    undid the swap."""
    assert jenkins_run.build.returncode == 0, _explain(jenkins_run)
    before = engine.container_state(jenkins_run.container_name).image
    workspace = jenkins_run.controller.workspace
    with (workspace / "app" / "__init__.py").open("a", encoding="utf-8") as fh:
        fh.write("# a release that is aborted\n")
    shutil.rmtree(workspace / "reports")  # as the Jenkinsfile's cleanup leaves it: no earlier report
    deploy_log = workspace / "reports" / "stages" / "deploy.log"
    build = f"jenkins-abort-{uuid.uuid4().hex[:8]}"
    jenkins_run.controller.start(
        ".venv/bin/python -m pipeline run --stage promotion,build,smoke,push,deploy "
        "--skip lint,test,trivy-fs,trivy-image --profile local",
        build,
    )
    try:
        deadline = time.monotonic() + 600
        while "keeping it aside" not in (deploy_log.read_text("utf-8") if deploy_log.exists() else ""):
            assert time.monotonic() < deadline, "the deploy never reached its swap"
            assert build_processes(build), "the build ended before its swap"
            time.sleep(0.1)
        # Every process of the build, children first, as ProcessTree.killAll does (from the host: at once,
        # while the swap is under way), then SIGKILL for whatever is left 5 s later.
        signalled = build_processes(build)
        for pid in reversed(signalled):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(5)
        subprocess.run(["docker", "kill", build], capture_output=True, check=False, timeout=30)
    finally:
        logs = subprocess.run(["docker", "logs", build], capture_output=True, text=True, check=False).stderr
        subprocess.run(["docker", "rm", "-f", build], capture_output=True, check=False)

    report = workspace / "reports" / "pipeline.json"
    assert signalled, "the build had processes to signal"
    if report.exists():
        assert json.loads(report.read_text(encoding="utf-8"))["status"] == "interrupted", logs[-3000:]
    written = "written" if report.exists() else "absent"
    print(f"abort: reports/pipeline.json {written}; build log:\n{logs[-2000:]}")
    leftovers = [
        c.name
        for c in engine.client.containers.list(all=True)
        if c.name.startswith(jenkins_run.container_name)
    ]
    assert set(leftovers) <= {jenkins_run.container_name, f"{jenkins_run.container_name}-previous"}, leftovers
    status = jenkins_run.controller.run(".venv/bin/python -m pipeline status", timeout_s=300)
    assert status.returncode == 0, status.stdout + status.stderr
    if f"{jenkins_run.container_name}-previous" in leftovers:
        assert "cut short during its swap was undone" in status.stdout, status.stdout
    assert engine.container_state(jenkins_run.container_name).image == before, logs[-3000:]
    assert requests.get(f"http://127.0.0.1:{jenkins_run.port}/ready", timeout=5).status_code == 200
    assert engine.find_container(f"{jenkins_run.container_name}-previous") is None
