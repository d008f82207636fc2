"""The command line: parses, prints, and maps the exception tree to exit codes (README, "Exit codes").

This is the only module that reads the process environment (handing it to ``config.load``, with the
credentials ``pipeline.secret_env`` took out of it at start) and the only one that decides exit codes.
Heavy libraries (docker, boto3, scikit-learn) are imported by the stages that use them, when they run, so
``--help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, ParamSpec, TypeVar

import typer

from pipeline import config as config_mod
from pipeline import interrupts, secret_env
from pipeline.errors import EXIT_INTERRUPTED, EXIT_PREREQUISITE, PipelineError, UsageError
from pipeline.lock import RunLock

if TYPE_CHECKING:
    from pipeline.planning import DryRun
    from pipeline.shared_cache import SharedCache

app = typer.Typer(
    name="pipeline",
    help="CI/CD for the Iris ML service: lint, train, promotion, test, trivy-fs, build, trivy-image, smoke, "
    "push, deploy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

T = TypeVar("T")
P = ParamSpec("P")

# Options that name one thing are lists, so that a repeated one is refused (exit 2) instead of the last
# silently winning; options that name stages add up (``--skip push --skip deploy`` = ``--skip push,deploy``).
ProfileOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--profile",
        "-p",
        metavar="NAME",
        help="Profile of pipeline.toml ([profiles.NAME]); default 'local' or $PIPELINE_PROFILE.",
    ),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a config value: dotted.key=value (repeatable)."
    ),
]
StageOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--stage",
        "-s",
        metavar="STAGES",
        help="'all' or stage names, comma-separated (repeatable: they add up).",
    ),
]


def _names(values: list[str] | None) -> str | None:
    """A repeatable stage-list option as one comma-separated value; None when it was not given."""
    return None if values is None else ",".join(values)


def _one(values: list[str] | None, flag: str) -> str | None:
    """The value of an option that names one thing; exit 2 when it is given more than once."""
    if values is None:
        return None
    if len(values) > 1:
        raise UsageError(
            f"{flag} is given {len(values)} times ({', '.join(map(repr, values))}): it names one thing",
            hint=f"keep one {flag}",
        )
    return values[0]


def plain_output() -> bool:
    """Plain text when not on a terminal, under NO_COLOR or in CI (README, "Running stages")."""
    return not sys.stdout.isatty() or "NO_COLOR" in os.environ or bool(os.environ.get("CI"))


def find_root(start: Path | None = None) -> Path:
    """The nearest directory holding pipeline.toml, walking up from the working directory."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / config_mod.CONFIG_FILE).is_file():
            return candidate
    return here


def _load_config(
    profiles: list[str] | None, overrides: list[str] | None, extra: tuple[str, ...] | list[str] = ()
) -> config_mod.Config:
    profile = _one(profiles, "--profile")
    root = find_root()
    # The environment with the credentials ``python -m pipeline`` took out of it when it started (secret_env).
    environ = secret_env.environ()
    cfg = config_mod.load(root, profile=profile, overrides=[*(overrides or []), *extra], environ=environ)
    from pipeline.stages.targets import target_class  # the one list of deploy targets

    target_class(cfg)  # a deploy.target it does not name: exit 2 now, whatever the command
    from pipeline.store.configured import check_url

    check_url(cfg)  # a store.url it cannot read: exit 2 now, too
    return cfg


def _shared_cache(cfg: config_mod.Config) -> SharedCache | None:
    """The shared stage cache of ``[store]``, or None: none configured, or one that cannot be opened (said on
    stderr; the run goes on without it)."""
    from pipeline.errors import StoreUnavailable
    from pipeline.shared_cache import SharedCache
    from pipeline.store.configured import shared_store

    def warn(line: str) -> None:
        typer.echo(f"warning: {line}", err=True)

    try:
        store = shared_store(cfg)
    except StoreUnavailable as exc:
        warn(f"the shared store {cfg.store.url} cannot be used: {exc.message}; this run goes on without it")
        return None
    return None if store is None else SharedCache(store, write=cfg.store.write, warn=warn)


