"""Pushes through the real engine to real registries, checked against the registry's own API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.docker_containers import free_port
from pipeline.adapters.docker_engine import DockerEngine
from pipeline.adapters.registry import RegistryClient, is_loopback, registry_base_url
from pipeline.errors import ToolFailed

pytestmark = pytest.mark.integration

USER = "ci-bot"
PASSWORD = "s3cret-Pa55-for-tests"


def _build_tiny(engine: DockerEngine, context: Path, ref: str, log: Any, cleanup: list[str]) -> None:
    cleanup.append(ref)
    engine.build(context, "Dockerfile", [ref], log=log)


def test_push_digest_matches_the_registrys(
    engine: DockerEngine,
    start_registry: Callable[..., Any],
    tiny_context: Path,
    log: Any,
    unique: str,
    image_cleanup: list[str],
) -> None:
    registry = start_registry()
    repository = f"{registry.address}/testbed/tiny"
    _build_tiny(engine, tiny_context, f"{repository}:{unique}", log, image_cleanup)
    progress: list[str] = []

    digest = engine.push(repository, unique, log=log, progress=progress.append)

    client = RegistryClient(registry.address)
    client.ping()
    assert digest.startswith("sha256:")
    assert client.manifest_digest("testbed/tiny", unique) == digest
    assert client.manifest_digest("testbed/tiny", digest) == digest
    assert client.manifest_digest("testbed/tiny", "no-such-tag") is None
    assert f"pushed {repository}:{unique} {digest}" in log.text


def test_push_with_credentials_to_htpasswd_registry(
    engine: DockerEngine,
    start_registry: Callable[..., Any],
    htpasswd_file: Callable[[str, str], Path],
    tiny_context: Path,
    log: Any,
    unique: str,
    image_cleanup: list[str],
) -> None:
    registry = start_registry(htpasswd=htpasswd_file(USER, PASSWORD))
    repository = f"{registry.address}/testbed/tiny"
    _build_tiny(engine, tiny_context, f"{repository}:{unique}", log, image_cleanup)

    digest = engine.push(repository, unique, {"username": USER, "password": PASSWORD}, log=log)

    assert RegistryClient(registry.address, USER, PASSWORD).manifest_digest("testbed/tiny", unique) == digest
    assert PASSWORD not in log.text


def test_push_with_wrong_password_names_auth_and_hides_the_password(
    engine: DockerEngine,
    start_registry: Callable[..., Any],
    htpasswd_file: Callable[[str, str], Path],
    tiny_context: Path,
    log: Any,
    unique: str,
    image_cleanup: list[str],
) -> None:
    registry = start_registry(htpasswd=htpasswd_file(USER, PASSWORD))
    repository = f"{registry.address}/testbed/tiny"
    _build_tiny(engine, tiny_context, f"{repository}:{unique}", log, image_cleanup)
    wrong = "wrong-Pa55-never-shown"
    slept: list[float] = []

    with pytest.raises(ToolFailed) as caught:
        engine.push(repository, unique, {"username": USER, "password": wrong}, log=log, sleep=slept.append)

    message = str(caught.value)
    assert "authentication" in message
    assert "REGISTRY_PASSWORD" in message
    assert not slept, "an auth failure must not be retried"
    for text in (message, log.text, repr(caught.value.args)):
        assert wrong not in text and PASSWORD not in text


def test_registry_client_refuses_wrong_or_missing_credentials(
    start_registry: Callable[..., Any], htpasswd_file: Callable[[str, str], Path]
) -> None:
    registry = start_registry(htpasswd=htpasswd_file(USER, PASSWORD))
    RegistryClient(registry.address, USER, PASSWORD).ping()

    with pytest.raises(ToolFailed) as wrong:
        RegistryClient(registry.address, USER, "not-the-password").ping()
    assert "refused the credentials" in str(wrong.value)
    assert "not-the-password" not in str(wrong.value)

    with pytest.raises(ToolFailed) as missing:
        RegistryClient(registry.address).manifest_digest("testbed/tiny", "latest")
    assert "needs credentials" in str(missing.value)


def test_push_to_stopped_registry_names_the_connection(
    engine: DockerEngine,
    start_registry: Callable[..., Any],
    tiny_context: Path,
    log: Any,
    unique: str,
    image_cleanup: list[str],
) -> None:
    registry = start_registry()
    registry.stop()
    repository = f"{registry.address}/testbed/tiny"
    _build_tiny(engine, tiny_context, f"{repository}:{unique}", log, image_cleanup)
    slept: list[float] = []

    with pytest.raises(ToolFailed) as caught:
        engine.push(repository, unique, log=log, attempts=3, backoff_s=0.5, sleep=slept.append)

    assert "cannot connect to the registry after 3 attempts" in str(caught.value)
    assert "connection refused" in str(caught.value)
    assert slept == [0.5, 1.0]


def test_registry_client_on_a_closed_port_says_it_does_not_answer() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(ToolFailed) as caught:
        RegistryClient(address, timeout=2).ping()
    assert f"registry at http://{address} does not answer" in str(caught.value)


def test_push_of_an_image_the_engine_lacks_fails(engine: DockerEngine, log: Any, unique: str) -> None:
    with pytest.raises(ToolFailed) as caught:
        engine.push(f"127.0.0.1:{free_port()}/testbed/absent", unique, log=log, attempts=1)
    assert "does not exist" in str(caught.value) or "No such image" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("localhost:5000", "http://localhost:5000"),
        ("127.0.0.1:5000/team/app", "http://127.0.0.1:5000"),
        ("registry.example.com", "https://registry.example.com"),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        ),
        ("docker.io", "https://registry-1.docker.io"),
        ("http://10.0.0.5:5000", "http://10.0.0.5:5000"),
    ],
)
def test_registry_base_url(url: str, base: str) -> None:
    assert registry_base_url(url) == base


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.2:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.com:443")
