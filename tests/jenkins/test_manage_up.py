"""``custom_jenkins/manage.sh up``, ``status`` and ``down`` against the real engine, with Jenkins faked.

Jenkins cannot run here (no war, no image), so the controller is a small HTTP server in an image built on the
stand-in: it answers what ``up`` and the agent ask of a controller (``/login``; the node's secret in
``computer/agent/jenkins-agent.jnlp``, for the admin only, in a JNLP document shaped like Jenkins' own, across
several lines; ``jnlpJars/agent.jar``) and starts through the image's ``check-secrets``, as the real one does.
The agent is the stand-in (the real agent's tool layer) with ``agent.sh`` as its entrypoint and a ``java``
that records its arguments instead of connecting. What runs for real: every ``docker`` call of ``manage.sh``
(network, volumes, the wait, reading the secret from inside the controller, the agent's mounts and
environment) and ``agent.sh`` (downloading ``agent.jar`` from the controller by name, the arguments it gives
Java). Every name (containers, network, volumes, port) is this test's own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.adapters.docker_containers import free_port

# as_root is a fixture: imported so that pytest finds it here.
from tests.jenkins.test_manage_script import (  # noqa: F401  # pylint: disable=unused-import
    SCRIPT,
    SECRETS,
    as_root,
    assert_no_secret_shown,
    give_to_jenkins,
)
from tests.support.realtools import require_tool

pytestmark = pytest.mark.integration

FAKE_CONTROLLER = r"""
import base64, http.server, sys

SECRET = sys.argv[1]
JAR = b"not really agent.jar"


def read(name):
    with open(f"/run/secrets/{name}", encoding="utf-8") as fh:
        return fh.read().strip()


def admin():
    user = f"{read('JENKINS_ADMIN_ID')}:{read('JENKINS_ADMIN_PASSWORD')}"
    return "Basic " + base64.b64encode(user.encode()).decode()


class Controller(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/login":
            body = b"<html>login</html>"
        elif self.path == "/jnlpJars/agent.jar":
            body = JAR
        elif self.path == "/computer/agent/jenkins-agent.jnlp":
            if self.headers.get("Authorization") != admin():
                self.send_response(403)
                self.end_headers()
                return
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<jnlp codebase="http://jenkins:8080/computer/agent/" spec="1.0+">\n'
                "  <information><title>Agent for agent</title></information>\n"
                '  <application-desc main-class="hudson.remoting.jnlp.Main">\n'
                f"    <argument>{SECRET}</argument>\n    <argument>agent</argument>\n"
                "    <argument>-url</argument>\n    <argument>http://jenkins:8080/</argument>\n"
                "  </application-desc>\n</jnlp>\n"
            ).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Controller).serve_forever()
"""

# `java` of the fake agent: records its arguments and what it was given to run, then stays up like an agent.
FAKE_JAVA = """#!/bin/sh
{ printf '%s\\n' "$@"; echo "--- jar:"; cat "$2"; echo; } > /home/jenkins/agent/java-args
exec sleep infinity
"""


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("docker"), *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def build(tag: str, context: Path, dockerfile: str) -> None:
    (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    result = docker("build", "-t", tag, str(context), check=False, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture
def fake_jenkins(jenkins_standin: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The two images, and the settings that make manage.sh use them and this test's own names."""
    unique = uuid.uuid4().hex[:8]
    agent_secret = secrets.token_hex(32)
    controller_tag, agent_tag = f"iris-fake-jenkins:{unique}", f"iris-fake-agent:{unique}"
    ctx = tmp_path / "controller"
    ctx.mkdir()
    (ctx / "server.py").write_text(FAKE_CONTROLLER, encoding="utf-8")
    # curl, as in jenkins/jenkins (manage.sh asks the controller through it); check-secrets first, as there.
    build(
        controller_tag,
        ctx,
        f"FROM {jenkins_standin}\nUSER 0\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends curl"
        " && rm -rf /var/lib/apt/lists/*\n"
        "COPY server.py /server.py\nUSER 1000:1000\n"
        f'ENTRYPOINT ["/usr/local/bin/check-secrets", "python3", "/server.py", "{agent_secret}"]\n',
    )
    ctx = tmp_path / "agent"
    ctx.mkdir()
    (ctx / "java").write_text(FAKE_JAVA, encoding="utf-8")
    agent_sh = Path(__file__).parents[2] / "custom_jenkins" / "agent.sh"
    (ctx / "agent.sh").write_text(agent_sh.read_text(encoding="utf-8"), encoding="utf-8")
    build(
        agent_tag,
        ctx,
        f"FROM {jenkins_standin}\nUSER 0\nCOPY java /opt/java/openjdk/bin/java\n"
        "COPY agent.sh /usr/local/bin/jenkins-agent\n"
        "RUN chmod 0755 /opt/java/openjdk/bin/java /usr/local/bin/jenkins-agent"
        " && install -d -o 1000 -g 1000 /home/jenkins/agent\n"
        'ENV PATH="/opt/java/openjdk/bin:${PATH}"\nUSER 1000:1000\n'
        'ENTRYPOINT ["/usr/local/bin/jenkins-agent"]\n',
    )
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    for name, value in SECRETS.items():
        (secret_dir / name).write_text(value, encoding="utf-8")
    give_to_jenkins(secret_dir)
    name = f"jenkins-test-{unique}"
    settings = {
        "JENKINS_IMAGE": controller_tag,
        "JENKINS_AGENT_IMAGE": agent_tag,
        "JENKINS_NAME": name,
        "JENKINS_PORT": str(free_port()),
        "JENKINS_SECRETS": str(secret_dir),
        "GIT_REPO_URL": "https://git.example.invalid/iris.git",
        "JENKINS_START_TIMEOUT_S": "60",
        "AGENT_SECRET": agent_secret,
    }
    yield settings
    for container in (f"{name}-agent", name):
        docker("rm", "-f", container, check=False)
    docker("network", "rm", name, check=False)
    for volume in ("home", "agent", "agent_secret"):
        docker("volume", "rm", f"{name}_{volume}", check=False)
    docker("rmi", "-f", controller_tag, agent_tag, check=False)


