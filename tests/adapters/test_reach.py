"""``adapters/reach.py``: where the pipeline stands beside the engine, and how it reaches containers.

The decision is tested on the engine's own inspect records: the fast tests feed recorded shapes, the
integration tests ask the real engine about a real container that has the socket mounted (the case of
Jenkins), and about this process, which runs on the engine's host.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.adapters import reach
from pipeline.adapters.docker_engine import DockerEngine
from pipeline.errors import EnvironmentProblem, ToolFailed

OWN_ID = "e08d374fd6382b20b98b6d3c47d8ddcb19cfe5b4f2e94181f18a81f5c83f25bc"
MOUNTINFO = (
    f"89 72 254:0 /var/lib/docker/containers/{OWN_ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n"
    f"90 72 254:0 /var/lib/docker/containers/{OWN_ID}/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
    "72 1 0:50 / / rw,relatime - overlay overlay rw\n"
)


class Records:
    """Inspect records by id, short id and name, as the engine answers them."""

    def __init__(self, *records: Mapping[str, Any]) -> None:
        self.records = list(records)

    def inspect_container(self, ref: str) -> Mapping[str, Any] | None:
        for record in self.records:
            if ref in (record["Id"], record["Id"][:12], record.get("Name", "").lstrip("/")):
                return record
        return None


def record(cid: str, mode: str, networks: tuple[str, ...], name: str = "jenkins") -> dict[str, Any]:
    return {
        "Id": cid,
        "Name": f"/{name}",
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": {n: {"IPAddress": "172.17.0.2"} for n in networks}},
    }


def view(mountinfo: str = "", cgroup: str = "", hostname: str = "laptop") -> reach.ProcessView:
    return reach.ProcessView(lambda: mountinfo, lambda: cgroup, lambda: hostname)


def test_candidates_come_from_mounts_then_cgroup_then_hostname() -> None:
    other = "f" * 64
    found = reach.candidate_ids(MOUNTINFO, f"0::/docker/{other}\n", OWN_ID[:12])
    assert found == [OWN_ID, other, OWN_ID[:12]]
    assert not reach.candidate_ids("", "0::/init.scope\n", "build-host-1")


def test_on_the_engines_host_containers_are_published_on_loopback() -> None:
    found = reach.detect(Records(), "auto", "", view())
    assert found.mode == reach.HOST and found.network is None and not found.in_container
    assert found.loopback_is_hosts()
    assert "127.0.0.1" in found.describe() and "engine's host" in found.describe()


def test_in_a_container_on_the_default_bridge_containers_join_its_network() -> None:
    found = reach.detect(Records(record(OWN_ID, "default", ("bridge",))), "auto", "", view(MOUNTINFO))
    assert (found.mode, found.network, found.own_container) == (reach.NETWORK, "bridge", OWN_ID[:12])
    assert not found.loopback_is_hosts(), "a registry on the host's loopback is out of reach"
    assert "network 'bridge'" in found.describe()


def test_a_user_defined_network_is_preferred_as_the_containers_own_mode() -> None:
    own = record(OWN_ID, "ci", ("bridge", "ci"))
    assert reach.detect(Records(own), "auto", "", view(MOUNTINFO)).network == "ci"


def test_a_container_on_the_hosts_network_shares_the_hosts_loopback() -> None:
    found = reach.detect(Records(record(OWN_ID, "host", ("host",))), "auto", "", view(MOUNTINFO))
    assert found.mode == reach.HOST and found.in_container and found.loopback_is_hosts()


def test_a_container_sharing_another_containers_network_follows_it() -> None:
    pod = record("a" * 64, "default", ("bridge",), name="pod")
    own = record(OWN_ID, "container:" + "a" * 64, ())
    found = reach.detect(Records(own, pod), "auto", "", view(MOUNTINFO))
    assert (found.mode, found.network) == (reach.NETWORK, "bridge")


def test_a_container_the_engine_does_not_know_counts_as_the_host() -> None:
    """In a container of some other engine (or a pod): the candidate ids are not this engine's."""
    found = reach.detect(Records(), "auto", "", view(MOUNTINFO, hostname=OWN_ID[:12]))
    assert found.mode == reach.HOST


