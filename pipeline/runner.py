"""Execute a plan (:mod:`pipeline.planning`), serially or ``--jobs N``.

The runner knows stages only through ``pipeline.stages.base.Stage``; it knows nothing of Docker,
Trivy or AWS. One scheduler serves both modes: ``--jobs 1`` is the same loop with one slot. Each
stage runs in a worker thread with its own cancel event, which the main thread sets on Ctrl-C,
SIGTERM or when the stage passes its timeout; the stage's tools are stopped through that event.

Before a cacheable stage runs, the plan's :func:`~pipeline.planning.cache_verdict` (the dry run's too) says
whether its last pass stands in for it: then its reports are put back and its outputs recorded again.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, Protocol

from pipeline import cache, interrupts, planning
from pipeline.adapters import git
from pipeline.config import Config
from pipeline.errors import Interrupted, PipelineError
from pipeline.planning import Plan
from pipeline.results import RunResult, RunStatus, StageRun, Status
from pipeline.shared_cache import SharedCache, files_under
from pipeline.stages.base import Stage, StageContext, StageResult
from pipeline.state import RunState, StageRecord, utcnow

# How long a stage past its timeout (or a run after Ctrl-C) gets to wind down before we move on.
_WIND_DOWN_S = 15.0


class Reporter(Protocol):
    """What the runner tells whoever shows the run (``pipeline.report``)."""

    def run_started(self, result: RunResult) -> None: ...
    def stage_started(self, run: StageRun) -> None: ...
    def stage_progress(self, name: str, line: str) -> None: ...
    def stage_finished(self, run: StageRun) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


# --- execution -----------------------------------------------------------------------------------


class _Running:
    """Book-keeping for one stage in flight."""

    def __init__(
        self,
        stage: Stage,
        run: StageRun,
        future: Future[StageResult],
        ctx: StageContext,
        started: float,
        log_file: Any,
    ) -> None:
        self.stage = stage
        self.run = run
        self.future = future
        self.ctx = ctx
        self.started = started
        self.log_file = log_file
        self.inputs: dict[str, str] = {}  # the fingerprint this run computed, set by the worker


class Runner:
    """Executes a :class:`Plan`: one scheduler loop, ``jobs`` worker threads."""

    def __init__(
        self,
        config: Config,
        state: RunState,
        reporter: Reporter,
        *,
        jobs: int = 1,
        keep_going: bool = False,
        run_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        no_cache: bool = False,
        rerun: Iterable[str] = (),
        fingerprinter: cache.Fingerprinter | None = None,
        shared: SharedCache | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.reporter = reporter
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.run_id = run_id or new_run_id()
        self.clock = clock
        self.interrupted = threading.Event()
        self.judge = planning.CacheJudge(
            config, state, fingerprinter, no_cache=no_cache, rerun=rerun, shared=shared
        )
        self.shared = shared
        self.store = cache.CacheStore(config.path(config.pipeline.state_dir) / "cache")
        self._plan: Plan | None = None

    def execute(self, plan: Plan) -> RunResult:
        result = RunResult(
            run_id=self.run_id,
            started_at=utcnow(),
            profile=self.config.profile,
            git_sha=git.head_sha(self.config.root),
            stages=[StageRun(name) for name in plan.names]
            + [StageRun(n, status=Status.SKIPPED, summary="--skip") for n in plan.skipped],
        )
        runs = {r.name: r for r in result.stages}
        self._plan = plan
        self.reporter.run_started(result)
        previous = interrupts.install()  # python -m pipeline has them already; an in-process caller not
        interrupts.reset()
        try:
            self._schedule(plan, runs)
            with interrupts.shield():  # a late signal must not cut the summary short
                result.finished_at = utcnow()
                if self.interrupted.is_set():
                    result.status = RunStatus.INTERRUPTED
                elif all(r.status.ok or r.status == Status.SKIPPED for r in result.stages):
                    result.status = RunStatus.PASSED
                else:
                    result.status = RunStatus.FAILED
                self.reporter.run_finished(result)
        finally:
            interrupts.restore(previous)
        return result

    def _schedule(self, plan: Plan, runs: dict[str, StageRun]) -> None:
        pending = list(plan.stages)
        done: set[str] = set()
        running: dict[str, _Running] = {}
        stop_new = False
        try:
            while pending or running:
                if interrupts.received() is not None:  # one that came while a stage was being finished
                    raise KeyboardInterrupt
                for stage in [] if stop_new else list(pending):
                    if len(running) >= self.jobs:
                        break
                    verdict = _readiness(plan.selected_needs(stage.name), done, runs)
                    if verdict == "wait":
                        continue
                    pending.remove(stage)
                    if verdict == "blocked":
                        runs[stage.name].summary = "not run: a stage it needs did not pass"
                        done.add(stage.name)
                        continue
                    running[stage.name] = self._start(stage, runs[stage.name])
                if not running:
                    break
                time.sleep(0.05)
                for name, item in list(running.items()):
                    with interrupts.shield():  # finished once: recorded, reported, taken off the list
                        if self._poll(item):
                            del running[name]
                            done.add(name)
                            if item.run.status == Status.FAILED and not self.keep_going:
                                stop_new = True
        except KeyboardInterrupt:
            # Every later SIGINT/SIGTERM is noted and ignored: the stages' put-backs must run to their end.
            with interrupts.shield():
                self.interrupted.set()
                self._interrupt(running)

    def _start(self, stage: Stage, run: StageRun) -> _Running:
        log_path = self.config.stage_log(stage.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("w", encoding="utf-8")
        timeout_s = self.config.timeouts.for_stage(stage.name)
        ctx = StageContext(
            stage=stage.name,
            config=self.config,
            state=self.state,
            run_id=self.run_id,
            log_file=log_file,
            progress=functools.partial(self.reporter.stage_progress, stage.name),
            cancel=threading.Event(),
            timeout_s=timeout_s,
            readable=self._plan.readable(stage.name) if self._plan else None,
        )
        ctx.shared = self.shared
        run.started_at = utcnow()
        run.status = Status.RUNNING
        self.reporter.stage_started(run)
        ctx.log(f"# stage {stage.name}, run {self.run_id}, started {run.started_at}")
        future: Future[StageResult] = Future()
        item = _Running(stage, run, future, ctx, self.clock(), log_file)

        def work() -> None:
            # A daemon thread, so a stage stuck past its timeout cannot keep the process alive.
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self._run_or_reuse(item))
            except BaseException as exc:  # pylint: disable=broad-exception-caught
                future.set_exception(exc)

        threading.Thread(target=work, name=f"stage-{stage.name}", daemon=True).start()
        return item

    def _run_or_reuse(self, item: _Running) -> StageResult:
        """The stage's cached result when its inputs are those of its last pass, else its run."""
        stage, ctx = item.stage, item.ctx
        verdict = self.judge.verdict(stage)
        item.inputs = verdict.inputs
        record = self.state.record(stage.name)
        if verdict.entry is not None:
            result = self._take_shared(item, verdict)
            if result is not None:
                return result
        elif verdict.reusable and record is not None:
            restored, problem = self.store.restore(stage.name, record.key or "", self.config.stage_reports)
            if not restored:
                ctx.log(f"# warning: the cache entry of '{stage.name}' is not used: {problem}; running it")
            else:
                result = stage.reuse(ctx, record)
                if result is not None:
                    ctx.log(f"# {verdict.line} (key {(record.key or '')[:12]}); its reports are put back")
                    earlier = self.store.earlier_log(stage.name)
                    if earlier:
                        ctx.log("# --- the log of that run ---")
                        ctx.log(earlier.rstrip("\n"))
                    return result
                ctx.log("# its recorded output is gone; running it")
        elif stage.cacheable:
            ctx.log(f"# {verdict.line}")
        result = stage.run(ctx)
        if cache.unresolved(item.inputs):
            # Known now that it ran (the base image it pulled): recorded, so the next run can be cached.
            item.inputs = cache.settle(item.inputs, self.judge.fingerprint(stage))
        return result

    def _take_shared(self, item: _Running, verdict: planning.CacheVerdict) -> StageResult | None:
        """The result of a shared store hit, its files put in place; None (and why, in the log) to run."""
        stage, ctx, entry, shared = item.stage, item.ctx, verdict.entry, self.shared
        assert entry is not None and shared is not None
        config = self.config
        problem = shared.restore(entry, config.stage_reports, config.root, stage.produces(config))
        if problem is not None:
            ctx.log(f"# warning: the shared cache entry of '{stage.name}' is not used: {problem}; running it")
            return None
        result = stage.reuse(ctx, entry.record)
        if result is None:
            ctx.log("# its shared entry cannot stand in for it here; running it")
            return None
        ctx.log(f"# {verdict.line} (key {entry.key[:12]}, from {shared.url}); its files are put back")
        self.store.save(stage.name, entry.key, config.stage_reports)  # the next run here finds it locally
        earlier = shared.earlier_log(entry)
        if earlier:
            ctx.log("# --- the log of that run ---")
            ctx.log(earlier.rstrip("\n"))
        return result

    def _poll(self, item: _Running) -> bool:
        """Finish ``item`` if its stage is done or past its timeout; True when it is finished."""
        elapsed = self.clock() - item.started
        if not item.future.done():
            if elapsed <= item.ctx.timeout_s:
                return False
            item.ctx.cancel.set()
            item.future.cancel()
            self._finish(
                item,
                None,
                f"timed out after {item.ctx.timeout_s:g} s and was stopped "
                f"(raise timeouts.{item.stage.name.replace('-', '_')} if this is expected)",
            )
            return True
        try:
            outcome = item.future.result()
            if not isinstance(outcome, StageResult):
                raise TypeError(f"stage returned {type(outcome).__name__}, not StageResult")
            self._finish(item, outcome, None)
        except Interrupted as exc:
            self._finish(item, None, str(exc))
        except PipelineError as exc:
            item.run.exit_code = exc.exit_code
            self._finish(item, None, str(exc))
        except Exception as exc:  # pylint: disable=broad-exception-caught
            item.ctx.log(traceback.format_exc())
            self._finish(
                item, None, f"internal error in stage '{item.stage.name}': {type(exc).__name__}: {exc}"
            )
        return True

    def _finish(self, item: _Running, outcome: StageResult | None, error: str | None) -> None:
        run = item.run
        run.duration_s = round(self.clock() - item.started, 3)
        scrub = item.ctx.scrub
        if outcome is not None:
            run.status = Status(outcome.status)
            run.summary = scrub(outcome.summary)
            run.artifacts = dict(outcome.artifacts)
        else:
            run.status = Status.FAILED
            run.error = scrub(error or "")
            run.summary = run.summary or run.error.split("\n", 1)[0]
            item.ctx.log(f"# FAILED: {error}")
        item.ctx.log(f"# {run.status} in {run.duration_s:.1f} s")
        with contextlib.suppress(OSError):  # a full disk: the stage's log_error says so already
            item.log_file.close()
        self._scrub_reports(item)
        good = run.status.ok
        record = StageRecord(
            run.status,
            utcnow(),
            self.run_id,
            run.summary,
            item.ctx.outputs if good else {},
            artifacts=dict(run.artifacts) if good else {},
            inputs=item.inputs if good else {},
            key=cache.key(item.inputs) if good and item.inputs else None,
        )
        self.state.put(run.name, record)
        if run.status == Status.PASSED and item.stage.cacheable and record.key:
            self.store.save(run.name, record.key, self.config.stage_reports)
            if self.shared is not None:
                produced = files_under(item.stage.produces(self.config))
                self.shared.save(run.name, record, self.config.stage_reports, self.config.root, produced)
        self.reporter.stage_finished(run)

    def _scrub_reports(self, item: _Running) -> None:
        """The secrets out of every file the stage left in the stage reports folder (its tools' JUnit,
        coverage, SARIF and JSON reports as much as its log), before the cache keeps a copy."""
        scrubber = item.ctx.scrub.in_files()
        for path in cache.stage_files(self.config.stage_reports, item.stage.name):
            try:
                scrubber.file(path)
            except OSError as exc:  # a full disk: the report cannot stay as it is
                with contextlib.suppress(OSError):
                    path.unlink()
                sys.stderr.write(f"pipeline: {path} removed: it could not be scrubbed of secrets: {exc}\n")

    def _interrupt(self, running: dict[str, _Running]) -> None:
        for item in running.values():
            item.ctx.cancel.set()
        deadline = time.monotonic() + _WIND_DOWN_S
        for item in running.values():
            said = "the stage was stopped"
            try:
                item.future.result(timeout=max(0.1, deadline - time.monotonic()))
            except Interrupted as exc:  # the stage's own word on what it leaves behind
                said = exc.message
            except BaseException:  # pylint: disable=broad-exception-caught
                pass
            self._finish(item, None, f"interrupted (SIGINT/SIGTERM): {said}")


def _readiness(needs: list[str], done: set[str], runs: dict[str, StageRun]) -> str:
    """``ready`` when every selected need passed, ``blocked`` when one did not, else ``wait``."""
    if any(n in done and not runs[n].status.ok for n in needs):
        return "blocked"
    if all(n in done for n in needs):
        return "ready"
    return "wait"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
