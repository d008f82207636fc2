"""Two agents, one memory (issue 25): two checkouts in their own folders, each with its own ``.pipeline``,
share one store (a folder, and S3 on moto). The releases of a target, the run history and the deploy lease
live there: what one agent deploys, the other's ``status``, champion and ``rollback`` see; concurrent
updates all land; a target being deployed by one is refused to the other (exit 2, naming the holder), and
freed when a killed holder's lease lapses. The deploy target is the third-target test's dict."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import config as config_mod
from pipeline import deploy_lease, history
from pipeline.cli import app
from pipeline.config import Config
from pipeline.releases import Releases
from pipeline.stages import _promotion
from pipeline.stages.promotion import champion_digest
from pipeline.stages.targets import TARGETS
from pipeline.state import RunState
from pipeline.store.configured import shared_store
from tests.conftest import ROOT
from tests.pipeline.stages.test_third_target import FIRST, SECOND, MemoryTarget
from tests.pipeline.store.conftest import BUCKET, S3Server, race

IDENTITY = "memory:svc"
TTL_S = 1.0


@dataclass(frozen=True)
class Agent:
    """One checkout of the project, on its own agent: the CLI runs in its folder."""

    root: Path
    monkeypatch: pytest.MonkeyPatch

    def invoke(self, *args: str) -> tuple[int, str]:
        self.monkeypatch.chdir(self.root)
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.output

    def cli(self, *args: str) -> str:
        code, output = self.invoke(*args)
        assert code == 0, output
        return output

    def deploy(self, image: str) -> tuple[int, str]:
        return self.invoke("run", "--stage", "deploy", "--set", f"deploy.image={image}")

    def config(self) -> Config:
        return config_mod.load(self.root, environ=dict(os.environ))

    def releases(self) -> Releases:
        config = self.config()
        return Releases(RunState.load(config.state_file), shared_store(config))


@pytest.fixture(params=("folder", "s3"))
def store_toml(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``[store]`` both agents share: a folder of neither checkout, or a fresh prefix of moto's bucket."""
    if request.param == "folder":
        return f'[store]\nurl = "{tmp_path / "shared"}"\nlease_ttl_s = {TTL_S}\n'
    server: S3Server = request.getfixturevalue("s3_server")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return (
        f'[store]\nurl = "s3://{BUCKET}/agents-{uuid.uuid4().hex[:12]}"\nregion = "us-east-1"\n'
        f'endpoint_url = "{server.endpoint_url}"\nlease_ttl_s = {TTL_S}\n'
    )


@pytest.fixture
def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_toml: str) -> Iterator[tuple[Agent, Agent]]:
    monkeypatch.setitem(TARGETS, "memory", MemoryTarget)
    MemoryTarget.live = {}
    found = []
    for name in ("agent-1", "agent-2"):
        root = tmp_path / name
        root.mkdir()
        (root / "pipeline.toml").write_text(f'[deploy]\ntarget = "memory"\n\n{store_toml}', encoding="utf-8")
        found.append(Agent(root, monkeypatch))
    yield found[0], found[1]


def test_a_release_one_agent_deploys_is_the_others_status_champion_and_rollback(
    agents: tuple[Agent, Agent],
) -> None:
    one, two = agents
    assert two.cli("status").splitlines()[-1].endswith(f"releases of {IDENTITY} in store {_url(two)}: 0")
    before = champion_digest(two.config())
    assert one.deploy(FIRST)[0] == 0 and one.deploy(SECOND)[0] == 0

    status = two.cli("status")
    assert f"no run recorded in {two.root / '.pipeline' / 'state.json'}" in status  # agent 2 ran nothing
    assert f"releases of {IDENTITY} in store {_url(two)}: 2" in status
    assert f"live: {SECOND}" in status and f"previous: {FIRST}" in status
    assert not (two.root / ".pipeline" / "state.json").exists()

    one.releases().append(IDENTITY, {"image": SECOND, "model": {"model_version": "m-2"}})
    config = two.config()
    assert _promotion.champion_of(config, RunState.load(config.state_file), print) == (
        IDENTITY,
        {"model_version": "m-2"},
    )
    assert champion_digest(config) != before  # agent 2's promotion cache sees the new champion

    one.releases().update(IDENTITY, lambda current: current[:-1])
    assert f"rolled back from {SECOND} to {FIRST}" in two.cli("rollback")
    assert MemoryTarget.live == {"svc": FIRST}
    assert f"releases of {IDENTITY} in store {_url(one)}: 1" in one.cli("status")  # agent 1 sees it
    assert [r["image"] for r in one.releases().read(IDENTITY)] == [FIRST]


def test_concurrent_release_updates_of_two_agents_all_land(agents: tuple[Agent, Agent]) -> None:
    books = [agent.releases() for agent in agents]
    images = [f"registry.test/iris@sha256:{n:064x}" for n in range(8)]

    won = race(8, lambda n: books[n % 2].append(IDENTITY, {"image": images[n], "run_id": f"r{n}"}))

    assert sorted(won) == list(range(8))
    for book in books:
        assert sorted(r["image"] for r in book.read(IDENTITY)) == sorted(images)