def test_the_hostname_alone_is_enough_when_mounts_say_nothing() -> None:
    found = reach.detect(
        Records(record(OWN_ID, "default", ("bridge",))), "auto", "", view(hostname=OWN_ID[:12])
    )
    assert found.mode == reach.NETWORK


def test_settings_override_detection() -> None:
    own = Records(record(OWN_ID, "default", ("bridge",)))
    assert reach.detect(own, "host", "", view(MOUNTINFO)).mode == reach.HOST
    forced = reach.detect(Records(), "auto", "ci-net", view())
    assert (forced.mode, forced.network) == (reach.NETWORK, "ci-net") and forced.loopback_is_hosts()
    with pytest.raises(EnvironmentProblem) as caught:
        reach.detect(Records(), "network", "", view())
    assert "docker.network" in (caught.value.hint or "")


def test_a_container_on_no_network_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem) as caught:
        reach.detect(Records(record(OWN_ID, "none", ())), "auto", "", view(MOUNTINFO))
    assert OWN_ID[:12] in caught.value.message


# --- against the real engine -----------------------------------------------------------------------


@pytest.fixture
def bridged(engine: DockerEngine, base_image: str, unique: str) -> Iterator[str]:
    """A container on the default bridge, with the engine socket mounted as Jenkins has it."""
    container = engine.client.containers.run(
        base_image,
        ["python3", "-m", "http.server", "5000"],
        name=f"reach-{unique}",
        detach=True,
        volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}},
    )
    try:
        yield str(container.id)
    finally:
        engine.remove_container(str(container.id))


def _exec(engine: DockerEngine, container: str, *argv: str) -> str:
    result = engine.client.containers.get(container).exec_run(list(argv))
    assert result.exit_code == 0, result.output
    return result.output.decode()


@pytest.mark.integration
def test_the_real_engine_knows_a_bridged_container_by_what_it_reads_of_itself(
    engine: DockerEngine, bridged: str
) -> None:
    inside = view(
        _exec(engine, bridged, "cat", "/proc/self/mountinfo"),
        _exec(engine, bridged, "cat", "/proc/self/cgroup"),
        _exec(engine, bridged, "hostname"),
    )
    found = reach.detect(engine, "auto", "", inside)
    assert (found.mode, found.network, found.own_container) == (reach.NETWORK, "bridge", bridged[:12])


@pytest.mark.integration
def test_this_process_is_on_the_engines_host(engine: DockerEngine) -> None:
    found = reach.detect(engine)
    assert found.mode == reach.HOST and not found.in_container


@pytest.mark.integration
def test_a_containers_address_on_its_network_answers(engine: DockerEngine, bridged: str) -> None:
    address = engine.container_address(bridged, "bridge")
    assert address and engine.container_address(bridged, "no-such-network") is None
    for _ in range(50):
        try:
            assert requests.get(f"http://{address}:5000/", timeout=2).status_code == 200
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        pytest.fail(f"http://{address}:5000/ never answered")


@pytest.mark.integration
def test_the_engine_reports_what_the_registry_holds(
    engine: DockerEngine,
    start_registry: Any,
    tiny_context: Path,
    unique: str,
    log: Any,
    image_cleanup: list[str],
) -> None:
    registry = start_registry()
    repository = f"{registry.address}/testbed/reach"
    image_cleanup.append(f"{repository}:{unique}")
    engine.build(tiny_context, "Dockerfile", [f"{repository}:{unique}"], log=log)
    pushed = engine.push(repository, unique, log=log)

    assert engine.distribution_digest(f"{repository}:{unique}") == pushed
    assert engine.distribution_digest(f"{repository}:absent") is None
    registry.stop()
    with pytest.raises(ToolFailed) as caught:
        engine.distribution_digest(f"{repository}:{unique}")
    assert "connection refused" in str(caught.value)
