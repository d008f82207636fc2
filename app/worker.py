"""The gunicorn worker the service runs: gthread, except that a connection gets a thread only once its request
headers have arrived.

gunicorn's gthread worker hands a connection to a thread as soon as its first bytes arrive, and the
thread then blocks while the rest of the request line and headers trickle in. Ten clients sending their
headers a byte at a time (slowloris, or just a bad mobile link) held every thread, and ``/health`` stopped
answering, so the container's own health check would have failed too. Here the worker's event loop reads
the headers itself, without blocking, into a buffer; the connection goes to a thread, with the bytes handed
to gunicorn's parser, only when the blank line that ends the headers is in. A connection whose headers are
not complete within ``GUNICORN_HEADER_TIMEOUT`` seconds (default 10) is closed. Kept-alive connections get
the same treatment for each new request.

It relies on the internals of the pinned gunicorn (``TConn``, the poller, ``enqueue_req``, the kept-alive and
pending queues); ``tests/app/test_gunicorn.py`` runs it under slow clients, keep-alive and SIGTERM.
"""

from __future__ import annotations

import errno
import os
import selectors
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

# The end of a request's headers; HTTP/1.1 parsers also take a bare LF (RFC 9112 section 2.2).
_HEADERS_END = (b"\r\n\r\n", b"\n\n")
# More than this without the end of the headers goes to the parser anyway, which refuses it (431/400).
_MAX_HEADER_BYTES = 64 * 1024


class HeaderFirstWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    """``worker_class = "app.worker.HeaderFirstWorker"`` in ``gunicorn.conf.py``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = float(os.environ.get("GUNICORN_HEADER_TIMEOUT", "10"))
        self.reading: deque[Any] = deque()  # connections whose headers are on their way, oldest first

    def accept(self, listener: Any) -> None:
        """A new connection: read its headers in the event loop, not in a thread."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._read_headers(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection sends its next request: same as a new one."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_headers(conn)

    def _read_headers(self, conn: Any) -> None:
        conn.sock.setblocking(False)
        conn.header_bytes = bytearray()
        conn.header_deadline = time.monotonic() + self.header_timeout
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_header_bytes, conn))

    def _on_header_bytes(self, conn: Any, client: Any) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        conn.header_bytes += data
        buffered = bytes(conn.header_bytes)
        if not any(end in buffered for end in _HEADERS_END) and len(buffered) <= _MAX_HEADER_BYTES:
            return
        self.poller.unregister(client)
        self.reading.remove(conn)
        if conn.parser is None:  # a new connection; TConn.init (in the thread) keeps this parser
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(buffered)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _drop(self, conn: Any) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        self.reading.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """gunicorn's sweep of idle connections, plus: close those whose headers are late."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading and self.reading[0].header_deadline <= now:
            conn = self.reading[0]
            self.log.debug("closing %s: no complete request headers in %gs", conn.client, self.header_timeout)
            self._drop(conn)