def test_the_history_of_both_agents_is_listed_by_either(agents: tuple[Agent, Agent]) -> None:
    one, two = agents
    assert one.deploy(FIRST)[0] == 0
    assert two.deploy(SECOND)[0] == 0

    runs = [_report(agent)["run_id"] for agent in agents]
    for agent in agents:
        listed = [json.loads(line) for line in agent.cli("history", "--json").splitlines()]
        assert [entry["run_id"] for entry in listed] == runs[::-1]  # newest first
        assert [entry["deployed_to"] for entry in listed] == [IDENTITY, IDENTITY]
    assert len((one.root / ".pipeline" / "history.jsonl").read_text("utf-8").splitlines()) == 1  # a copy
    assert _run_ids(one.cli("history", "--limit", "1", "--json")) == runs[1:]


def test_a_shared_history_that_cannot_be_written_is_a_warning_and_one_not_read_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A share that is not mounted (``file://``, never created): the run's entry goes to the checkout's own
    history with a warning; ``history`` refuses (exit 3) rather than pass the checkout's runs for all."""
    (tmp_path / "pipeline.toml").write_text(f'[store]\nurl = "file://{tmp_path}/gone"\n', encoding="utf-8")
    agent = Agent(tmp_path, monkeypatch)
    entry = history.RunEntry(
        "r1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "passed", 1.0, "local", None, {}
    )
    warnings: list[str] = []

    history.record(agent.config(), entry, warnings.append)

    assert warnings == [
        f"warning: the run is not in the shared history: store file://{tmp_path}/gone: the "
        f"folder {tmp_path}/gone does not exist"
    ]
    assert [e.run_id for e in history.read(tmp_path / ".pipeline", 5)] == ["r1"]
    code, output = agent.invoke("history")
    assert code == 3 and f"store file://{tmp_path}/gone" in output, output


def test_a_target_one_agent_holds_is_refused_to_the_others_deploy_and_rollback(
    agents: tuple[Agent, Agent],
) -> None:
    one, two = agents
    assert one.deploy(FIRST)[0] == 0
    store = shared_store(one.config())
    holder = rf"held by \S+ \(run run-of-agent-1, pid {os.getpid()}\), since .* until "

    with deploy_lease.hold(store, IDENTITY, run_id="run-of-agent-1", ttl_s=TTL_S, log=print):
        time.sleep(TTL_S * 1.5)  # held past its TTL: renewed
        code, output = two.deploy(SECOND)
        assert code == 2, output
        stage = _report(two)["stages"][0]
        assert stage["status"] == "failed"
        assert f"deploy target {IDENTITY} is being changed by another run" in stage["error"]
        assert re.search(holder, stage["error"]), stage["error"]
        code, output = two.invoke("rollback")
        assert code == 2 and f"deploy target {IDENTITY} is being changed" in output, output
        assert "run-of-agent-1" in output
        assert MemoryTarget.live == {"svc": FIRST}

    assert two.deploy(SECOND)[0] == 0  # given up at the end of the block: free at once
    assert MemoryTarget.live == {"svc": SECOND}


def test_a_holder_killed_with_sigkill_frees_the_target_after_the_ttl(agents: tuple[Agent, Agent]) -> None:
    one, two = agents
    config = one.config()
    holder = _hold_in_a_process(config)
    try:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killed_at = time.monotonic()

        code, output = two.deploy(FIRST)
        assert code == 2, output
        assert f"(run doomed, pid {holder.pid})" in _report(two)["stages"][0]["error"]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    time.sleep(max(0.0, TTL_S + 0.3 - (time.monotonic() - killed_at)))
    assert two.deploy(FIRST)[0] == 0
    assert MemoryTarget.live == {"svc": FIRST}


def _hold_in_a_process(config: Config) -> subprocess.Popen[str]:
    """A process that holds the deploy lease of the target (renewing it) until it is killed."""
    script = (
        "import sys, time\n"
        "from pipeline import config, deploy_lease\n"
        "from pipeline.store.configured import shared_store\n"
        "cfg = config.load(__import__('pathlib').Path(sys.argv[1]), environ=dict(__import__('os').environ))\n"
        f"with deploy_lease.hold(shared_store(cfg), {IDENTITY!r}, run_id='doomed', ttl_s={TTL_S}, "
        "log=lambda line: None):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(  # pylint: disable=consider-using-with  # killed by the caller
        [sys.executable, "-c", script, str(config.root)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def _url(agent: Agent) -> str:
    store = shared_store(agent.config())
    assert store is not None
    return store.url


def _report(agent: Agent) -> dict:
    return json.loads((agent.root / "reports" / "pipeline.json").read_text(encoding="utf-8"))


def _run_ids(lines: str) -> list[str]:
    return [json.loads(line)["run_id"] for line in lines.splitlines()]
