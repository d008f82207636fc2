"""app.access_log.AccessLogger writes the same access lines as gunicorn's own logger, for any format."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from app.access_log import AccessLogger

FORMATS = [
    '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',  # gunicorn.conf.py's
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',  # gunicorn's default
    "%(m)s %(U)s ?%(q)s %(H)s %(T)s %(D)s %(L)s %(p)s",
    "%({user-agent}i)s %({X-Missing}i)s %({content-type}o)s %({remote_addr}e)s %(nope)s",
]


def _request(uri: str = '/api/v1/predict?x="1"', sent: int | None = 150, status: object = "200 OK"):
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": uri,
        "PATH_INFO": uri.partition("?")[0],
        "QUERY_STRING": uri.partition("?")[2],
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_USER_AGENT": 'curl/8 "quoted"',
        "HTTP_REFERER": "http://example.test/",
    }
    req = SimpleNamespace(headers=[("USER-AGENT", 'curl/8 "quoted"'), ("HOST", "svc")])
    resp = SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "application/json")])
    return resp, req, environ, timedelta(seconds=1, microseconds=2345)


def _line(logger_class: type[Logger], access_format: str, request, monkeypatch: pytest.MonkeyPatch) -> str:
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", access_format)
    logger = logger_class(config)
    monkeypatch.setattr(logger, "now", lambda: "[28/Nov/2026:01:02:03 +0000]")
    lines: list[str] = []
    capture = logging.Handler()
    capture.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.access_log.handlers = [capture]
    logger.access(*request)
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("access_format", FORMATS)
@pytest.mark.parametrize(
    "request_args",
    [{}, {"sent": None}, {"sent": 0}, {"status": 404}, {"uri": "/health"}],
    ids=["post", "no-body", "empty-body", "int-status", "plain-uri"],
)
def test_same_line_as_gunicorn(
    access_format: str, request_args: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = _request(**request_args)
    ours = _line(AccessLogger, access_format, request, monkeypatch)
    assert ours == _line(Logger, access_format, request, monkeypatch)


def test_quotes_are_escaped_and_unknown_atoms_are_dashes(monkeypatch: pytest.MonkeyPatch) -> None:
    line = _line(AccessLogger, FORMATS[0] + " %(nope)s", _request(), monkeypatch)
    assert line == '10.0.0.7 "POST /api/v1/predict?x=\\"1\\" HTTP/1.1" 200 150 1002ms -'


def test_access_log_off_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config()  # no accesslog setting: gunicorn's default is off
    logger = AccessLogger(config)
    written: list[logging.LogRecord] = []
    monkeypatch.setattr(logger.access_log, "handle", written.append)
    logger.access(*_request())
    assert not written
