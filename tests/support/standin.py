"""The test bed's stand-in of the Jenkins agent container, where the builds run.

jenkins/jenkins and Debian's images cannot be pulled here (TESTBED.md), so the stand-in is the ``tools``
stage of ``custom_jenkins/Dockerfile`` built on the test bed's Debian 12 base image: the very layer the agent
image gets (``install-tools.sh``: Debian's python3 3.11 + venv, git, procps, Trivy and hadolint from the
hashes of ``custom_jenkins/tools.txt``, the user ``jenkins`` uid 1000 with HOME /home/jenkins,
``check-secrets``), minus the agent's Java and its connection to a controller::

    docker build --target tools --build-arg AGENT_BASE=local/python:3.11-bookworm custom_jenkins/

``standin_image()`` builds it once per test session (the engine's layer cache makes a rebuild of an
unchanged stage take well under a second) and returns its tag. A missing docker CLI or base image fails
the test, never skips it.
"""

from __future__ import annotations

import functools
import subprocess

import pytest

from tests.support.realtools import BASE_IMAGE, REPO_ROOT, require_tool

STANDIN_TAG = "iris-jenkins-standin:test"
CONTEXT = REPO_ROOT / "custom_jenkins"
# Cold: apt-get + two wheels (~65 MB) from PyPI, about 20 s here; allow for a slow mirror.
BUILD_TIMEOUT_S = 900


@functools.cache
def standin_image() -> str:
    """Build the stand-in (stage ``tools`` on ``BASE_IMAGE``) once per session; its tag."""
    docker = require_tool("docker")
    base = subprocess.run(
        [docker, "image", "inspect", BASE_IMAGE], capture_output=True, text=True, timeout=60, check=False
    )
    if base.returncode != 0:
        pytest.fail(f"no base image {BASE_IMAGE}: run 'bash scripts/testbed.sh up'", pytrace=False)
    result = subprocess.run(
        [
            docker,
            "build",
            "--target",
            "tools",
            "--build-arg",
            f"AGENT_BASE={BASE_IMAGE}",
            "--tag",
            STANDIN_TAG,
            str(CONTEXT),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"building the Jenkins stand-in failed (exit {result.returncode}):\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return STANDIN_TAG


def run_in(
    image: str,
    *command: str,
    user: str | None = None,
    mounts: dict[str, str] | None = None,
    entrypoint: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``docker run --rm --network none [--user] [-v SRC:DEST:ro ...] [--entrypoint] IMAGE COMMAND...``."""
    argv = [require_tool("docker"), "run", "--rm", "--network", "none"]
    if user is not None:
        argv += ["--user", user]
    for source, target in (mounts or {}).items():
        argv += ["-v", f"{source}:{target}:ro"]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    return subprocess.run(
        [*argv, image, *command], capture_output=True, text=True, timeout=timeout, check=False
    )
