"""A deploy target is one module: a third one, defined here and nowhere else, goes through ``deploy``,
``status``, ``history`` and ``rollback`` with no change outside its own class (``TARGETS``: the one list)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.stages.base import CheckResult
from pipeline.stages.targets import TARGETS, Deployed, DeployTarget, Release, RolledBack

FIRST = "registry.test/iris@sha256:" + "1" * 64
SECOND = "registry.test/iris@sha256:" + "2" * 64


class MemoryTarget(DeployTarget):
    """A platform that is a dict: what runs under the name ``svc``."""

    name = "memory"
    live: ClassVar[dict[str, str | None]] = {}

    @classmethod
    def checks(cls, config: Config) -> list[CheckResult]:
        return [CheckResult("memory", True, "always there")]

    @classmethod
    def plan(cls, config: Config) -> list[str]:
        return ["put the image in a dict"]

    @classmethod
    def identity(cls, config: Config) -> str:
        return "memory:svc"

    def deploy(
        self, image: str, run_id: str, model_version: str | None = None, recorded: Sequence[Release] = ()
    ) -> Deployed:
        previous = self.live.get("svc")
        self.live["svc"] = image
        release = Release(image=image, previous=previous, ref="svc", run_id=run_id)
        return Deployed(release, 0.01, where="live in memory as svc")

    def roll_back(self, releases: list[Release]) -> RolledBack:
        last = releases[-1]
        if self.live.get("svc") != last.image:
            raise UsageError(f"svc runs {self.live.get('svc')}, not {last.image}")
        self.live["svc"] = last.previous
        return RolledBack(f"rolled back from {last.image} to {last.previous}", releases[:-1])


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(TARGETS, "memory", MemoryTarget)
    MemoryTarget.live = {}
    (tmp_path / "pipeline.toml").write_text('[deploy]\ntarget = "memory"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_third_target_deploys_shows_and_rolls_back(memory: Path) -> None:
    cli("run", "--stage", "deploy", "--set", f"deploy.image={FIRST}")
    cli("run", "--stage", "deploy", "--set", f"deploy.image={SECOND}")
    assert MemoryTarget.live == {"svc": SECOND}

    report = json.loads((memory / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    assert report["stages"][0]["summary"] == f"{SECOND} live in memory as svc (ready after 0.0 s)"
    status = cli("status")
    assert "identity: memory:svc" in status and f"previous: {FIRST}" in status
    history = [json.loads(line) for line in cli("history", "--json").splitlines()]
    assert [entry["deployed_to"] for entry in history] == ["memory:svc", "memory:svc"]

    assert f"rolled back from {SECOND} to {FIRST}" in cli("rollback")
    assert MemoryTarget.live == {"svc": FIRST}


def test_a_target_no_module_defines_stops_every_command(memory: Path) -> None:
    result = CliRunner().invoke(app, ["config", "--set", "deploy.target=mars"])
    assert result.exit_code == 2
    assert "deploy.target (from --set): 'mars' is not one of local, ecs, memory" in result.output
