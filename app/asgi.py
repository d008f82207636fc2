"""The Flask app behind granian's ASGI interface: the request body is read on the event loop, under a deadline
and a minimum rate, before the request takes one of the worker's threads.

Why not granian's WSGI interface (granian 2.8.7, the version in ``requirements/``): it hands a request to a
Python thread as soon as its headers are in (``src/wsgi/callbacks.rs``, ``call_http``: ``spawn_blocking``
with the body still unread), and ``wsgi.input.read()`` then blocks that thread in Rust (``src/wsgi/types.rs``,
``WSGIBody::read``/``fill_buffer``: ``block_on`` until the bytes are there), with no timeout: granian's only
read timeout is ``HTTP1Settings.header_read_timeout`` (``granian/http.py``), and a body timeout was declined
upstream (emmett-framework/granian#728, "No slow body read timeout", closed as wontfix). A client that sends
``Content-Length: 100000`` and then a byte a second held a thread for a day: 8 of them (2 workers x 4 threads)
stopped ``/health``. A Python guard inside WSGI cannot help: it runs on the very thread that is held.

Here the body is awaited on the event loop, where a slow one costs a coroutine, not a thread:

- it must be complete within ``timeout_s`` plus one second for every ``min_rate`` bytes received (Apache
  ``mod_reqtimeout``'s ``body=10,MinRate=500``); later, the client gets a 408 and the connection is closed;
- a declared ``Content-Length`` over ``max_size`` is not read at all, and a body without one is read up to
  ``max_size`` plus one byte: the app answers 413 from what it gets, and the rest is never read (granian
  closes a connection whose body was not read to its end);
- the app then runs on one of ``threads`` threads with the whole body in memory (``wsgi.input`` is a
  ``BytesIO``), and its response, built whole there, is sent from the loop. No route streams.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TIMEOUT_BODY = json.dumps(
    {
        "error": {
            "code": "request_timeout",
            "message": "the request body did not arrive in time",
            "details": None,
        }
    }
).encode()


@dataclass(frozen=True)
class BodyLimits:
    """How long a request body may take, and how much of it is read."""

    timeout_s: float = 10.0
    min_rate: int = 500
    """Bytes a second: each ``min_rate`` bytes received give the body one more second."""
    max_size: int = 1024 * 1024


class _TooSlow(Exception):
    pass


class _Gone(Exception):
    pass


class BufferedWSGI:
    """An ASGI app that reads the whole body first (see the module docstring), then calls ``wsgi_app``."""

    def __init__(self, wsgi_app: WSGIApp, limits: BodyLimits, threads: int) -> None:
        self.wsgi_app = wsgi_app
        self.limits = limits
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0

    def _pool(self) -> ThreadPoolExecutor:
        # Made in the worker on its first request: threads do not survive the fork that makes a worker.
        if self._executor is None or self._pid != os.getpid():
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="app")
            self._pid = os.getpid()
        return self._executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        declared = next((v for k, v in headers if k == "content-length"), None)
        try:
            body = await self._read_body(receive, declared)
        except _Gone:
            return
        except _TooSlow:
            await send(
                {
                    "type": "http.response.start",
                    "status": 408,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_TIMEOUT_BODY)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _TIMEOUT_BODY})
            return
        environ = _environ(scope, headers, body)
        loop = asyncio.get_running_loop()
        status, response_headers, content = await loop.run_in_executor(self._pool(), self._call, environ)
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})

    async def _read_body(self, receive: Receive, declared: str | None) -> bytes:
        limits = self.limits
        if declared is not None and (not declared.isdigit() or int(declared) > limits.max_size):
            return b""  # the app refuses it from CONTENT_LENGTH alone (413), or hyper already did (400)
        if declared == "0":
            return b""
        loop = asyncio.get_running_loop()
        started = loop.time()
        parts: list[bytes] = []
        received = 0
        while True:
            left = started + limits.timeout_s + received / limits.min_rate - loop.time()
            if left <= 0:
                raise _TooSlow
            try:
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            parts.append(chunk)
            received += len(chunk)
            if received > limits.max_size or not message.get("more_body", False):
                return b"".join(parts)

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], _exc_info: Any = None) -> None:
            started.update(status=status, headers=headers)

        result = self.wsgi_app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return (
            int(started["status"].split(" ", 1)[0]),
            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in started["headers"]],
            content,
        )


def _environ(scope: Scope, headers: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """The WSGI environment (PEP 3333) of an ASGI HTTP request whose body has been read."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            joined = (
                environ[key] + (";" if key == "HTTP_COOKIE" else ",") + value if key in environ else value
            )
            environ[key] = joined
    return environ
