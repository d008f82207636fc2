"""Fixtures of tests/jenkins: the stand-in of the Jenkins controller container (tests/support/standin.py)."""

from __future__ import annotations

import pytest

from pipeline.adapters.docker_engine import DockerEngine
from tests.support.realtools import BASE_IMAGE
from tests.support.standin import standin_image


@pytest.fixture(scope="session")
def jenkins_standin(engine: DockerEngine) -> str:
    """The tag of the stand-in: stage ``tools`` of custom_jenkins/Dockerfile on the test bed's base image,
    built once per session. ``engine`` starts the test bed (engine, base image) when it is not up."""
    assert engine.image_id(BASE_IMAGE), f"the test bed has no {BASE_IMAGE}"
    return standin_image()
