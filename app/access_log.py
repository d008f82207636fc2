"""gunicorn's access log at a fraction of its cost: ``logger_class = "app.access_log.AccessLogger"``.

gunicorn builds every access line from a dict of all its atoms: the request and response headers and every
WSGI environ variable, each escaped, plus a formatted timestamp, even though ``access_log_format`` names
five of them. In a profile of a worker under load that took 14 % of its Python time, a third of what the
whole Flask app took (``README.md``, "Benchmarks"). :class:`AccessLogger` hands the format a mapping that
computes an atom when the format asks for it: the request line, status, size and timings directly, anything
else (headers, environ, ``%(t)s``, ...) from gunicorn's own full set, built once per line and only if
needed. Lines are the same as gunicorn's for every format, including its escaping of ``"`` and ``-`` for
unknown atoms.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger


def _escape(value: object) -> object:
    """What gunicorn's ``SafeAtoms`` does to every string atom, so a quote in a URI cannot fake a field."""
    return value.replace('"', '\\"') if isinstance(value, str) else value


def _status(atoms: _Atoms) -> object:
    status = atoms.resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _sent(atoms: _Atoms) -> str:
    sent = getattr(atoms.resp, "sent", None)
    return str(sent) if sent is not None else "-"  # as gunicorn: "-" only when no size is known


def _request_line(atoms: _Atoms) -> str:
    environ = atoms.environ
    return f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"


def _microseconds(atoms: _Atoms) -> int:
    return atoms.request_time.seconds * 1_000_000 + atoms.request_time.microseconds


_DIRECT: dict[str, Callable[[_Atoms], object]] = {
    "h": lambda a: a.environ.get("REMOTE_ADDR", "-"),
    "r": _request_line,
    "s": _status,
    "m": lambda a: a.environ.get("REQUEST_METHOD"),
    "U": lambda a: a.environ.get("PATH_INFO"),
    "q": lambda a: a.environ.get("QUERY_STRING"),
    "H": lambda a: a.environ.get("SERVER_PROTOCOL"),
    "b": _sent,
    "T": lambda a: a.request_time.seconds,
    "D": _microseconds,
    "M": lambda a: a.request_time.seconds * 1000 + a.request_time.microseconds // 1000,
    "L": lambda a: f"{a.request_time.seconds}.{a.request_time.microseconds:06d}",
}
"""Atoms computed straight from the request, exactly as ``gunicorn.glogging.Logger.atoms`` does."""


class _Atoms(Mapping[str, object]):
    """The atoms of one access line, each computed when ``%`` formatting asks for it.

    Iterating lists the directly computed atoms only; lookups of any other key go to gunicorn's full set.
    """

    __slots__ = ("_full", "_logger", "environ", "req", "request_time", "resp")

    def __init__(
        self, logger: Logger, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> None:
        self._logger = logger
        self.resp: Any = resp
        self.req: Any = req
        self.environ: dict[str, Any] = environ
        self.request_time: timedelta = request_time
        self._full: Mapping[str, object] | None = None

    def __getitem__(self, key: str) -> object:
        direct = _DIRECT.get(key)
        if direct is not None:
            return _escape(direct(self))
        if self._full is None:
            logger = self._logger
            atoms = logger.atoms(self.resp, self.req, self.environ, self.request_time)
            self._full = logger.atoms_wrapper_class(atoms)
        return self._full[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_DIRECT)

    def __len__(self) -> int:
        return len(_DIRECT)


class AccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type information
    """gunicorn's logger; only the access line is built differently (lazily), with the same result."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        # As in gunicorn: whatever goes wrong with a log line is reported, and never fails the request.
        try:
            self.access_log.info(self.cfg.access_log_format, _Atoms(self, resp, req, environ, request_time))
        except Exception:  # pylint: disable=broad-exception-caught
            self.error(traceback.format_exc())
