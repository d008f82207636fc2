"""The plan of a run: which stages, in what order, what each waits for, whether its prerequisites hold, and
whether its last pass can stand in for running it (``cached``, or ``runs`` and why).

``python -m pipeline run --dry-run`` shows the plan (:func:`dry_run`); the run executes it
(:mod:`pipeline.runner`). Both take each stage's cache verdict from :meth:`CacheJudge.verdict`, the one place
that decides "cached / runs, and why": this checkout's last pass, else the shared store's entry.

Caching is one mechanism for every stage (``pipeline.cache``): the fingerprint of a cacheable stage's
declared inputs is compared with its last pass; the same key means ``cached`` (its reports put back), unless
``--no-cache`` or ``--rerun`` says otherwise. A prerequisite that is not selected counts only when its last
pass is for today's inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline import cache
from pipeline.config import Config
from pipeline.errors import (
    ConfigError,
    EnvironmentProblem,
    MissingPrerequisite,
    PipelineError,
    StalePrerequisite,
    UsageError,
)
from pipeline.shared_cache import Entry, SharedCache, describe
from pipeline.stages.base import CheckResult, Stage
from pipeline.state import RunState

# --- selection and order -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]
    skipped: tuple[str, ...]
    registry: tuple[Stage, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def stage(self, name: str) -> Stage:
        return next(s for s in (*self.registry, *self.stages) if s.name == name)

    def upstream_of(self, name: str) -> list[str]:
        """Every stage ``name`` needs, directly or not, nearest first."""
        found: list[str] = []
        todo = list(self.stage(name).needs)
        while todo:
            need = todo.pop(0)
            if need not in found:
                found.append(need)
                todo.extend(self.stage(need).needs)
        return found

    def selected_needs(self, name: str) -> list[str]:
        """The selected stages ``name`` must wait for: its needs, and through a need that is not selected
        (skipped, or outside ``--from``) that need's own. With ``--skip test``, build still waits for
        train, which makes the model it packs."""
        selected = set(self.names)
        found: list[str] = []
        todo = list(self.stage(name).needs)
        seen: set[str] = set()
        while todo:
            need = todo.pop(0)
            if need in seen:
                continue
            seen.add(need)
            if need in selected:
                found.append(need)
            else:
                todo.extend(self.stage(need).needs)
        return found

    def readable(self, name: str) -> dict[str, Any]:
        """The run-state outputs stage ``name`` may read: its own and those of every stage it needs."""
        return {n: self.stage(n).outputs for n in (name, *self.upstream_of(name))}


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def select(
    registry: Sequence[Stage],
    *,
    stage: str | None = "all",
    start: str | None = None,
    skip: str | None = None,
) -> Plan:
    """Resolve ``--stage``, ``--from`` and ``--skip`` against the registry, in the registry's order."""
    order = [s.name for s in registry]
    by_name = {s.name: s for s in registry}

    def known(names: Iterable[str], flag: str) -> list[str]:
        names = list(names)
        for name in names:
            if name not in by_name:
                raise UsageError(f"{flag}: unknown stage '{name}'", hint=f"stages are: {', '.join(order)}")
        return names

    requested = _split(stage) or ["all"]
    if "all" in requested:
        if len(requested) > 1:
            raise UsageError("--stage: 'all' cannot be combined with stage names")
        wanted = set(order)
    else:
        wanted = set(known(requested, "--stage"))
    if start:
        known([start], "--from")
        wanted &= set(order[order.index(start) :])
    skipped = set(known(_split(skip), "--skip"))
    chosen = [by_name[n] for n in order if n in wanted and n not in skipped]
    if not chosen:
        raise UsageError("the selection is empty: nothing to run", hint="check --stage, --from and --skip")
    # Every --skip name waives that stage as a prerequisite, also outside the --stage/--from range.
    return Plan(tuple(chosen), tuple(n for n in order if n in skipped), tuple(registry))


def rerun_names(rerun: str | None, plan: Plan) -> set[str]:
    """``--rerun a,b``: names of selected stages (exit 2 for any other)."""
    names = set(_split(rerun))
    unknown = sorted(names - set(plan.names))
    if unknown:
        raise UsageError(
            f"--rerun: {', '.join(unknown)} not selected in this run",
            hint=f"selected: {', '.join(plan.names)}",
        )
    return names


# --- prerequisites and checks --------------------------------------------------------------------


def check_inputs(
    plan: Plan, config: Config, state: RunState, fingerprinter: cache.Fingerprinter | None = None
) -> None:
    """Refuse (exit 2) a selection whose prerequisite output is neither selected nor in the state,
    or was recorded for other inputs than today's, or whose configuration cannot work for a stage.

    Only direct prerequisites are compared with the tree: each stage's inputs include what the
    stages before it recorded, so a recorded chain is consistent link by link. ``--skip`` waives.
    """
    satisfied = set(plan.names) | set(plan.skipped)
    fingerprinter = fingerprinter or cache.Fingerprinter(config.root)
    for stage in plan.stages:
        stage.validate(config)
        missing = stage.missing_input(config, state, satisfied)
        if missing is not None:
            run_first, what = missing
            raise MissingPrerequisite(stage.name, run_first, what)
        for name in stage.prerequisites(config):
            if name in satisfied:
                continue
            record = state.record(name)
            if record is None or not state.passed(name):
                raise MissingPrerequisite(stage.name, name, f"a passing '{name}' run")
            now = fingerprint(plan.stage(name), config, state, fingerprinter)
            # What cannot be known now (the engine is not asked, say) is taken as recorded: the stage that
            # needs it finds out (its checks); a prerequisite is stale only for what did change.
            now = cache.settle(now, record.inputs)
            if cache.key(now) != cache.key(record.inputs):
                raise StalePrerequisite(stage.name, name, cache.explain(record.inputs, now))


