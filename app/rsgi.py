"""The Flask app behind granian's RSGI interface: the request body is read on the worker's event loop, under a
deadline and a minimum rate, before the app runs.

Why not granian's WSGI interface (granian 2.8.7, the version in ``requirements/``): it hands a request to a
Python thread as soon as its headers are in (``src/wsgi/callbacks.rs``, ``call_http``: ``spawn_blocking``
with the body still unread), and ``wsgi.input.read()`` then blocks that thread in Rust (``src/wsgi/types.rs``,
``WSGIBody::read``/``fill_buffer``: ``block_on`` until the bytes are there), with no timeout: granian's only
read timeout is ``HTTP1Settings.header_read_timeout`` (``granian/http.py``), and a body timeout was declined
upstream (emmett-framework/granian#728, "No slow body read timeout", closed as wontfix). A client that sends
``Content-Length: 100000`` and then a byte a second held a thread for a day: 8 of them (2 workers x 4 threads)
stopped ``/health``. A Python guard inside WSGI cannot help: it runs on the very thread that is held.

RSGI is granian's own interface (its spec: ``docs/spec/RSGI.md`` in emmett-framework/granian): the app is a
coroutine on the worker's event loop, and the body is awaited there, where a slow one costs a suspended
coroutine, not a thread. ASGI would do the same, but costs about a fifth more CPU per request than RSGI in
``benchmarks/bench_service.py`` (README, "Benchmarks"). Here:

- the body must be complete within ``timeout_s`` plus one second for every ``min_rate`` bytes received
  (Apache ``mod_reqtimeout``'s ``body=10,MinRate=500``); later, the client gets a 408 and the connection is
  closed. A declared body up to :data:`SMALL_BODY` bytes (a prediction's) is read whole, with the seconds its
  size gives granted up front: reading it chunk by chunk in Python cost a seventh of the throughput;
- a declared ``Content-Length`` over ``max_size`` is not read at all, and a chunked body is read up to
  ``max_size`` plus one byte: the app answers 413 from what it gets, and the rest is never read (granian then
  closes the connection);
- a request with neither ``Content-Length`` nor ``Transfer-Encoding`` has no body (RFC 9112, 6.3) and is not
  read;
- the app then runs on the loop itself with the whole body in memory (``wsgi.input`` is a ``BytesIO``), and
  its response, built whole, is sent. No route streams or waits on I/O: a prediction is microseconds of CPU
  (and Python runs one thread at a time anyway), so a thread pool would only add a hand-off per request;
- the access log line is written here (logger ``app.access``), not by granian: granian's RSGI access log
  wraps every request's protocol object and coroutine in Python and formats a date it does not print, which
  cost a quarter of the throughput in ``benchmarks/bench_service.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]

_TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "code": "request_timeout",
            "message": "the request body did not arrive in time",
            "details": None,
        }
    }
).encode()
_TIMEOUT_HEADERS = [
    ("content-type", "application/json"),
    ("content-length", str(len(_TIMEOUT_BODY))),
    ("connection", "close"),
]


class Scope(Protocol):  # pylint: disable=too-few-public-methods
    """What this module reads of an RSGI HTTP scope (granian's ``rsgi.Scope``)."""

    proto: str
    http_version: str
    server: str
    client: str
    scheme: str
    method: str
    path: str
    query_string: str
    headers: Any
    """``RSGIHeaders``: ``items()`` (every pair, lower-case names) and ``get(name)``."""


class HTTPProtocol(Protocol):
    """What this module uses of granian's ``RSGIHTTPProtocol``."""

    async def __call__(self) -> bytes: ...

    def __aiter__(self) -> Any: ...

    def response_bytes(self, status: int, headers: Headers, body: bytes) -> None: ...


SMALL_BODY = 4096
"""Bytes: a declared body up to this size is read whole, with its deadline set up front (``timeout_s`` plus
its size at ``min_rate``, at most 8 s more); a larger one chunk by chunk, each chunk adding its second."""
_ACCESS = logging.getLogger("app.access")


@dataclass(frozen=True)
class BodyLimits:
    """How long a request body may take, and how much of it is read."""

    timeout_s: float = 10.0
    min_rate: int = 500
    """Bytes a second: each ``min_rate`` bytes received give the body one more second."""
    max_size: int = 1024 * 1024


class _Reading:  # pylint: disable=too-few-public-methods
    """One body being read: when it started, how much has come, and whether its time ran out."""

    __slots__ = ("expired", "received", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.received = 0
        self.expired = False


class _Watchdog:
    """The bodies being read in one worker, and one timer that stops those past their deadline.

    One timer a worker, every ``SWEEP_S`` while a body is being read, rather than one a request: a timer per
    request (``asyncio.timeout``, rescheduled at each chunk) cost about a third of the service's throughput in
    ``benchmarks/bench_service.py``. A body is stopped at most ``SWEEP_S`` after its deadline.
    """

    SWEEP_S = 0.5

    def __init__(self, limits: BodyLimits) -> None:
        self.limits = limits
        self.reading: dict[asyncio.Task[Any], _Reading] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> _Reading:
        """Start the clock of ``task``'s body; :meth:`sweep` cancels ``task`` once it is late."""
        reading = _Reading(loop.time())
        self.reading[task] = reading
        if self._timer is None:
            self._timer = loop.call_later(self.SWEEP_S, self.sweep, loop)
        return reading

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel every read past ``timeout_s`` plus a second for each ``min_rate`` bytes it received."""
        now = loop.time()
        timeout_s, min_rate = self.limits.timeout_s, self.limits.min_rate
        for task, reading in list(self.reading.items()):
            if not reading.expired and now >= reading.started + timeout_s + reading.received / min_rate:
                reading.expired = True
                task.cancel()
        self._timer = loop.call_later(self.SWEEP_S, self.sweep, loop) if self.reading else None


class BufferedWSGI:
    """An RSGI app that reads the whole body first (see the module docstring), then calls ``wsgi_app``."""

    def __init__(self, wsgi_app: WSGIApp, limits: BodyLimits, *, access_log: bool = True) -> None:
        self.wsgi_app = wsgi_app
        self.limits = limits
        self.access_log = access_log
        self._watchdog = _Watchdog(limits)  # made before the fork; each worker's copy starts empty

    async def __call__(self, scope: Scope, proto: HTTPProtocol) -> None:
        """Serve one request: the RSGI application callable (granian calls it; websockets are off)."""
        if scope.proto != "http":
            return
        started = time.perf_counter()
        body = await self._read_body(scope.headers, proto)
        if body is None:
            status = 408
            proto.response_bytes(status, _TIMEOUT_HEADERS, _TIMEOUT_BODY)
        else:
            status, headers, content = self._call(_environ(scope, body))
            proto.response_bytes(status, headers, content)
        if self.access_log:
            _ACCESS.info(
                '%s "%s %s HTTP/%s" %d %.2fms',
                scope.client.rpartition(":")[0],
                scope.method,
                scope.path,
                scope.http_version,
                status,
                (time.perf_counter() - started) * 1000,
            )

    async def _read_body(self, headers: Any, proto: HTTPProtocol) -> bytes | None:
        """The body (``b""`` when there is none to read), or None when it did not arrive in time."""
        limits = self.limits
        declared = headers.get("content-length")
        if declared is None:
            if headers.get("transfer-encoding") is None:
                return b""
        elif not declared.isdigit() or int(declared) > limits.max_size:
            return b""  # the app refuses it from CONTENT_LENGTH alone (413), or hyper already did (400)
        elif declared == "0":
            return b""
        task = asyncio.current_task()
        assert task is not None  # granian runs each request as a task
        reading = self._watchdog.watch(task, asyncio.get_running_loop())
        parts: list[bytes] = []
        try:
            if declared is not None and int(declared) <= SMALL_BODY:
                # Read whole, with the second a min_rate bytes give granted up front: no loop in Python
                reading.received = int(declared)
                return await proto()
            async for chunk in proto:
                parts.append(chunk)
                reading.received += len(chunk)
                if reading.received > limits.max_size:
                    break
        except asyncio.CancelledError:
            if not reading.expired:
                raise  # not ours: the worker is stopping
            task.uncancel()
            return None
        finally:
            del self._watchdog.reading[task]
        return b"".join(parts)

    def _call(self, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
        started: list[Any] = []

        def start_response(status: str, headers: Headers, _exc_info: Any = None) -> None:
            started[:] = (status, headers)

        result = self.wsgi_app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(started[0][:3]), started[1], content


def _environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environment (PEP 3333) of an RSGI HTTP request whose body has been read."""
    server_name, _, server_port = scope.server.rpartition(":")
    client_addr, _, client_port = scope.client.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": client_addr,
        "REMOTE_PORT": client_port,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            # a repeated header is one value, joined as RFC 9110 5.3 says (cookies by "; ")
            environ[key] = (
                environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value if key in environ else value
            )
    return environ
