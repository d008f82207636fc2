"""The Jenkinsfile, evaluated for real by Groovy, and the controller image as code (``custom_jenkins/``).

Jenkins cannot run on the test machines (TESTBED.md, "Browser, load, Jenkins"), but a declarative
Jenkinsfile is a Groovy script: ``run_jenkinsfile.groovy`` binds each step name to a closure that records
the call and runs the block it was given, then prints what happened as JSON. These tests hold that record
against the pipeline's own code (its CLI, profiles, report paths, stage timeouts, secret variables) and
against ``custom_jenkins/`` (credential ids, pinned plugins, tool versions). The harness acts as a later
build (parameters in env), as Jenkins' first build (``--first-build``: params.* only, JENKINS-40574) or as a
build with parameters (``--param``); the sh step then really runs in a shell with the environment it would
see, with fakes for bootstrap.sh and .venv/bin/python. Groovy runs once per kind of build, in parallel.

The tests that need Groovy or hadolint are ``integration``: a missing tool fails them, never skips them.
The rest read files only and run in the fast suite too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, write_tree
from tests.support.realtools import require_tool

# One process runs this module (scripts/test.sh: --dist loadgroup): its fixtures run Groovy, 15 s of CPU each.
pytestmark = pytest.mark.xdist_group("jenkinsfile-groovy")

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
    **dict.fromkeys(("buildDiscarder", "choice", "string", "archiveArtifacts", "label", "pollSCM"), None),
    "triggers": "workflow-aggregator",
    "timestamps": "timestamper",
    "withCredentials": "credentials-binding",
    "junit": "junit",
    "publishHTML": "htmlpublisher",
    # Warnings NG's step and the tools' symbols (@Symbol of each tool's descriptor; analysisParser is its
    # RegisteredParser, any parser of analysis-model's registry by id), and the Coverage plugin's step.
    **dict.fromkeys(("recordIssues", "pyLint", "myPy", "hadoLint", "sarif", "analysisParser"), "warnings-ng"),
    "recordCoverage": "coverage",
}
# Plugins that the Jenkinsfile does not call but a Jenkins team expects: the build's stages as a graph.
UI_PLUGINS = {"pipeline-graph-view"}
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


def the_sh(record: dict[str, Any]) -> dict[str, Any]:
    assert len(record["sh"]) == 1, f"expected exactly one sh step, got {len(record['sh'])}"
    return record["sh"][0]


FAKE_PYTHON = "import json, sys\nprint(json.dumps(sys.argv))\n"


def pipeline_argv(
    record: dict[str, Any], shell: Sequence[str] = ("bash", "-c"), strict: bool = True
) -> list[str]:
    """The sh step's `python -m pipeline ...` command as the agent's shell runs it.

    The script really runs (``shell``, in a scratch directory) with ONLY the environment the step sees
    (the record's ``envValues``, plus PATH to find bash): a variable that is not there expands to empty,
    as on Jenkins. scripts/bootstrap.sh is a fake that leaves a mark, .venv/bin/python a fake that prints
    its argv as JSON. ``strict``: every variable the script expands must be in that environment.
    """
    sh = the_sh(record)
    if strict:
        used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", sh["script"]))
        missing = sorted(used - sh["envValues"].keys())
        assert not missing, f"the sh step expands variables its environment does not hold: {missing}"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        write_tree(work, {"scripts/bootstrap.sh": "touch bootstrapped\n", ".venv/bin/python": ""})
        fake = work / ".venv" / "bin" / "python"
        fake.write_text(f"#!{sys.executable}\n{FAKE_PYTHON}", encoding="utf-8")
        fake.chmod(0o755)
        result = subprocess.run(
            [*shell, sh["script"]],
            cwd=work,
            env={"PATH": os.environ["PATH"], **sh["envValues"]},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"the sh step failed:\n{result.stderr}"
        assert (work / "bootstrapped").is_file(), "the sh step did not run scripts/bootstrap.sh"
    return json.loads(result.stdout)


def published(record: dict[str, Any]) -> dict[str, str]:
    """Every file pattern the Jenkinsfile publishes, with its publisher: ``junit``, ``archiveArtifacts``,
    ``publishHTML``, ``recordIssues:SYMBOL`` (the Warnings NG tool that parses it) or
    ``recordCoverage:PARSER``."""
    found: dict[str, str] = {}
    for junit in record["junit"]:
        found.update(dict.fromkeys((p.strip() for p in junit["testResults"].split(",")), "junit"))
    for archive in record["archive"]:
        found[archive["artifacts"]] = "archiveArtifacts"
    for html in record["html"]:
        found.update(
            {f"{html['reportDir']}/{f.strip()}": "publishHTML" for f in html["reportFiles"].split(",")}
        )
    for issues in record["issues"]:
        found.update({tool["pattern"]: f"recordIssues:{tool['symbol']}" for tool in issues["tools"]})
    for coverage in record["coverage"]:
        found.update({tool["pattern"]: f"recordCoverage:{tool['parser']}" for tool in coverage["tools"]})
    return found


def step_name(entry: dict[str, Any]) -> str:
    return entry["step"].split(":", 1)[0]  # "stage:Pipeline" -> "stage"


def run_harness(runs: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the harness once per entry (name -> its arguments), all at once: each JVM takes ~1 s."""
    groovy = require_tool("groovy")
    env = {**os.environ, "JAVA_HOME": java_home()}
    with contextlib.ExitStack() as stack:
        started = {
            name: stack.enter_context(
                subprocess.Popen(
                    [groovy, str(HARNESS), *argv],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for name, argv in runs.items()
        }
        done = {}
        for name, proc in started.items():
            out, err = proc.communicate(timeout=180)
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def records(runs: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """The harness's JSON record of each run; a run that fails fails the test."""
    found = {}
    for name, result in run_harness(runs).items():
        if result.returncode != 0:
            pytest.fail(
                f"groovy could not run the Jenkinsfile ({name}):\n{result.stderr}{result.stdout}",
                pytrace=False,
            )
        found[name] = json.loads(result.stdout)
    return found


# --- the Jenkinsfile, run by Groovy ---------------------------------------------------------------


@pytest.fixture(scope="module")
def builds() -> dict[str, dict[str, Any]]:
    """What the Jenkinsfile does in each kind of build, evaluated by Groovy with the steps recorded:
    "rebuild" (a later build with the defaults), "first-build" (Jenkins puts no parameter into env),
    and "PROFILE=NAME" for each profile of pipeline.toml (a build with that parameter)."""
    profiles = tomllib.loads((ROOT / "pipeline.toml").read_text(encoding="utf-8"))["profiles"]
    jenkinsfile = str(JENKINSFILE)
    return records(
        {
            "rebuild": [jenkinsfile],
            "first-build": ["--first-build", jenkinsfile],
            **{f"PROFILE={name}": ["--param", f"PROFILE={name}", jenkinsfile] for name in profiles},
        }
    )


@pytest.fixture(scope="module")
def record(builds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A later build with the parameter defaults (the harness without options)."""
    return builds["rebuild"]


@pytest.fixture(scope="module")
def first_build(builds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return builds["first-build"]


@pytest.fixture(scope="module")
def by_profile(builds: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A build with ``--param PROFILE=NAME``, for each profile NAME of pipeline.toml."""
    return {name.split("=", 1)[1]: rec for name, rec in builds.items() if name.startswith("PROFILE=")}


@pytest.mark.integration
def test_the_jenkinsfile_runs_exactly_one_sh_step_in_its_one_stage(record: dict[str, Any]) -> None:
    assert record["stages"] == ["Pipeline"]
    sh = the_sh(record)
    assert sh["context"] == "pipeline/stages/stage:Pipeline/steps/withCredentials"
    assert not sh["returnStatus"] and not sh["returnStdout"], "the sh step's exit code must fail the build"


@pytest.mark.integration
def test_the_sh_step_bootstraps_then_runs_the_pipeline_cli(
    record: dict[str, Any], builds: dict[str, dict[str, Any]]
) -> None:
    commands = [c.strip() for c in the_sh(record)["script"].split("&&")]
    assert commands[0] == "bash scripts/bootstrap.sh"
    assert (ROOT / "scripts" / "bootstrap.sh").is_file()
    assert len(commands) == 2, f"one pipeline run and nothing else: {commands}"
    for build in builds.values():
        assert the_sh(build)["script"] == the_sh(record)["script"]
        argv = pipeline_argv(build)
        assert argv[:4] == [".venv/bin/python", "-m", "pipeline", "run"]
        assert "--report-dir" in argv and argv[argv.index("--report-dir") + 1] == "reports"


@pytest.mark.integration
def test_the_pipeline_cli_accepts_the_sh_step_for_every_profile_choice(
    record: dict[str, Any], by_profile: dict[str, dict[str, Any]]
) -> None:
    """Parsed by the real typer command and config loader: a renamed flag or profile fails here."""
    from typer.main import get_command

    from pipeline import config as config_mod
    from pipeline.cli import app
    from pipeline.planning import select
    from pipeline.stages import STAGES

    run = get_command(app).commands["run"]  # type: ignore[attr-defined]
    (choice,) = [p for p in record["parameters"] if p["name"] == "PROFILE"]
    assert sorted(by_profile) == sorted(choice["choices"])
    for profile, build in by_profile.items():
        argv = pipeline_argv(build)
        parsed = run.make_context("run", argv[4:]).params
        # Each option once (the CLI refuses a repeated --profile, adds up repeated --stage values).
        assert parsed["stage"] == [build["params"]["STAGES"]] == ["all"] and parsed["profile"] == [profile]
        assert select(STAGES, stage=parsed["stage"][0]).names
        cfg = config_mod.load(
            ROOT,
            profile=parsed["profile"][0],
            overrides=[f"pipeline.report_dir={parsed['report_dir'][0]}"],
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
    from pipeline.results import RunResult
    from pipeline.stages.test import TestStage

    report_dir = pipeline_argv(record)[-1]
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
    # the HTML report: what report_html writes into the report folder, published for failed builds too
    ((html),) = record["html"]
    assert (html["reportDir"], html["reportFiles"]) == (report_dir, "index.html")
    assert html["allowMissing"] and html["keepAll"] and html["context"] == "pipeline/post/always"


# The Warnings NG tool (its symbol) that parses each tool report of reports/stages/, and the report's writer:
# analysis-model's parser for each is named beside each recordIssues in the Jenkinsfile, and
# tests/support/report_formats.py reads each file as that parser does.
ISSUE_REPORTS = {
    "lint-pylint.txt": "pyLint",  # pylint --output-format=parseable (pipeline/stages/lint.py)
    "lint-ruff.json": "analysisParser",  # ruff check --output-format=json; the registry's id 'ruff'
    "lint-mypy.txt": "myPy",
    "lint-hadolint.json": "hadoLint",
    "trivy-fs.sarif": "sarif",  # trivy convert --format sarif (pipeline/adapters/trivy.py)
    "trivy-image.sarif": "sarif",
}


@pytest.mark.integration
def test_every_tool_report_is_published_to_the_parser_of_its_format(record: dict[str, Any]) -> None:
    """recordIssues and recordCoverage publish exactly the tool reports the stages write, each to the parser
    of its format; they show, never judge (the pipeline's gates decide), and a build that failed or
    skipped a stage still publishes what is there."""
    import inspect

    from pipeline import config as config_mod
    from pipeline.adapters import trivy
    from pipeline.stages import lint
    from pipeline.stages.scan import TrivyFsStage, TrivyImageStage
    from pipeline.stages.test import TestStage

    report_dir = pipeline_argv(record)[-1]
    cfg = config_mod.load(ROOT, overrides=[f"pipeline.report_dir={report_dir}"], environ={})
    stages = cfg.stage_reports.relative_to(ROOT).as_posix()
    assert stages == f"{report_dir}/stages"
    # What the code writes: the lint stage's ctx.report_path(SUFFIX) files (reports/stages/lint<SUFFIX>), the
    # scans' NAME.sarif (trivy._scan), the test stage's coverage XML (its pytest command line).
    written = {
        f"{lint.LintStage.name}{s}" for s in re.findall(r'report_path\("([^"]+)"\)', inspect.getsource(lint))
    }
    assert ".sarif" in trivy.REPORT_SUFFIXES and 'report_dir / f"{name}.sarif"' in inspect.getsource(trivy)
    written |= {f"{stage.name}.sarif" for stage in (TrivyFsStage, TrivyImageStage)}
    assert cfg.lint.linter == "ruff", "the Jenkinsfile publishes ruff's report, not flake8's"
    assert set(ISSUE_REPORTS) <= written, sorted(set(ISSUE_REPORTS) - written)
    (coverage_xml,) = re.findall(r"--cov-report=xml:(\S+)", TestStage().plan(cfg)[0])

    tools = published(record)
    expected = {f"{stages}/{name}": f"recordIssues:{symbol}" for name, symbol in ISSUE_REPORTS.items()}
    expected[Path(coverage_xml).relative_to(ROOT).as_posix()] = "recordCoverage:COBERTURA"
    assert {p: by for p, by in tools.items() if by.startswith("record")} == expected
    (ruff,) = [t for i in record["issues"] for t in i["tools"] if t["symbol"] == "analysisParser"]
    assert ruff["analysisModelId"] == "ruff", "analysis-model's RuffDescriptor ID"
    ids = [t["id"] for i in record["issues"] for t in i["tools"]] + [c["id"] for c in record["coverage"]]
    assert len(ids) == len(set(ids)), f"Warnings NG refuses an id used twice in a build: {ids}"
    for step in record["issues"] + record["coverage"]:
        assert step["context"] == "pipeline/post/always", "reports of failed builds too"
        assert step["enabledForFailure"], "a failed build's findings are the ones to see"
        assert not step["failOnError"], "a missing file (a skipped stage) must not fail the build"
        assert not step["qualityGates"], "the pipeline's own gates decide, not Warnings NG's or Coverage's"


@pytest.mark.integration
def test_parameters_and_environment(record: dict[str, Any], first_build: dict[str, Any]) -> None:
    document = tomllib.loads((ROOT / "pipeline.toml").read_text(encoding="utf-8"))
    by_name = {p["name"]: p for p in record["parameters"]}
    assert set(by_name) == {"PROFILE", "STAGES"}
    assert by_name["PROFILE"]["type"] == "choice" and by_name["PROFILE"]["default"] == "aws"
    assert sorted(by_name["PROFILE"]["choices"]) == sorted(document["profiles"]) == ["aws", "local"]
    assert by_name["STAGES"]["type"] == "string" and by_name["STAGES"]["default"] == "all"
    assert record["mode"] == "rebuild" and first_build["mode"] == "first-build"
    assert record["params"] == first_build["params"] == {"PROFILE": "aws", "STAGES": "all"}
    # CI makes the output plain (README, "Running stages"); PIPELINE_* are params.*, set on every build.
    expected = {"CI": "true", "PIPELINE_PROFILE": "aws", "PIPELINE_STAGES": "all"}
    assert record["environment"] == first_build["environment"] == expected
    assert the_sh(record)["envValues"] == {
        **expected,
        "PROFILE": "aws",
        "STAGES": "all",
        **{v: f"<masked:{v}>" for c in record["credentials"] for v in c["variables"]},
    }


@pytest.mark.integration
def test_options_bound_the_build(record: dict[str, Any], by_profile: dict[str, dict[str, Any]]) -> None:
    from pipeline import config as config_mod

    assert {"timestamps", "buildDiscarder", "disableConcurrentBuilds", "timeout"} <= set(record["options"])
    (timeout,) = [s for s in record["steps"] if s["step"] == "timeout"]
    ((limit),) = timeout["args"]
    assert limit["unit"] == "MINUTES"
    for profile in by_profile:
        cfg = config_mod.load(ROOT, profile=profile, environ={})
        stages_s = sum(getattr(cfg.timeouts, f.name) for f in dataclasses.fields(cfg.timeouts))
        assert limit["time"] * 60 >= stages_s + 600, (
            f"Jenkins' timeout ({limit['time']} min) must leave the pipeline's own stage timeouts "
            f"({stages_s / 60:.0f} min) and 10 min of bootstrap to act first"
        )


# What the first build must run: Jenkins' parameter defaults (PROFILE aws, STAGES all).
DEFAULT_RUN = ["run", "--stage", "all", "--profile", "aws", "--report-dir", "reports"]

# The Jenkinsfile's sh line before issue 9: it read the parameters from env, which Jenkins leaves
# empty on a job's first build. The harness without --first-build (a later build) hid that.
OLD_SH = (
    "bash scripts/bootstrap.sh && .venv/bin/python -m pipeline run"
    ' --stage "$STAGES" --profile "$PROFILE" --report-dir reports'
)
OLD_FORM = """
pipeline {
    agent any
    parameters {
        choice(name: 'PROFILE', choices: ['aws', 'local'], description: '')
        string(name: 'STAGES', defaultValue: 'all', description: '')
    }
    environment {
        CI = 'true'
    }
    stages {
        stage('Pipeline') {
            steps {
                sh 'OLD_SH'
            }
        }
    }
}
""".replace("OLD_SH", OLD_SH)


@pytest.mark.integration
@pytest.mark.parametrize("shell", [("bash", "-c"), ("sh", "-xe", "-c")], ids=["bash", "sh-xe"])
def test_the_first_build_runs_the_default_profile(
    first_build: dict[str, Any], shell: tuple[str, ...]
) -> None:
    """JENKINS-40574, JENKINS-41929: on a job's first build params.* hold the defaults but env holds no
    parameter. The sh step (run as Jenkins runs it, `sh -xe`, and by bash) must still get the defaults."""
    from typer.main import get_command

    from pipeline.cli import app

    assert first_build["mode"] == "first-build"
    env = the_sh(first_build)["envValues"]
    assert not {"PROFILE", "STAGES"} & env.keys(), "the harness must act as Jenkins' first build"
    argv = pipeline_argv(first_build, shell)
    assert argv[3:] == DEFAULT_RUN
    parsed = get_command(app).commands["run"].make_context("run", argv[4:]).params  # type: ignore[attr-defined]
    assert (parsed["stage"], parsed["profile"]) == (["all"], ["aws"])
    assert env["PIPELINE_PROFILE"] == "aws", "$PIPELINE_PROFILE, which the pipeline also reads, agrees"


@pytest.mark.integration
def test_the_old_sh_line_gave_the_first_build_an_empty_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form the first-build test guards against: it passes a later build, fails the first one."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    jenkinsfile = tmp_path / "Jenkinsfile"
    jenkinsfile.write_text(OLD_FORM, encoding="utf-8")
    old = records({"rebuild": [str(jenkinsfile)], "first-build": ["--first-build", str(jenkinsfile)]})
    assert pipeline_argv(old["rebuild"])[3:] == DEFAULT_RUN, "a later build looked right"
    argv = pipeline_argv(old["first-build"], strict=False)
    assert argv[3:] != DEFAULT_RUN, "test_the_first_build_runs_the_default_profile fails on this form"
    assert argv[3:] == ["run", "--stage", "", "--profile", "", "--report-dir", "reports"]
    # Before issue 9 the pipeline read empty as "the default": profile 'local'. Now it refuses.
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("PIPELINE_PROFILE", raising=False)
    result = CliRunner().invoke(app, argv[3:])
    assert result.exit_code == 2, result.output
    assert "error: --stage is empty" in result.output


@pytest.mark.integration
def test_a_build_with_parameters_passes_them_as_arguments_never_as_code(
    by_profile: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    local = by_profile["local"]
    assert local["params"]["PROFILE"] == the_sh(local)["envValues"]["PROFILE"] == "local"
    assert pipeline_argv(local)[3:] == [
        "run",
        "--stage",
        "all",
        "--profile",
        "local",
        "--report-dir",
        "reports",
    ]
    mark = tmp_path / "injected"
    typed = f'lint"; touch {mark}; echo "$(touch {mark}) `touch {mark}` ${{env.CI}} $CI'
    injected = records({"STAGES": ["--param", f"STAGES={typed}", str(JENKINSFILE)]})["STAGES"]
    assert the_sh(injected)["script"] == the_sh(local)["script"], "a parameter never reaches the script text"
    assert the_sh(injected)["envValues"]["PIPELINE_STAGES"] == typed, "Groovy copied it, did not evaluate it"
    argv = pipeline_argv(injected)
    assert argv[4:6] == ["--stage", typed] and argv[7] == "aws"
    assert not mark.exists(), "the shell ran what was typed into STAGES"


@pytest.mark.integration
def test_the_harness_refuses_what_jenkins_refuses(tmp_path: Path) -> None:
    unknown_name = tmp_path / "Jenkinsfile"
    unknown_name.write_text(
        'pipeline {\n    environment {\n        X = "${nope.Y}"\n    }\n}\n', encoding="utf-8"
    )
    post = "pipeline {\n    post {\n        always {\n            STEP\n        }\n    }\n}\n"
    bad_issues, bad_tool, bad_coverage = (tmp_path / n for n in ("issues", "tool", "coverage"))
    bad_issues.write_text(
        post.replace("STEP", "recordIssues tool: pyLint(pattern: 'x'), failBuild: true"), encoding="utf-8"
    )
    bad_tool.write_text(post.replace("STEP", "recordIssues tool: sarif(path: 'x.sarif')"), encoding="utf-8")
    bad_coverage.write_text(
        post.replace("STEP", "recordCoverage tools: [[parser: 'COVERAGE_PY', pattern: 'x']]"),
        encoding="utf-8",
    )
    jenkinsfile = str(JENKINSFILE)
    done = run_harness(
        {
            "unknown parameter": ["--param", "NOPE=1", jenkinsfile],
            "not a choice": ["--param", "PROFILE=prod", jenkinsfile],
            "first build with parameters": ["--first-build", "--param", "PROFILE=aws", jenkinsfile],
            "option after the file": [jenkinsfile, "--first-build"],
            "unknown name in environment": [str(unknown_name)],
            "unknown recordIssues parameter": [str(bad_issues)],
            "unknown tool parameter": [str(bad_tool)],
            "unknown coverage parser": [str(bad_coverage)],
        }
    )
    expected = {
        "unknown parameter": (
            2,
            "--param NOPE: the Jenkinsfile declares no such parameter (it declares: PROFILE, STAGES)",
        ),
        "not a choice": (2, "--param PROFILE=prod: not a value of parameter PROFILE"),
        "first build with parameters": (2, "--first-build and --param exclude each other"),
        "option after the file": (2, "the last argument must be the Jenkinsfile"),
        "unknown name in environment": (1, "Jenkinsfile reads an unknown name: nope"),
        "unknown recordIssues parameter": (1, "recordIssues: no parameter failBuild (Jenkins refuses it"),
        "unknown tool parameter": (1, "sarif: no parameter path (Jenkins refuses it"),
        "unknown coverage parser": (1, "recordCoverage: parser COVERAGE_PY is none of COBERTURA,"),
    }
    for case, (code, message) in expected.items():
        assert (done[case].returncode, done[case].stdout) == (code, ""), f"{case}: {done[case].stderr}"
        assert message in done[case].stderr, f"{case}: {done[case].stderr}"


@pytest.mark.integration
def test_every_step_is_known_and_its_plugin_is_pinned(record: dict[str, Any]) -> None:
    used = {step_name(s) for s in record["steps"]}
    unknown = sorted(used - STEP_PLUGINS.keys())
    assert not unknown, f"add these steps to STEP_PLUGINS, with their plugin: {unknown}"
    needed = {STEP_PLUGINS[s] for s in used} - {None}
    needed |= {BINDINGS[c["type"]][0] for c in record["credentials"]}
    needed |= CASC_PLUGINS | UI_PLUGINS
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


def test_builds_run_on_the_agent_never_on_the_controller(record: dict[str, Any]) -> None:
    """The controller has no executors; the one agent of casc.yaml carries the label the Jenkinsfile asks for,
    connects inbound over WebSocket, and keeps its workspaces where the in-container test puts them."""
    jenkins = casc()["jenkins"]
    assert jenkins["numExecutors"] == 0
    (node,) = jenkins["nodes"]
    agent = node["permanent"]
    labels = [s["args"] for s in record["steps"] if s["step"] == "label"]
    assert labels == ["pipeline"], labels
    assert "pipeline" in agent["labelString"].split()
    assert agent["launcher"] == {"inbound": {"webSocket": True}}
    assert agent["remoteFS"] == "/home/jenkins/agent" and agent["numExecutors"] == 1
    from tests.jenkins.test_in_container import WORKSPACE

    assert WORKSPACE.startswith(agent["remoteFS"] + "/workspace/")


def test_casc_creates_the_job_from_the_jenkinsfile() -> None:
    (job,) = casc()["jobs"]
    script = job["script"]
    for needle in ("pipelineJob('iris-classifier')", "url('${GIT_REPO_URL}')", "branch('*/main')"):
        assert needle in script
    assert f"scriptPath('{JENKINSFILE.name}')" in script
