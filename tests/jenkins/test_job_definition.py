"""The job's definition in casc.yaml's Job DSL script against the Jenkinsfile's: the two must agree.

JCasC runs the Job DSL script again at every start of the controller, and Job DSL rewrites the job's
config.xml from it. Whatever the Jenkinsfile's ``parameters {}`` and ``options {}`` put into the job
(its parameters, the build discarder, the concurrency rule) is gone after a restart unless the script
declares it too: the next build would run without parameters. Both files are evaluated by Groovy with
their calls recorded (``run_jenkinsfile.groovy``, ``run_jobdsl.groovy``), then compared: parameter names,
types, defaults, choices and descriptions, the log rotation, and every option that is a job property.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.jenkins.test_jenkinsfile import HARNESS, JENKINSFILE, casc, java_home, records, step_name
from tests.support.realtools import require_tool

JOBDSL_HARNESS = HARNESS.with_name("run_jobdsl.groovy")
# Options of the Jenkinsfile that are job properties (kept in config.xml, so Job DSL must declare them)
# and those that only wrap the build (nothing for Job DSL to keep). An option in neither fails the test.
JOB_PROPERTY_OPTIONS = {"buildDiscarder", "disableConcurrentBuilds"}
WRAPPER_OPTIONS = {"timestamps", "timeout", "skipDefaultCheckout", "ansiColor"}

Call = dict[str, Any]


def evaluate_jobdsl(script: str, scratch: Path) -> list[Call]:
    """The calls of a Job DSL script, as a tree, from ``run_jobdsl.groovy``."""
    path = scratch / "job.groovy"
    path.write_text(script, encoding="utf-8")
    result = subprocess.run(
        [require_tool("groovy"), str(JOBDSL_HARNESS), str(path)],
        env={**os.environ, "JAVA_HOME": java_home()},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"groovy could not evaluate the Job DSL script:\n{result.stderr}"
    calls: list[Call] = json.loads(result.stdout)
    return calls


def calls_named(calls: list[Call] | None, name: str) -> list[Call]:
    return [c for c in calls or [] if c["name"] == name]


def block_of(calls: list[Call] | None, *path: str) -> list[Call]:
    """The calls inside the one call at ``path`` (each name once), or [] when a step of it is absent."""
    for name in path:
        found = calls_named(calls, name)
        assert len(found) <= 1, f"{name} is declared {len(found)} times"
        if not found:
            return []
        calls = found[0]["block"]
    return calls or []


def jobdsl_parameter(call: Call) -> dict[str, Any]:
    """A Job DSL parameter in the Jenkinsfile harness's terms: choiceParam(name, choices, description)
    (the first choice is the default, as in Jenkins) and stringParam(name, default, description)."""
    args = call["args"] + [None] * 3
    if call["name"] == "choiceParam":
        return {
            "type": "choice",
            "name": args[0],
            "choices": args[1],
            "default": args[1][0],
            "description": args[2],
        }
    if call["name"] == "stringParam":
        return {"type": "string", "name": args[0], "default": args[1] or "", "description": args[2]}
    raise AssertionError(f"compare this Job DSL parameter kind with the Jenkinsfile first: {call['name']}")


def jobdsl_declarations(calls: list[Call], job: str) -> dict[str, Any]:
    """What the Job DSL script declares for ``job``: parameters, log rotation and job properties."""
    (pipeline_job,) = [c for c in calls_named(calls, "pipelineJob") if c["args"] == [job]]
    body = pipeline_job["block"]
    properties = block_of(body, "properties")
    rotation = block_of(properties, "buildDiscarder", "strategy", "logRotator")
    triggers = block_of(properties, "pipelineTriggers", "triggers")
    return {
        "parameters": [jobdsl_parameter(c) for c in block_of(body, "parameters")],
        "logRotator": {c["name"]: c["args"][0] for c in rotation} or None,
        "properties": {
            c["name"]: c["args"]
            for c in properties
            if c["name"] not in ("buildDiscarder", "pipelineTriggers")
        },
        # pollSCM { scmpoll_spec('H/5 * * * *') } (the dynamic DSL's names for SCMTrigger) -> {pollSCM: spec}
        "triggers": {c["name"]: block_of([c], c["name"])[0]["args"][0] for c in triggers},
    }


def jenkinsfile_declarations(record: dict[str, Any]) -> dict[str, Any]:
    """The same from the Jenkinsfile's record (run_jenkinsfile.groovy)."""
    options = {s["step"]: s["args"] for s in record["steps"] if s["context"] == "pipeline/options"}
    unknown = sorted(options.keys() - JOB_PROPERTY_OPTIONS - WRAPPER_OPTIONS)
    assert not unknown, f"is this option a job property Job DSL must declare too? {unknown}"
    (discarder,) = options.get("buildDiscarder", [None])
    triggers = {s["step"]: s["args"][0] for s in record["steps"] if s["context"] == "pipeline/triggers"}
    keys = ("type", "name", "choices", "default", "description")
    return {
        "parameters": [{k: v for k, v in p.items() if k in keys} for p in record["parameters"]],
        "logRotator": discarder["logRotator"] if discarder else None,
        "properties": {
            name: args for name, args in options.items() if name in JOB_PROPERTY_OPTIONS - {"buildDiscarder"}
        },
        "triggers": triggers,
    }


