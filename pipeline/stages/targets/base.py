"""What every deploy target is to the ``deploy`` stage and to ``pipeline rollback``.

A target is one module with one class (:class:`DeployTarget`): it checks its settings (``validate``), what
the machine and the account let it do (``checks``, for ``doctor`` and the pre-run check), says what it
would do (``plan``), names the thing it changes (``identity``: the run state keeps releases per identity,
so a rollback never acts on another service than the one its releases were deployed to), deploys an image
and rolls back. ``pipeline.stages.targets.TARGETS`` maps ``deploy.target`` to the class; a third target
(Kubernetes, say) is one new module and one line there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from pipeline.config import Config
from pipeline.errors import UsageError
from pipeline.stages.base import CheckResult

Log = Callable[[str], None]


@dataclass(frozen=True)
class Release:
    """One release a target put live, as the run state keeps it (``releases`` under the target's identity).

    ``ref`` is what the target calls the release (the task definition ARN for ``ecs``); ``previous`` and
    ``previous_ref`` what ran before it, which is what a rollback of this release puts back.
    """

    image: str
    previous: str | None = None
    ref: str = ""
    previous_ref: str = ""
    run_id: str = ""
    deployed_at: str = ""
    # The model's version, metrics and evaluation answers (``_promotion.model_summary``): what the next
    # candidate is compared with. None when it is not known (a deploy of ``deploy.image``).
    model: dict[str, Any] | None = None

    @classmethod
    def from_state(cls, raw: Any, identity: str) -> Release:
        """A release from the state file; a :class:`UsageError` (exit 2) when it is not one."""
        known = {f.name: f.type for f in fields(cls)}
        if not isinstance(raw, dict) or not isinstance(raw.get("image"), str):
            raise UsageError(
                f"the run state's releases for {identity} are not in the expected form: {raw!r:.120}",
                hint="move .pipeline/state.json aside, or deploy again to start a new history",
            )
        values = {key: value for key, value in raw.items() if key in known}
        for key, value in values.items():
            if key == "model" and (value is None or isinstance(value, dict)):
                continue
            if value is not None and not isinstance(value, str):
                raise UsageError(
                    f"the run state's release for {identity} has {key}={value!r:.80}, not a string",
                    hint="move .pipeline/state.json aside, or deploy again to start a new history",
                )
        return cls(**values)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Deployed:
    """What a deploy did: the release, how long the target took to be ready, whether anything changed."""

    release: Release
    seconds: float
    unchanged: bool = False
    url: str = ""
    # Where the release is live, for the summary: "live as iris:7 on prod/iris", "live on 127.0.0.1:8000".
    where: str = ""


@dataclass(frozen=True)
class RolledBack:
    """What a rollback did, in words for the terminal, and the releases that remain recorded."""

    message: str
    remaining: list[Release]


class DeployTarget:
    """The base of every target; subclasses set ``name`` and implement every method."""

    name: ClassVar[str] = ""

    def __init__(
        self,
        config: Config,
        log: Log,
        cancel: threading.Event | None = None,
        remaining_s: Callable[[], float] | None = None,
    ) -> None:
        """``log`` gets progress lines; ``cancel`` is the run's interrupt; ``remaining_s`` the seconds left
        of the stage's timeout (no wait outlasts it)."""
        self.config = config
        self.log = log
        self.cancel = cancel or threading.Event()
        self.remaining_s = remaining_s

    @classmethod
    def validate(cls, config: Config) -> None:
        """Refuse (exit 2) settings this target cannot work with."""

    @classmethod
    def checks(cls, config: Config) -> list[CheckResult]:
        raise NotImplementedError

    @classmethod
    def plan(cls, config: Config) -> list[str]:
        raise NotImplementedError

    @classmethod
    def identity(cls, config: Config) -> str:
        """The thing this target changes, e.g. ``ecs:eu-west-1/prod/iris``; releases are kept under it."""
        raise NotImplementedError

    @classmethod
    def live_url(cls, config: Config) -> str | None:  # pylint: disable=unused-argument
        """Where the live service may answer from here (its ``/api/v1/model`` names the champion when no
        release is recorded), or None when the target has no such address."""
        return None

    def deploy(
        self, image: str, run_id: str, model_version: str | None = None, recorded: Sequence[Release] = ()
    ) -> Deployed:
        """Put ``image`` live; ``model_version``: the model this run built, when known; ``recorded``: the
        releases recorded for this target (what a clean-up of old releases must keep)."""
        raise NotImplementedError

    def recover(self) -> str | None:
        """Finish or undo what a deploy that was cut short (SIGKILL, a lost connection) left half done;
        what was done, or None when nothing was. ``deploy``, ``rollback`` and ``status`` call it first."""
        return None

    def roll_back(self, releases: list[Release]) -> RolledBack:
        """Put back what ran before the last of ``releases`` (recorded under this target's identity),
        after checking that the target still runs that last release."""
        raise NotImplementedError
