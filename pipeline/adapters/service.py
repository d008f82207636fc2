"""Talking to the running service over HTTP: wait for ``/ready``, then ask it questions.

The smoke stage and the local deploy target both start a container and must know when it is ready,
or that it died trying; this module is that one loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from pipeline.errors import Interrupted, ServiceBusy, StageFailed


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class ServiceClient:
    """A client for one base URL such as ``http://127.0.0.1:8000``."""

    def __init__(self, base_url: str, timeout_s: float = 5.0, *, trust_env: bool = False) -> None:
        """``trust_env``: use HTTP(S)_PROXY and NO_PROXY. Off by default: a container of the local engine
        must never be probed through a proxy a CI machine sets for the outside world (it would not know a
        bridge address); on for a public URL such as a load balancer's."""
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.trust_env = trust_env

    def get(self, path: str) -> Answer:
        """``GET path``; :class:`ServiceBusy` when no HTTP answer comes (refused, reset, timed out)."""
        return self._send("GET", path)

    def post_json(self, path: str, body: Any) -> Answer:
        return self._send("POST", path, json=body)

    def post_raw(self, path: str, data: bytes, content_type: str) -> Answer:
        return self._send("POST", path, data=data, headers={"Content-Type": content_type})

    def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            response = self._session.request(method, self.base_url + path, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise ServiceBusy(
                f"{method} {self.base_url}{path} got no answer ({type(exc).__name__})",
                hint="is the service running and reachable from here?",
            ) from None
        return self._answer(response)

    @staticmethod
    def _answer(response: requests.Response) -> Answer:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body)

    def wait_ready(
        self,
        timeout_s: float,
        *,
        alive: Callable[[], str | None] | None = None,
        cancel: threading.Event | None = None,
        interval_s: float = 0.25,
    ) -> float:
        """Poll ``/ready`` until it answers 200; return the seconds it took.

        ``alive`` returns ``None`` while the process behind the URL lives, or why it stopped; a dead
        service fails at once instead of after the whole timeout.
        """
        started = time.monotonic()
        last = "no answer yet"
        while time.monotonic() - started < timeout_s:
            if cancel is not None and cancel.is_set():
                raise Interrupted("stopped while waiting for /ready")
            if alive is not None:
                died = alive()
                if died:
                    raise StageFailed(f"the service stopped before it was ready: {died}")
            try:
                answer = self.get("/ready")
                if answer.status == 200:
                    return time.monotonic() - started
                last = f"/ready answered {answer.status}"
            except ServiceBusy as exc:
                last = exc.message
            time.sleep(interval_s)
        raise StageFailed(f"{self.base_url}/ready did not answer 200 within {timeout_s:g} s ({last})")

    def wait_model(
        self,
        version: str | None,
        timeout_s: float,
        *,
        cancel: threading.Event | None = None,
        interval_s: float = 2.0,
    ) -> float:
        """Poll ``/api/v1/model`` until it reports model ``version`` (any model when None); the seconds
        it took. A load balancer may still route to the old tasks for a while, hence the polling."""
        started = time.monotonic()
        last = "no answer yet"
        while True:
            try:
                answer = self.get("/api/v1/model")
                reported = answer.body.get("model_version") if isinstance(answer.body, dict) else None
                if answer.status == 200 and (version is None or reported == version):
                    return time.monotonic() - started
                last = f"it answered {answer.status} with model {reported!r}"
            except ServiceBusy as exc:
                last = exc.message
            if time.monotonic() - started >= timeout_s:
                want = f"model {version}" if version else "a model"
                raise StageFailed(
                    f"{self.base_url}/api/v1/model did not report {want} within {timeout_s:g} s ({last})"
                )
            if cancel is not None and cancel.wait(interval_s):
                raise Interrupted("stopped while asking the service for its model")
            if cancel is None:
                time.sleep(interval_s)
