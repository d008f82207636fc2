"""Deploy target ``local``: the service as one named container on the local Docker engine.

The new release is first tried as a candidate beside the live one, so an image that cannot be pulled or
never becomes ready fails with the live release untouched; then the old container is stopped and kept
aside while the new one starts under the service's name and port, and put back if that fails or the run
is interrupted. ``roll_back`` does the same with the image that ran before the last release, after checking
that the container still runs that release.

A swap that the process does not live to finish (SIGKILL, as Jenkins sends 5 s after its SIGTERM; a lost
engine) leaves ``NAME-previous``, which exists only during a swap. ``recover`` puts that release back, and
``deploy``, ``rollback`` and ``status`` call it first, and say so.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pipeline.adapters.docker_containers import free_port
from pipeline.config import Config, LocalDeploySection
from pipeline.errors import EngineUnavailable, Interrupted, LeftBroken, StageFailed, UsageError
from pipeline.stages import _images
from pipeline.stages.base import CheckResult
from pipeline.stages.targets.base import Deployed, DeployTarget, Release, RolledBack
from pipeline.state import utcnow

if TYPE_CHECKING:
    from pipeline.adapters.docker_engine import DockerEngine
    from pipeline.adapters.reach import Reach

RELEASE_LABEL = "io.mlops.release"
CANDIDATE_LABEL = "io.mlops.candidate"


class LocalTarget(DeployTarget):
    """The service as one named container on the local Docker engine."""

    name = "local"

    @property
    def local(self) -> LocalDeploySection:
        return self.config.deploy.local

    @property
    def aside(self) -> str:
        """Where the live release waits during a swap, ``NAME-previous``: it exists only then."""
        return f"{self.local.container_name}-previous"

    @cached_property
    def engine(self) -> DockerEngine:
        return _images.connect(self.config)

    @cached_property
    def reach(self) -> Reach:
        """How this process reaches the containers it starts (connecting on first use, not before)."""
        found = _images.container_reach(self.config, self.engine)
        self.log(found.describe())
        return found

    def _start(self, image: str, name: str, port: int | None, **options: Any) -> str:
        return self.engine.run_container(
            image, name=name, ports=_images.publish(port), network=self.reach.network, **options
        )

    def _wait(self, container: str, port: int | None, cancel: threading.Event | None) -> float:
        from pipeline.adapters.service import ServiceClient

        def alive() -> str | None:
            return self.engine.container_state(container).failure()

        url = _images.service_url(self.engine, self.reach, container, port)
        self.log(f"waiting for {url}/ready")
        return ServiceClient(url).wait_ready(self.local.ready_timeout_s, alive=alive, cancel=cancel)

    def _log_tail(self, container: str) -> None:
        for line in self.engine.container_logs(container).splitlines()[-50:]:
            self.log(f"  {line}")

    def _try_candidate(self, image: str) -> None:
        """Run ``image`` beside the live release (its own name, no fixed port) until it is ready.

        An image that cannot be pulled, does not start or never becomes ready fails here, and an
        interrupt stops here, before the live release is touched.
        """
        name = f"{self.local.container_name}-candidate"
        self.engine.remove_container(name)  # left over by a run that was killed
        port = free_port() if self.reach.publishes else None
        self.log(f"trying {image} as {name} first; the live release is not touched yet")
        container = self._start(image, name, port, labels={CANDIDATE_LABEL: self.local.container_name})
        try:
            ready_s = self._wait(container, port, self.cancel)
            self.log(f"{name} was ready after {ready_s:.1f} s")
        except StageFailed as exc:
            self._log_tail(container)
            raise StageFailed(
                f"{image} never became ready ({exc.message}); the live release was not touched"
            ) from None
        except Interrupted:
            raise Interrupted(f"deploy of {image} interrupted; the live release was not touched") from None
        finally:
            self.engine.remove_container(container)

    def _put_back(self, name: str, aside: str, previous: str | None) -> str:
        """The old release back under its name, checked ready on the port it was published on (without
        the run's cancel: an interrupt must still leave the service up); what happened, for the message.
        A put-back that fails too is :class:`LeftBroken` (exit 4): the service is down and nobody chose it."""
        try:
            self.engine.remove_container(name)
            if not previous:
                return "no release ran before"
            self.engine.rename_container(aside, name)
            self.engine.start_container(name)
            self._wait(name, self.engine.published_port(name, _images.SERVICE_PORT), None)
        except (StageFailed, EngineUnavailable) as exc:
            self.log(f"putting back {previous} failed: {exc.message}")
            raise LeftBroken(
                f"putting back {previous} failed too ({exc.message})",
                hint=f"look at containers {name} and {aside} now (docker ps -a); the next deploy, "
                "'pipeline rollback' or 'pipeline status' tries the put-back again",
            ) from None
        return f"rolled back to {previous}"

    def recover(self) -> str | None:
        """Undo a swap that was cut short (SIGKILL, a lost engine, a power cut): ``NAME-previous`` exists
        only while a swap is under way, so finding it means the last deploy never finished. The release
        kept aside goes back under its name; what was done, or None when there was nothing to do."""
        name = self.local.container_name
        aside = self.aside
        kept = self.engine.find_container(aside)
        if kept is None:
            return None
        current = self.engine.find_container(name)
        what = f" of {current.image}" if current is not None and current.image != kept.image else ""
        self.log(f"found {aside}: a deploy{what} was cut short during its swap; putting {kept.image} back")
        said = self._put_back(name, aside, kept.image)
        return f"a deploy{what} cut short during its swap was undone: {said}"

    @classmethod
    def checks(cls, config: Config) -> list[CheckResult]:
        return [_images.engine_check(config), _images.reach_check(config)]

    @classmethod
    def plan(cls, config: Config) -> list[str]:
        local = config.deploy.local
        return [
            f"target local: replace container {local.container_name} "
            f"(127.0.0.1:{local.port}) with the pushed digest; wait for /ready; roll back if it never is"
        ]

    @classmethod
    def live_url(cls, config: Config) -> str | None:
        return f"http://127.0.0.1:{config.deploy.local.port}"

    @classmethod
    def identity(cls, config: Config) -> str:
        return f"local:{config.deploy.local.container_name}"

    def deploy(  # pylint: disable=unused-argument  # recorded: no old releases to clean up here
        self, image: str, run_id: str, model_version: str | None = None, recorded: Sequence[Release] = ()
    ) -> Deployed:
        del model_version  # the candidate and the live release are checked ready on /ready
        undone = self.recover()
        if undone:
            self.log(undone)
        previous, seconds = self._replace(image)
        release = Release(
            image=image, previous=previous, ref=self.local.container_name, run_id=run_id, deployed_at=utcnow()
        )
        where = f"127.0.0.1:{self.local.port}"
        return Deployed(release, seconds, url=f"http://{where}", where=f"live on {where}")

    def roll_back(self, releases: list[Release]) -> RolledBack:
        name = self.local.container_name
        if not releases and self.engine.find_container(self.aside) is None:
            raise UsageError(
                f"no release of container {name} is recorded in this checkout's run state",
                hint="deploy first: python -m pipeline run --stage deploy",
            )
        undone = self.recover()
        if undone:  # the deploy that was cut short is what this rollback takes back
            return RolledBack(undone, releases)
        last = releases[-1]
        running = self.engine.find_container(name)
        if running is None or running.image != last.image:
            raise UsageError(
                f"container {name} runs {running.image if running else 'nothing'}, not {last.image}, the "
                "last release this checkout deployed: someone else changed it, so it is not rolled back",
                hint=f"look at it (docker inspect {name}); deploy what you want with --set deploy.image=...",
            )
        if not last.previous:
            raise UsageError(
                f"{last.image} was the first release of container {name}: nothing ran before it",
                hint=f"to take the service down, remove it: docker rm -f {name}",
            )
        self.log(f"rolling back container {name} from {last.image} to {last.previous}")
        self._replace(last.previous)
        return RolledBack(f"rolled back from {last.image} to {last.previous}", releases[:-1])

    def _replace(self, image: str) -> tuple[str | None, float]:
        """Replace the live release with ``image``; returns (previous image, seconds to ready).

        The new release is first tried as a candidate beside the live one. Only then is the live one
        stopped and kept aside while the new one starts under the service's name and port; if that
        fails (the port taken, say) or the run is interrupted, the old one is put back.
        """
        self._try_candidate(image)
        name, aside = self.local.container_name, self.aside
        running = self.engine.find_container(name)
        previous = running.image if running else None
        if previous:
            # Renamed first, then stopped: from the rename until the new release is ready, NAME-previous
            # exists, the mark that recover() reads when this process dies before the end (a stop first
            # would leave a window where the live release is stopped under its own name, unmarked).
            self.log(f"stopping the live release ({previous}) and keeping it aside as {aside}")
            self.engine.rename_container(name, aside)
            self.engine.stop_container(aside)
        try:
            container = self._start(
                image,
                name,
                self.local.port,
                labels={RELEASE_LABEL: name},
                restart_policy={"Name": "unless-stopped"},
            )
            try:
                ready_s = self._wait(container, self.local.port, self.cancel)
            except StageFailed:
                self._log_tail(container)
                raise
        except (StageFailed, EngineUnavailable) as exc:
            # EngineUnavailable too: one lost connection must not leave the service stopped aside.
            self.log(f"new release failed: {exc.message}")
            said = self._put_back(name, aside, previous)
            raise type(exc)(f"{image} failed ({exc.message}); {said}", hint=exc.hint) from None
        except Interrupted:
            raise Interrupted(
                f"deploy of {image} interrupted; {self._put_back(name, aside, previous)}"
            ) from None
        self.engine.remove_container(aside)
        self.log(f"{image} is live on http://127.0.0.1:{self.local.port} after {ready_s:.1f} s")
        return previous, ready_s