def fingerprint(
    stage: Stage, config: Config, state: RunState, fingerprinter: cache.Fingerprinter
) -> dict[str, str]:
    """The stage's declared inputs as they are now (the outputs of earlier stages from ``state``)."""

    def outputs_of(name: str) -> dict[str, Any] | None:
        record = state.record(name)
        return record.outputs if record is not None and state.passed(name) else None

    return cache.fingerprint(stage.inputs(config), config, outputs_of, fingerprinter)


@dataclass(frozen=True)
class CacheVerdict:
    """May the stage's last pass stand in for running it now (``reusable``), ``why``, and the fingerprint of
    its inputs as they are now (what a run records)."""

    reusable: bool
    why: str
    inputs: dict[str, str]
    entry: Entry | None = None
    """When ``reusable`` by the shared store's entry rather than this checkout's last pass: that entry."""

    @property
    def line(self) -> str:
        """``cached: WHY`` or ``runs: WHY``: what the dry run shows and the stage's log says."""
        return f"{'cached' if self.reusable else 'runs'}: {self.why}"


class CacheJudge:
    """The one decision of "cached / runs, and why", for the dry run and the run alike: one per invocation,
    with its ``--no-cache`` and ``--rerun`` (names of stages), which force the work."""

    def __init__(
        self,
        config: Config,
        state: RunState,
        fingerprinter: cache.Fingerprinter | None = None,
        *,
        no_cache: bool = False,
        rerun: Iterable[str] = (),
        shared: SharedCache | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.fingerprinter = fingerprinter or cache.Fingerprinter(config.root)
        self.no_cache = no_cache
        self.rerun = frozenset(rerun)
        self.shared = shared

    def fingerprint(self, stage: Stage) -> dict[str, str]:
        return fingerprint(stage, self.config, self.state, self.fingerprinter)

    def verdict(self, stage: Stage) -> CacheVerdict:
        now = self.fingerprint(stage)
        record = self.state.record(stage.name)
        if not stage.cacheable:
            return CacheVerdict(False, "never cached: it acts on the outside world", now)
        if self.no_cache or stage.name in self.rerun:
            return CacheVerdict(False, "forced (--no-cache or --rerun)", now)
        unknown = cache.unresolved(now)
        passed = record is not None and self.state.passed(stage.name)
        if record is not None and passed and not unknown and record.key == cache.key(now):
            return CacheVerdict(True, f"inputs unchanged since run {record.run_id}", now)
        if self.shared is not None and not unknown:
            entry = self.shared.lookup(stage.name, cache.key(now))
            if entry is not None:
                return CacheVerdict(
                    True, f"in the shared store: {describe(entry)} had these inputs", now, entry
                )
        if record is None or not passed:
            return CacheVerdict(False, "no earlier pass recorded", now)
        if unknown:
            return CacheVerdict(False, f"not known before it runs: {', '.join(unknown)}", now)
        return CacheVerdict(False, cache.explain(record.inputs, now), now)


def preflight(plan: Plan, config: Config) -> list[tuple[str, CheckResult]]:
    """Every check of the selected stages; raises EnvironmentProblem (exit 3) if a required one fails,
    ConfigError (exit 2) if that is a check of a setting."""
    rows = [(stage.name, check) for stage in plan.stages for check in stage.checks(config)]
    failing = [(name, c) for name, c in rows if c.required and not c.ok]
    for name, check in failing:
        if check.setting:
            raise ConfigError(
                f"{name}: {check.name}: {check.detail}", hint=check.fix or "'python -m pipeline doctor'"
            )
    if failing:
        lines = "; ".join(
            f"{name}: {c.name}: {c.detail}" + (f" ({c.fix})" if c.fix else "") for name, c in failing
        )
        raise EnvironmentProblem(
            f"missing before any stage ran: {lines}", hint="'python -m pipeline doctor' shows every check"
        )
    return rows


# --- the dry run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagePlan:
    """One selected stage as the dry run shows it: its verdict and the commands it would run."""

    stage: Stage
    timeout_s: float
    verdict: str
    commands: tuple[str, ...]


@dataclass(frozen=True)
class DryRun:
    """What ``run --dry-run`` shows: each selected stage in order, the skipped ones, and why a real run
    would refuse to start (a missing or stale prerequisite, a setting that cannot work), if it would."""

    profile: str
    stages: tuple[StagePlan, ...]
    skipped: tuple[str, ...]
    refusal: PipelineError | None


def dry_run(plan: Plan, judge: CacheJudge) -> DryRun:
    """The plan with each stage's verdict (:meth:`CacheJudge.verdict`), running nothing."""
    config = judge.config
    refusal: PipelineError | None = None
    try:
        check_inputs(plan, config, judge.state, judge.fingerprinter)
    except PipelineError as exc:
        refusal = exc
    will_run: set[str] = set()
    shown: list[StagePlan] = []
    for stage in plan.stages:
        # When a stage whose outputs are among this one's inputs runs now (directly needed or not: build
        # reads train's model through promotion), they are only known then: the run's verdict, not a guess.
        reads = {ref.partition(".")[0] for ref in stage.inputs(config).upstream}
        running_before = [n for n in plan.names if n in will_run and n in reads]
        if running_before and stage.cacheable:
            will_run.add(stage.name)
            verdict = f"runs unless what it reads from {', '.join(running_before)} comes out unchanged"
        else:
            found = judge.verdict(stage)
            verdict = found.line
            if not found.reusable:
                will_run.add(stage.name)
        timeout_s = config.timeouts.for_stage(stage.name)
        shown.append(StagePlan(stage, timeout_s, verdict, tuple(stage.plan(config))))
    return DryRun(config.profile, tuple(shown), plan.skipped, refusal)
