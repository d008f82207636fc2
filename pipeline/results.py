"""What a run produced, as values: each stage's line (:class:`StageRun`) and the run's (:class:`RunResult`).

The runner fills them in and the report writers render them; neither imports the other. Statuses are
enums whose values are the strings of the README's "Reports" (``passed``, ``failed``, ``skipped``,
``cached``, ``not-run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.errors import EXIT_INTERRUPTED, EXIT_LEFT_BROKEN, EXIT_OK, EXIT_STAGE_FAILED, EXIT_USAGE


class Status(StrEnum):
    """A stage's status in the reports and the run state."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"
    NOT_RUN = "not-run"
    RUNNING = "running"

    @property
    def ok(self) -> bool:
        """Passed now or before with the same inputs: what a later stage may build on."""
        return self in (Status.PASSED, Status.CACHED)


class RunStatus(StrEnum):
    """The whole run's status in ``pipeline.json``."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass
class StageRun:
    """One stage's line in the reports (README, "Reports")."""

    name: str
    status: Status = Status.NOT_RUN
    started_at: str | None = None
    duration_s: float = 0.0
    summary: str = ""
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # The exit code the stage's error asks for (``LeftBroken``: 4); not part of the reports.
    exit_code: int = field(default=EXIT_OK, repr=False, compare=False)


@dataclass
class RunResult:
    run_id: str
    started_at: str
    profile: str
    git_sha: str | None
    stages: list[StageRun]
    finished_at: str | None = None
    status: RunStatus = RunStatus.RUNNING
    # The CI build that ran this (Jenkins' BUILD_URL), for the reports' link back; None outside CI.
    build_url: str | None = None

    @property
    def exit_code(self) -> int:
        if self.status == RunStatus.INTERRUPTED:
            return EXIT_INTERRUPTED
        if any(stage.exit_code == EXIT_LEFT_BROKEN for stage in self.stages):
            return EXIT_LEFT_BROKEN  # a target left in a state nobody chose outranks a plain failure
        if any(stage.exit_code == EXIT_USAGE for stage in self.stages):
            # a stage refused for a reason of the command's own (another agent holds the deploy target's
            # lease, a run state it cannot use): exit 2, as the same refusal before the run would
            return EXIT_USAGE
        return EXIT_OK if self.status == RunStatus.PASSED else EXIT_STAGE_FAILED