def _selected_stages(values: list[str] | None) -> str:
    """``--stage`` (repeatable, adding up) as one comma-separated selection, 'all' when it is not given.
    Refuses an empty or blank one (exit 2) instead of reading it as 'all'."""
    stage = "all" if values is None else ",".join(values)
    if not any(part.strip() for part in stage.split(",")):
        from pipeline.stages import ORDER

        raise UsageError(
            f"--stage is empty: pass 'all' or stage names, comma-separated ({', '.join(ORDER)}), "
            "or leave the option out"
        )
    return stage


def _console() -> Any:
    from pipeline.report import make_console

    return make_console(plain=plain_output())


def guarded(command: Callable[P, int]) -> Callable[P, None]:
    """A command whose body returns its exit code: the pipeline's errors become a message and the documented
    exit code (:func:`_guard`)."""

    @functools.wraps(command)
    def run_guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        raise typer.Exit(_guard(lambda: command(*args, **kwargs)))

    return run_guarded


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body; turn the pipeline's errors into a message and the documented exit code."""
    try:
        return fn()
    except PipelineError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            typer.echo(f"  → {exc.hint}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


@app.command()
@guarded
def run(
    stage: StageOpt = None,
    from_: Annotated[
        Optional[list[str]],
        typer.Option("--from", metavar="STAGE", help="Start at this stage (in pipeline order)."),
    ] = None,
    skip: Annotated[
        Optional[list[str]],
        typer.Option(
            "--skip", metavar="STAGES", help="Stages to leave out, comma-separated (repeatable: they add up)."
        ),
    ] = None,
    profile: ProfileOpt = None,
    set_: SetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and the commands; run nothing.")
    ] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="Go on with stages that do not depend on a failed one.")
    ] = False,
    jobs: Annotated[
        Optional[int],
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            help="Run up to N independent stages at once (default: one per CPU core).",
        ),
    ] = None,
    report_dir: Annotated[
        Optional[list[Path]],
        typer.Option("--report-dir", metavar="DIR", help="Where reports go (default reports/)."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every selected stage, even when its inputs are unchanged.")
    ] = False,
    rerun: Annotated[
        Optional[list[str]],
        typer.Option(
            "--rerun",
            metavar="STAGES",
            help="Run these selected stages even when cached (comma-separated; repeatable).",
        ),
    ] = None,
) -> int:
    """Run the selected stages in dependency order; reports go to the report dir.

    A stage whose declared inputs (files, config, tools, earlier stages' outputs) are those of its last
    pass is reported 'cached' and not run again (smoke, push and deploy always run).
    """
    from pipeline import cache, history, planning, report, report_html
    from pipeline import runner as runner_mod
    from pipeline.stages import STAGES
    from pipeline.state import RunState

    stages = _selected_stages(stage)
    reports = _one([str(p) for p in report_dir] if report_dir else None, "--report-dir")
    extra = [f"pipeline.report_dir={reports}"] if reports else []
    cfg = _load_config(profile, set_, extra)
    plan = planning.select(STAGES, stage=stages, start=_one(from_, "--from"), skip=_names(skip))
    console = _console()
    forced = planning.rerun_names(_names(rerun), plan)
    fingerprinter = cache.Fingerprinter(cfg.root)
    if dry_run:
        state = RunState.load(cfg.state_file)
        judge = planning.CacheJudge(
            cfg, state, fingerprinter, no_cache=no_cache, rerun=forced, shared=_shared_cache(cfg)
        )
        _print_dry_run(console, planning.dry_run(plan, judge))
        return 0
    report.prepare_dir(cfg.stage_reports, cfg.report_dir)
    with RunLock(cfg.state_file.parent):
        state = RunState.load(cfg.state_file)
        planning.check_inputs(plan, cfg, state, fingerprinter)
        planning.preflight(plan, cfg)
        reporter = report.PlainReporter(console) if plain_output() else report.LiveReporter(console)
        runner = runner_mod.Runner(
            cfg,
            state,
            reporter,
            jobs=jobs or cfg.pipeline.jobs or os.cpu_count() or 1,
            keep_going=keep_going or cfg.pipeline.keep_going,
            no_cache=no_cache,
            rerun=forced,
            fingerprinter=fingerprinter,
            shared=_shared_cache(cfg),
        )
        result = runner.execute(plan)
        result.build_url = ci_build_url()
        with interrupts.shield():  # the reports of an aborted run are written all the same
            # the history is a convenience: what fails is a warning, and the reports still get written
            history.record(cfg, history.entry_for(result, state), lambda text: typer.echo(text, err=True))
            try:
                written = report.write_reports(result, cfg.report_dir)
                written.append(report_html.write(result, cfg, state))
            except OSError as exc:  # a disk that filled up during the run
                problem = report.report_error(cfg.report_dir, exc)
                typer.echo(f"error: {problem.message}\n  → {problem.hint}", err=True)
                # The run's own verdict wins when it has one: exit 4 must still reach a person.
                return result.exit_code or problem.exit_code
    console.print(f"reports: {', '.join(str(p) for p in written)}, {cfg.stage_reports}/", markup=False)
    return result.exit_code


