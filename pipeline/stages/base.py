"""The stage interface: what the runner knows of a stage, and what a stage gets to work with.

A stage is a small class with a ``name``, the stages it ``needs``, the ``checks`` of what it requires
on this machine (tools, engine, credentials), the ``plan`` it would carry out (for ``--dry-run``) and
``run(ctx)``, which returns a :class:`StageResult` or raises an error of ``pipeline.errors``.

The run-state contract is declared, not conventional:

- ``outputs`` is the stage's class of :mod:`pipeline.outputs`; ``ctx.record`` takes one instance of it.
  Another class, or a field whose value is not of its annotated type, fails the stage
  (:class:`~pipeline.errors.StageContractError`).
- ``ctx.read(BuildOutputs)`` reads the outputs of the stage itself or of a stage it needs (directly or
  not), typed.
- ``inputs(config)`` declares what the result depends on (:class:`pipeline.cache.Inputs`). A
  ``cacheable`` stage that passed before with the same inputs is ``cached``: ``reuse`` gives its
  earlier result (a stage may check that its output still exists, or refresh it). Every stage's
  inputs also tell whether its recorded pass is still good as a prerequisite of a later stage.

A stage writes its output to its log (``ctx.log``) and a one-line live status (``ctx.progress``),
never to the terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from pipeline.adapters import process
from pipeline.adapters.process import ProcessResult
from pipeline.cache import Inputs
from pipeline.config import Config
from pipeline.errors import Interrupted, StageContractError, UsageError
from pipeline.outputs import Outputs, OutputsError, OutputsT
from pipeline.results import Status
from pipeline.scrub import Scrubber
from pipeline.state import RunState, StageRecord

if TYPE_CHECKING:
    from pipeline.shared_cache import SharedCache


@dataclass(frozen=True)
class CheckResult:
    """One line of ``doctor``: a requirement, whether it holds, and what to do when it does not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True
    version_cmd: tuple[str, ...] = ()  # doctor runs it to show the tool's version; preflight does not
    # The configuration key whose value makes this check fail, when that is the cause: the pre-run check
    # then exits 2 (a setting to change), not 3 (something missing on the machine).
    setting: str = ""


@dataclass
class StageResult:
    """What a stage returns; the runner adds timing and the error text."""

    status: Status = Status.PASSED
    summary: str = ""
    artifacts: dict[str, Any] = field(default_factory=dict)


class StageContext:
    """Everything a running stage may use: config, state, its log, progress, and cancellation."""

    def __init__(
        self,
        *,
        stage: str,
        config: Config,
        state: RunState,
        run_id: str,
        log_file: IO[str],
        progress: Callable[[str], None],
        cancel: threading.Event,
        timeout_s: float,
        readable: Mapping[str, type[Outputs]] | None = None,
    ) -> None:
        self.stage = stage
        self.config = config
        self.state = state
        self.run_id = run_id
        self.cancel = cancel
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self._log_file = log_file
        self._progress = progress
        self._lock = threading.Lock()
        self.outputs: dict[str, Any] = {}
        # Stage name -> its outputs class, for this stage and every stage it needs (None: unchecked).
        self._readable = readable
        self.scrub = Scrubber(config.secret_values)
        self.log_error: str | None = None  # why the log stopped (a full disk), once it has
        # The stage cache shared through the store, when [store] names one (the runner sets it).
        self.shared: SharedCache | None = None

    @property
    def root(self) -> Path:
        return self.config.root

    @property
    def report_dir(self) -> Path:
        return self.config.report_dir

    @property
    def log_path(self) -> Path:
        """This stage's log, for hints that send the reader to it."""
        return self.config.stage_log(self.stage)

    def log(self, line: str) -> None:
        """Append one line to the stage's log (``reports/stages/NAME.log``).

        A log that cannot be written (a full disk) never stops the stage: whatever it is doing, a put-back
        above all, goes on. The first failure is said once on stderr; ``log_error`` keeps it for the run."""
        with self._lock:
            if self.log_error is not None:
                return
            try:
                self._log_file.write(self.scrub(line.rstrip("\n")) + "\n")
                self._log_file.flush()
            except OSError as exc:
                self.log_error = f"cannot write {self.log_path}: {exc.strerror or exc}"
                sys.stderr.write(f"pipeline: {self.log_error}; the stage goes on without its log\n")

    def progress(self, line: str) -> None:
        """Show a one-line status for this stage in the live view (and log it)."""
        self._progress(line)

    def remaining_s(self) -> float:
        """Seconds left before the stage's timeout; tools get this as their own timeout."""
        return max(1.0, self.deadline - time.monotonic())

    def report_path(self, suffix: str) -> Path:
        """A tool report beside the stage log: ``reports/stages/<stage><suffix>``."""
        path = self.config.stage_reports / f"{self.stage}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def run_tool(
        self,
        argv: list[str],
        *,
        cwd: Path | None = None,
        hint: str | None = None,
        env: dict[str, str] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> ProcessResult:
        """Run an outside command with its output in this stage's log, under the stage's timeout.

        The command gets ``env``, or else the config's tool environment (no credentials in it). ``log``
        takes its lines instead of the stage log (a tool run beside another buffers them, then logs them).
        """
        return process.run(
            argv,
            log=log or self.log,
            cwd=cwd or self.root,
            env=env if env is not None else (dict(self.config.tool_environ) or None),
            timeout_s=self.remaining_s(),
            cancel=self.cancel,
            hint=hint,
        )

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Interrupted(f"stage '{self.stage}' was interrupted")

    def record(self, outputs: Outputs) -> None:
        """Leave this stage's outputs in the run state, for later stages and later runs: an instance of the
        class it declares, whose every field holds what its annotation says."""
        declared = self._readable.get(self.stage) if self._readable is not None else type(outputs)
        # Exactly the class: TrivyImageOutputs is a ScanOutputs, and trivy-fs must not record it.
        if type(outputs) is not declared:  # pylint: disable=unidiomatic-typecheck
            raise StageContractError(
                f"stage '{self.stage}' records {type(outputs).__name__}, but declares {declared}"
            )
        data = outputs.to_json()
        try:
            type(outputs).from_json(data)
        except OutputsError as exc:
            raise StageContractError(f"stage '{self.stage}' records outputs that do not fit: {exc}") from None
        self.outputs = data

    def read(self, kind: type[OutputsT]) -> OutputsT | None:
        """The outputs of this stage or of one it needs (directly or not), typed; None when that stage has
        not passed."""
        if self._readable is not None:
            if kind.stage not in self._readable:
                raise StageContractError(
                    f"stage '{self.stage}' reads {kind.__name__}, but does not need '{kind.stage}'"
                )
            if self._readable[kind.stage] is not kind:
                raise StageContractError(
                    f"stage '{self.stage}' reads {kind.__name__}, but '{kind.stage}' records "
                    f"{self._readable[kind.stage].__name__}"
                )
        return self.state.outputs(kind)