def manage(settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{k: v for k, v in settings.items() if k != "AGENT_SECRET"}}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def inspect(container: str) -> dict:
    return json.loads(docker("container", "inspect", container).stdout)[0]


@pytest.mark.usefixtures("as_root")
def test_up_starts_the_controller_then_the_agent_with_its_secret_only(fake_jenkins: dict[str, str]) -> None:
    name, agent = fake_jenkins["JENKINS_NAME"], f"{fake_jenkins['JENKINS_NAME']}-agent"

    up = manage(fake_jenkins, "up")

    assert up.returncode == 0, up.stdout + up.stderr
    assert f"started {name}" in up.stdout
    assert_no_secret_shown(up.stdout, up.stderr)
    assert fake_jenkins["AGENT_SECRET"] not in up.stdout + up.stderr

    # The controller: no Docker socket (it runs no build), the secrets read-only, the UI on loopback only.
    controller = inspect(name)
    mounts = {m["Destination"]: m for m in controller["Mounts"]}
    assert "/var/run/docker.sock" not in mounts
    assert mounts["/run/secrets"]["RW"] is False
    assert mounts["/var/jenkins_home"]["Name"] == f"{name}_home"
    (binding,) = controller["HostConfig"]["PortBindings"]["8080/tcp"]
    assert binding == {"HostIp": "127.0.0.1", "HostPort": fake_jenkins["JENKINS_PORT"]}

    # The agent: the socket and its group, its own secret and nothing else, an init, the controller by name.
    state = inspect(agent)
    mounts = {m["Destination"]: m for m in state["Mounts"]}
    assert "/var/run/docker.sock" in mounts
    assert mounts["/run/secrets"]["Name"] == f"{name}_agent_secret" and mounts["/run/secrets"]["RW"] is False
    assert str(os.stat("/var/run/docker.sock").st_gid) in state["HostConfig"]["GroupAdd"]
    assert state["HostConfig"]["Init"] is True
    assert f"JENKINS_URL=http://{name}:8080/" in state["Config"]["Env"]
    assert not any(value in " ".join(state["Config"]["Env"]) for value in SECRETS.values())
    listed = docker("exec", agent, "ls", "/run/secrets").stdout.split()
    assert listed == ["agent-secret"]

    # agent.sh downloaded agent.jar from the controller and started Java as an inbound WebSocket agent.
    recorded = ""
    for _ in range(50):
        recorded = docker("exec", agent, "cat", "/home/jenkins/agent/java-args", check=False).stdout
        if recorded:
            break
        docker("exec", agent, "sleep", "0.2", check=False)
    args, _, jar = recorded.partition("--- jar:\n")
    assert args.split("\n")[:-1] == [
        "-jar", "/home/jenkins/agent/agent.jar",
        "-url", f"http://{name}:8080/",
        "-secret", fake_jenkins["AGENT_SECRET"],
        "-name", "agent",
        "-webSocket",
        "-workDir", "/home/jenkins/agent",
    ]  # fmt: skip
    assert jar.strip() == "not really agent.jar"

    status = manage(fake_jenkins, "status")
    assert f"/{name}: running" in status.stdout and f"/{agent}: running" in status.stdout

    down = manage(fake_jenkins, "down")
    assert down.returncode == 0, down.stderr
    for container in (name, agent):
        assert docker("container", "inspect", container, check=False).returncode != 0
    assert docker("network", "inspect", name, check=False).returncode != 0
    assert docker("volume", "inspect", f"{name}_home", check=False).returncode == 0, "volumes are kept"