def ci_build_url() -> str | None:
    """The CI build running this, for the reports' link back: Jenkins' ``BUILD_URL`` (core's
    ``Run.getEnvironment``; set when the controller has its URL, casc.yaml ``unclassified.location.url``).
    Only an http(s) URL: the reports link to it."""
    url = os.environ.get("BUILD_URL", "").strip()
    return url if url.startswith(("https://", "http://")) else None


def _print_dry_run(console: Any, shown: DryRun) -> None:
    """``run --dry-run``: the plan (:func:`pipeline.planning.dry_run`), as text."""
    console.print(f"plan (profile {shown.profile}, dry run: nothing is executed)", markup=False)
    if shown.refusal is not None:
        console.print(f"  note: a real run would refuse: {shown.refusal}", markup=False)
    for i, item in enumerate(shown.stages, 1):
        needs = ", ".join(item.stage.needs) or "-"
        console.print(f"{i}. {item.stage.name}  (needs: {needs}; timeout {item.timeout_s:g}s)", markup=False)
        console.print(f"     -> {item.verdict}", markup=False)
        for line in item.commands:
            console.print(f"     {line}", markup=False)
    for name in shown.skipped:
        console.print(f"-  {name}  (skipped)", markup=False)


@app.command("list")
def list_stages() -> None:
    """The stages in pipeline order, with what each needs."""
    from pipeline.stages import STAGES

    width = max(len(s.name) for s in STAGES)
    for s in STAGES:
        needs = ",".join(s.needs) or "-"
        typer.echo(f"{s.name:<{width}}  needs {needs:<26} {s.description}")


@app.command()
@guarded
def doctor(stage: StageOpt = None, profile: ProfileOpt = None, set_: SetOpt = None) -> int:
    """Check what the selected stages need: tools, engine, registry, credentials; exit 3 if one is missing."""
    from rich.table import Table

    from pipeline import planning
    from pipeline.stages import STAGES
    from pipeline.stages.base import tool_version

    stages = _selected_stages(stage)
    cfg = _load_config(profile, set_)
    plan = planning.select(STAGES, stage=stages)
    table = Table(title=f"doctor (profile {cfg.profile})", title_justify="left")
    for col in ("", "stage", "check", "detail", "what to do"):
        table.add_column(col, overflow="fold")
    table.add_row("✓", "-", "config", f"{cfg.root / config_mod.CONFIG_FILE} is valid", "")
    from pipeline.store.configured import probe

    store_ok, store_detail = probe(cfg)
    fix = "check store.url, its credentials (boto3's chain) and store.endpoint_url; or mount the share"
    table.add_row("✓" if store_ok else "✗", "-", "store", store_detail, "" if store_ok else fix)
    missing = int(not store_ok)
    for s in plan.stages:
        for check in s.checks(cfg):
            mark = "✓" if check.ok else "✗"
            missing += int(not check.ok)
            detail = check.detail
            if check.ok and check.version_cmd:
                detail = f"{tool_version(check)} ({check.detail})"
            table.add_row(mark, s.name, check.name, detail, "" if check.ok else check.fix)
    _console().print(table)
    if missing:
        typer.echo(f"{missing} requirement(s) missing", err=True)
        return EXIT_PREREQUISITE
    return 0


