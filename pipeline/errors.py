"""The pipeline's exception tree.

Every failure the pipeline knows about is one of these; the CLI (``pipeline.cli``) is the one place
that turns them into exit codes (README, "Exit codes")::

    PipelineError                   base; exit 1
    ├── UsageError                  exit 2: a bad command line (stage names, flags)
    │   ├── ConfigError             exit 2: pipeline.toml, a profile, an env var or --set is invalid
    │   ├── RunLocked               exit 2: another run of this checkout holds .pipeline/run.lock
    │   ├── LeaseTaken              exit 2: another agent holds a lease of the shared store (pipeline.store)
    │   │   └── LeaseLost           ... the lease this run held was taken over (it expired unrenewed)
    │   ├── MissingPrerequisite     exit 2: a selected stage needs the output of a stage not yet run
    │   └── StalePrerequisite       exit 2: ... of a stage that passed for other inputs than today's
    ├── EnvironmentProblem          exit 3: a tool, the Docker engine or a credential is missing
    │   ├── ToolNotFound            an executable is not on PATH
    │   ├── EngineUnavailable       the Docker engine does not answer
    │   ├── StoreUnavailable        pipeline.store does not answer or refuses: network, rights, disk
    │   └── StoreCorrupt            a stored object is not what its name says; callers take it as a miss
    ├── StageFailed                 exit 1: a stage ran and failed (a gate, a tool error)
    │   ├── ToolFailed              an outside tool exited non-zero or said "error"
    │   │   └── ServiceBusy         an outside service did not answer this time (throttled, 5xx, network)
    │   ├── LeftBroken              exit 4: a deploy failed and its rollback failed or could not be confirmed
    │   ├── StageTimeout            the stage ran past its configured timeout
    │   ├── GateFailed              the stage's quality or security gate refused the result
    │   └── StageContractError      a stage read or recorded a run-state key it does not declare (a bug)
    └── Interrupted                 exit 130: Ctrl-C / SIGINT / SIGTERM

Messages say what went wrong and what to do about it; they never carry a secret.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_STAGE_FAILED = 1
EXIT_USAGE = 2
EXIT_PREREQUISITE = 3
EXIT_LEFT_BROKEN = 4
EXIT_INTERRUPTED = 130


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    exit_code = EXIT_STAGE_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(PipelineError):
    """The command line asks for something that cannot be done."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration value is unknown, of the wrong type or out of range."""

    def __init__(
        self, message: str, *, key: str | None = None, source: str | None = None, hint: str | None = None
    ) -> None:
        where = ""
        if key:
            where = f"{key}"
            if source:
                where += f" (from {source})"
            where += ": "
        super().__init__(where + message, hint=hint)
        self.key = key
        self.source = source


class MissingPrerequisite(UsageError):
    """A stage was selected whose prerequisite output is not in the run state."""

    def __init__(self, stage: str, run_first: str, what: str) -> None:
        super().__init__(
            f"stage '{stage}' needs {what}, which is not in the run state",
            hint=f"run 'python -m pipeline run --stage {run_first}' first",
        )
        self.stage = stage
        self.run_first = run_first


class RunLocked(UsageError):
    """Another run of this checkout holds its lock (``.pipeline/run.lock``)."""


class LeaseTaken(UsageError):
    """Another holder has the lease (:mod:`pipeline.store.lease`); ``holder`` says who, when known."""

    def __init__(self, message: str, *, holder: object = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


class LeaseLost(LeaseTaken):
    """The lease this holder had was taken over by another (it expired before it was renewed)."""


class StalePrerequisite(UsageError):
    """A selected stage needs a stage whose recorded pass was for other inputs than the tree's today."""

    def __init__(self, stage: str, stale: str, why: str) -> None:
        super().__init__(
            f"stage '{stage}' needs '{stale}', whose last pass is stale ({why})",
            hint=f"run it too (--stage {stale},{stage}, cached when unchanged) or waive it (--skip {stale})",
        )
        self.stage = stage
        self.stale = stale


class EnvironmentProblem(PipelineError):
    """Something the selected stages need is missing from this machine."""

    exit_code = EXIT_PREREQUISITE


class ToolNotFound(EnvironmentProblem):
    """An executable the stage calls is not on PATH."""

    def __init__(self, tool: str, hint: str | None = None) -> None:
        super().__init__(
            f"'{tool}' is not on PATH",
            hint=hint or "install the dev requirements: pip install -r requirements/dev.txt",
        )
        self.tool = tool


class EngineUnavailable(EnvironmentProblem):
    """The Docker engine does not answer."""


class StoreUnavailable(EnvironmentProblem):
    """The pipeline's store (:mod:`pipeline.store`) cannot be read or written: a bucket that does not answer
    or refuses, a shared folder that is not mounted, a disk that is full or read-only."""


class StoreCorrupt(EnvironmentProblem):
    """An object in the store is not what its name says (a blob whose bytes do not hash to its name): never
    returned as data; a reader takes it as a miss."""


class StageFailed(PipelineError):
    """A stage ran and did not pass."""


class ToolFailed(StageFailed):
    """An outside tool failed."""


class ServiceBusy(ToolFailed):
    """An outside service did not answer this time (throttling, a 5xx, the network): asking again may work."""


class LeftBroken(StageFailed):
    """A deploy failed and putting the previous release back failed too or could not be confirmed: the
    target is in a state nobody chose. Exit 4, so a CI job can tell it from a clean rollback (exit 1)."""

    exit_code = EXIT_LEFT_BROKEN


class StageTimeout(StageFailed):
    """A stage ran past its timeout."""


class GateFailed(StageFailed):
    """A quality or security gate refused the result."""


class StageContractError(StageFailed):
    """A stage read or recorded a run-state key outside its declarations: a bug in the stage."""


class Interrupted(PipelineError):
    """The run was interrupted by a signal."""

    exit_code = EXIT_INTERRUPTED
