"""``smoke``: run the built image and ask it the questions that matter.

The container is published on a free port of 127.0.0.1 when the pipeline runs on the engine's host,
or reached at its address on the network the pipeline's own container is on (``adapters/reach.py``).

Ready within the timeout; ``[5.1, 3.5, 1.4, 0.2]`` is ``setosa``; ``/api/v1/model`` reports the model
version that ``train`` recorded; the process is not root; a malformed request is a 400. The container
is removed whatever happens, and its logs are kept in the stage log.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from pipeline.cache import Inputs
from pipeline.config import Config
from pipeline.errors import GateFailed, StageFailed
from pipeline.outputs import BuildOutputs, SmokeOutputs, TrainOutputs
from pipeline.stages import _images
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult
from pipeline.state import RunState

SMOKE_LABEL = "io.mlops.smoke"  # the run that started the container
CHECKOUT_LABEL = "io.mlops.smoke.checkout"  # the checkout whose run did: what the next smoke run sweeps


def checkout_id(config: Config) -> str:
    """This checkout among others on one engine: its absolute path, hashed."""
    return hashlib.sha256(str(config.root.resolve()).encode("utf-8")).hexdigest()[:16]


if TYPE_CHECKING:
    from pipeline.adapters.docker_engine import DockerEngine
    from pipeline.adapters.service import ServiceClient

SETOSA = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


class SmokeStage(Stage):
    name = "smoke"
    needs = ("build",)
    description = "run the built image, wait for /ready, check a known prediction and the model version"
    outputs = SmokeOutputs

    def inputs(self, config: Config) -> Inputs:
        del config
        return Inputs(upstream=("build.image_id",))

    def checks(self, config: Config) -> list[CheckResult]:
        return [_images.engine_check(config), _images.reach_check(config)]

    def missing_input(self, config: Config, state: RunState, selected: set[str]) -> tuple[str, str] | None:
        if "build" not in selected and not state.outputs(BuildOutputs):
            return "build", "a built image"
        return None

    def plan(self, config: Config) -> list[str]:
        return [
            "docker run -d <built image>, published on 127.0.0.1:<free port> (on the engine's host) or on "
            f"the pipeline container's network (docker.reach={config.docker.reach})",
            f"wait for /ready ({config.smoke.ready_timeout_s:g} s), POST /api/v1/predict {SETOSA} -> "
            f"{config.smoke.expected_label}, GET /api/v1/model, uid != 0, malformed body -> 400; "
            "remove the container",
        ]

    def run(self, ctx: StageContext) -> StageResult:
        from pipeline.adapters.docker_containers import free_port
        from pipeline.adapters.service import ServiceClient

        engine = _images.connect(ctx.config)
        build = ctx.read(BuildOutputs)
        if build is None:
            raise StageFailed(
                "no built image to smoke-test", hint="run 'python -m pipeline run --stage build'"
            )
        image = build.image_id
        expected_version = build.model_version
        if expected_version is None:  # an image built before build recorded its model
            train = ctx.read(TrainOutputs)
            expected_version = train.model_version if train else None
        reach = _images.container_reach(ctx.config, engine)
        ctx.log(reach.describe())
        # A port free here is free on the engine's host only when this process runs there.
        port = free_port() if reach.publishes else None
        checkout = checkout_id(ctx.config)
        for orphan in engine.containers_by_label(CHECKOUT_LABEL, checkout):
            # The run lock says no other run of this checkout is going: a smoke container of this
            # checkout that still exists was left by a run that was killed (kill -9, a lost agent).
            engine.remove_container(orphan)
            ctx.log(f"removed container {orphan[:12]}, left by an earlier smoke run that was killed")
        name = f"smoke-{ctx.run_id[-6:]}-{secrets.token_hex(2)}"
        ctx.progress(f"starting {name}")
        container = engine.run_container(
            image,
            name=name,
            ports=_images.publish(port),
            labels={SMOKE_LABEL: ctx.run_id, CHECKOUT_LABEL: checkout},
            network=reach.network,
        )
        try:
            url = _images.service_url(engine, reach, container, port)
            ctx.log(f"probing {name} at {url}")
            client = ServiceClient(url)

            def alive() -> str | None:
                return engine.container_state(container).failure()

            ready_s = client.wait_ready(ctx.config.smoke.ready_timeout_s, alive=alive, cancel=ctx.cancel)
            ctx.log(f"/ready after {ready_s:.2f} s")
            failures = self._checks(ctx, client, engine, container, expected_version)
        finally:
            try:
                ctx.log("--- container logs ---")
                for line in engine.container_logs(container).splitlines():
                    ctx.log(line)
            finally:
                engine.remove_container(container)
                ctx.log(f"removed container {name}")
        if failures:
            raise GateFailed("; ".join(failures))
        ctx.record(SmokeOutputs(ready_s=round(ready_s, 2)))
        return StageResult(
            summary=f"ready in {ready_s:.1f}s, setosa ok, model {expected_version}, non-root, "
            "400 on bad input",
            artifacts={"ready_s": round(ready_s, 2)},
        )

    def _checks(
        self,
        ctx: StageContext,
        client: ServiceClient,
        engine: DockerEngine,
        container: str,
        expected_version: str | None,
    ) -> list[str]:
        failures = []
        answer = client.post_json("/api/v1/predict", SETOSA)
        ctx.log(f"POST /api/v1/predict {SETOSA} -> {answer.status} {answer.body}")
        label = None
        if answer.status == 200 and isinstance(answer.body, dict):
            predictions = answer.body.get("predictions") or [{}]
            label = predictions[0].get("label")
        if label != ctx.config.smoke.expected_label:
            failures.append(
                f"prediction for {SETOSA['instances'][0]} was {label!r} (HTTP {answer.status}), "
                f"expected {ctx.config.smoke.expected_label!r}"
            )

        answer = client.get("/api/v1/model")
        ctx.log(f"GET /api/v1/model -> {answer.status} {answer.body}")
        version = answer.body.get("model_version") if isinstance(answer.body, dict) else None
        if expected_version and version != expected_version:
            failures.append(f"/api/v1/model reports model {version!r}, train recorded {expected_version!r}")

        uid = engine.container_uid(container)
        ctx.log(f"container process uid {uid}")
        if uid == 0:
            failures.append("the service runs as root (uid 0)")

        answer = client.post_raw("/api/v1/predict", b'{"instances": [[1, 2', "application/json")
        ctx.log(f"POST malformed JSON -> {answer.status} {answer.body}")
        if answer.status != 400:
            failures.append(f"a malformed request got HTTP {answer.status}, expected 400")
        return failures