@app.command()
@guarded
def status() -> int:
    """The last run's state: each stage's result and what it left (model, image, digest, deployment)."""
    from pipeline.stages import STAGES
    from pipeline.state import RunState

    cfg = _load_config(None, None)
    state = RunState.load(cfg.state_file)
    if not state.stages:
        typer.echo(f"no run recorded in {cfg.state_file}")
        for line in _shared_releases(cfg, state):
            typer.echo(line)
        return 0
    for stage in STAGES:
        rec = state.record(stage.name)
        if rec is None:
            continue
        typer.echo(f"{stage.name:<12} {rec.status:<8} {rec.finished_at}  {rec.summary}")
        outputs = state.outputs(stage.outputs)  # typed: what this pipeline records, or exit 2 naming it
        for key, value in sorted(outputs.to_json().items() if outputs is not None else ()):
            typer.echo(f"{'':<12}   {key}: {value}")
    for line in _shared_releases(cfg, state):
        typer.echo(line)
    note = _recover_target(cfg)
    if note:
        typer.echo(note)
    return 0


def _shared_releases(cfg: config_mod.Config, state: Any) -> list[str]:
    """With a shared store: the releases of the configured target as the store has them (another agent's
    deploy shows here too); nothing without one (the deploy stage's lines above say it all)."""
    from pipeline.releases import Releases
    from pipeline.stages.targets import Release, target_class

    identity = target_class(cfg).identity(cfg)
    try:
        book = Releases.of(cfg, state)
        if book.store is None:
            return []
        releases = [Release.from_state(raw, identity) for raw in book.read(identity)]
    except PipelineError as exc:
        return [f"releases of {identity}: not read ({exc.message})"]
    lines = [f"releases of {identity} in {book.where}: {len(releases)}"]
    if releases:
        last = releases[-1]
        lines.append(f"{'':<12}   live: {last.image} (run {last.run_id or '?'})")
        lines.append(f"{'':<12}   previous: {last.previous or '-'}")
    return lines


def _recover_target(cfg: config_mod.Config) -> str | None:
    """What ``status`` found of a deploy cut short on the configured target, after undoing it (under the
    checkout's lock; while a run holds it, the run itself is the one deploying)."""
    from pipeline.errors import RunLocked
    from pipeline.stages.targets import target_class

    kind = target_class(cfg)
    try:
        with RunLock(cfg.state_file.parent):
            return kind(cfg, lambda _line: None).recover()
    except RunLocked:
        return None
    except PipelineError as exc:
        return f"deploy target {kind.identity(cfg)}: not checked for a deploy cut short ({exc.message})"


@app.command("history")
@guarded
def show_history(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> int:
    """The last runs of this checkout (of every agent, with a shared store): when, how they ended, model,
    image and where they deployed."""
    import dataclasses
    import json

    from rich.table import Table

    from pipeline import history

    cfg = _load_config(None, None)
    entries, where = history.recent(cfg, limit, warn=lambda text: typer.echo(text, err=True))
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(dataclasses.asdict(entry), sort_keys=True))
        return 0
    if not entries:
        typer.echo(f"no run recorded in {where}")
        return 0
    table = Table(title=f"last {len(entries)} run(s), newest first", title_justify="left")
    for column in ("run", "started", "status", "duration", "model", "cv acc.", "image", "deployed to"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            e.run_id,
            e.started_at,
            e.status,
            f"{e.duration_s:.0f}s",
            e.model_version or "-",
            f"{e.cv_accuracy:.3f}" if e.cv_accuracy is not None else "-",
            e.image or "-",
            e.deployed_to or "-",
        )
    _console().print(table)
    return 0


@app.command("config")
@guarded
def show_config(profile: ProfileOpt = None, set_: SetOpt = None) -> int:
    """The effective configuration, each value with its source; secrets redacted."""
    cfg = _load_config(profile, set_)
    typer.echo(f"# profile: {cfg.profile}; file: {cfg.root / config_mod.CONFIG_FILE}")
    rows = config_mod.redacted(cfg)
    width = max(len(k) for k, _, _ in rows)
    for key, value, source in rows:
        shown = list(value) if isinstance(value, tuple) else value
        typer.echo(f"{key:<{width}} = {shown!r:<40} # {source}")
    return 0


@app.command()
@guarded
def rollback(profile: ProfileOpt = None, set_: SetOpt = None) -> int:
    """Put back what ran before the last release on the configured deploy target (that target only)."""
    from pipeline.stages import BY_NAME
    from pipeline.state import RunState

    cfg = _load_config(profile, set_)
    with RunLock(cfg.state_file.parent):
        state = RunState.load(cfg.state_file)
        typer.echo(BY_NAME["deploy"].rollback(cfg, state, typer.echo))
    return 0


def main() -> None:
    app()