class Stage:
    """Base class of the stages; subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    outputs: ClassVar[type[Outputs]] = Outputs
    # Whether a pass with the same inputs may be reused; stages that act on the outside world say no.
    cacheable: ClassVar[bool] = False

    def inputs(self, config: Config) -> Inputs:
        """What this stage's result depends on; by default, what the stages it needs recorded."""
        del config
        return Inputs(upstream=self.needs)

    def prerequisites(self, config: Config) -> tuple[str, ...]:
        """The stages whose recorded pass this stage builds on when they are not selected (``needs``)."""
        del config
        return self.needs

    def reuse(self, ctx: StageContext, record: StageRecord) -> StageResult | None:
        """The result of a cache hit: the earlier pass, its outputs recorded again.

        Return ``None`` to run after all (e.g. the output the record names is gone).
        """
        try:
            ctx.record(self.outputs.from_json(record.outputs))
        except OutputsError as exc:
            ctx.log(f"the earlier pass cannot be reused: {exc}")
            return None
        return StageResult(status=Status.CACHED, summary=record.summary, artifacts=dict(record.artifacts))

    def produces(self, config: Config) -> tuple[Path, ...]:  # pylint: disable=unused-argument
        """Files or folders a pass leaves in the checkout besides its reports (``train``: the model), which a
        shared cache entry carries to other agents (:mod:`pipeline.shared_cache`)."""
        return ()

    def checks(self, config: Config) -> list[CheckResult]:  # pylint: disable=unused-argument
        """What this stage needs on the machine; every ``ok=False, required=True`` stops the run (exit 3)."""
        return []

    def validate(self, config: Config) -> None:
        """Raise :class:`~pipeline.errors.ConfigError` (exit 2) when the config cannot work for this stage."""

    def plan(self, config: Config) -> list[str]:  # pylint: disable=unused-argument
        """The commands and settings this stage would use, for ``--dry-run``."""
        return []

    def missing_input(  # pylint: disable=unused-argument
        self, config: Config, state: RunState, selected: set[str]
    ) -> tuple[str, str] | None:
        """``(stage to run first, what is missing)`` when an output this stage reads is not available.

        That each of ``prerequisites()`` is selected, waived or passed for today's inputs is checked by
        the runner (``check_inputs``) for every stage; stages that read specific outputs add to it here.
        """
        return None

    def run(self, ctx: StageContext) -> StageResult:
        raise NotImplementedError

    def rollback(self, config: Config, state: RunState, log: Callable[[str], None]) -> str:
        """Undo this stage's last effect on the outside world (``pipeline rollback``); says what it did.
        ``log`` gets progress lines while it waits.

        Only a stage that changes the outside world has one (deploy).
        """
        del config, state, log
        raise UsageError(f"stage '{self.name}' has nothing to roll back")


def tool_check(tool: str, *, fix: str, version_args: tuple[str, ...] = ("--version",)) -> CheckResult:
    """Is ``tool`` installed (on PATH or in this venv)? ``doctor`` also asks it for its version."""
    path = process.find_tool(tool)
    if path is None:
        return CheckResult(tool, False, "not found on PATH", fix)
    return CheckResult(tool, True, path, version_cmd=(path, *version_args))


def tool_version(check: CheckResult) -> str:
    """The first line a tool prints of its version, for ``doctor``."""
    if not check.version_cmd:
        return ""
    version = process.version_line(list(check.version_cmd))
    return version if version is not None else "(does not run)"