def differences(jenkinsfile: dict[str, Any], jobdsl: dict[str, Any]) -> list[str]:
    """Each declaration on which the two disagree, one line each."""
    problems = []
    by_name = [{p["name"]: p for p in side["parameters"]} for side in (jenkinsfile, jobdsl)]
    for name in sorted(by_name[0].keys() | by_name[1].keys()):
        ours, theirs = (side.get(name) for side in by_name)
        if ours != theirs:
            problems.append(f"parameter {name}: Jenkinsfile {ours}, Job DSL {theirs}")
    if [p["name"] for p in jenkinsfile["parameters"]] != [p["name"] for p in jobdsl["parameters"]]:
        problems.append("the parameters are not in the same order (Jenkins shows them in order)")
    for key in ("logRotator", "properties", "triggers"):
        if jenkinsfile[key] != jobdsl[key]:
            problems.append(f"{key}: Jenkinsfile {jenkinsfile[key]}, Job DSL {jobdsl[key]}")
    return problems


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Jenkinsfile's declarations, the Job DSL script's), each evaluated by Groovy."""
    (job,) = casc()["jobs"]
    calls = evaluate_jobdsl(job["script"], tmp_path_factory.mktemp("jobdsl"))
    (pipeline_job,) = calls_named(calls, "pipelineJob")
    record = records({"rebuild": [str(JENKINSFILE)]})["rebuild"]
    assert "parameters" in {step_name(s) for s in record["steps"]}
    return jenkinsfile_declarations(record), jobdsl_declarations(calls, pipeline_job["args"][0])


@pytest.mark.integration
def test_the_job_dsl_declares_what_the_jenkinsfile_declares(
    both: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    jenkinsfile, jobdsl = both
    assert [p["name"] for p in jenkinsfile["parameters"]] == ["PROFILE", "STAGES"]
    assert jenkinsfile["logRotator"] == {"numToKeepStr": "30", "artifactNumToKeepStr": "10"}
    assert jenkinsfile["properties"] == {"disableConcurrentBuilds": []}
    assert jenkinsfile["triggers"] == {"pollSCM": "H/5 * * * *"}
    problems = differences(jenkinsfile, jobdsl)
    assert not problems, "\n".join(problems)


@pytest.mark.integration
def test_the_comparison_catches_a_job_dsl_that_drifts(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The script before issue 22 (no parameters, no properties), and one changed default, are caught."""
    jenkinsfile, jobdsl = both
    bare = {"parameters": [], "logRotator": None, "properties": {}, "triggers": jobdsl["triggers"]}
    assert differences(jenkinsfile, bare) == [
        f"parameter PROFILE: Jenkinsfile {jenkinsfile['parameters'][0]}, Job DSL None",
        f"parameter STAGES: Jenkinsfile {jenkinsfile['parameters'][1]}, Job DSL None",
        "the parameters are not in the same order (Jenkins shows them in order)",
        f"logRotator: Jenkinsfile {jenkinsfile['logRotator']}, Job DSL None",
        "properties: Jenkinsfile {'disableConcurrentBuilds': []}, Job DSL {}",
    ]
    drifted = copy.deepcopy(jobdsl)
    drifted["parameters"][0]["choices"] = ["local", "aws"]
    drifted["parameters"][0]["default"] = "local"
    problems = differences(jenkinsfile, drifted)
    assert len(problems) == 1, problems
    assert problems[0].startswith("parameter PROFILE:") and "'default': 'local'" in problems[0]
