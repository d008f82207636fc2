"""The production server: ``python -m app.serve`` runs ``create_app()`` on granian.

granian's HTTP layer is Rust (hyper on tokio): request headers are read there, so a slow client holds no
Python thread, and it uses less worker CPU per prediction than gunicorn in the project's benchmark (README,
"Benchmarks"). The app is served through granian's RSGI interface by ``app/rsgi.py``, which reads the request
body on the worker's event loop (uvloop) under a deadline, and only then runs Flask: on granian's WSGI
interface a body that trickles in holds a thread, with no timeout (``app/rsgi.py`` has the source). This
module is the server's whole configuration:

- the app (and the model) is built once here, in the main process, before the workers are forked. A missing
  model stops start-up with one clear line and exit 1 instead of crash-looping workers, and the workers share
  the loaded pages (``gc.freeze()`` keeps the collector from touching, and so copying, them);
- ``PROMETHEUS_MULTIPROC_DIR`` is emptied first, so a restart does not add up a previous run's files (exit 3
  with one line when it cannot be written: a ``--read-only`` container without a writable ``/tmp``);
- SIGTERM (what ECS sends) stops accepting, lets in-flight requests finish, and kills a worker still busy
  after ``SERVER_GRACEFUL_TIMEOUT``, inside ECS's 30 s ``stopTimeout``; a worker that dies is replaced.

Environment: ``BIND`` (host:port) or ``PORT`` (default 0.0.0.0:5000), ``SERVER_WORKERS`` (2, one per core),
``SERVER_HEADER_TIMEOUT`` (10 s to send the request headers, also the idle keep-alive limit),
``SERVER_BODY_TIMEOUT`` (10 s to send the request body, after the headers) and ``SERVER_BODY_MIN_RATE`` (500:
each 500 bytes received give the body one more second; later, a 408 and the connection is closed),
``SERVER_GRACEFUL_TIMEOUT`` (20 s), ``LOG_LEVEL`` (info), and the app's own
(``MODEL_DIR``, ``PROMETHEUS_MULTIPROC_DIR``, ... in ``app/config.py``). A bad value exits 2 naming it.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

EXIT_CONFIG = 2
EXIT_ENVIRONMENT = 3

_LEVELS = ("critical", "error", "warning", "info", "debug")
_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "generic": {"format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"},
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # One line per request on stdout (app/rsgi.py): client, request line without the query string, status,
        # duration: 127.0.0.1 "POST /api/v1/predict HTTP/1.1" 200 0.84ms
        "app.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


class ServerConfigError(ValueError):
    """A server setting in the environment that cannot be used."""


@dataclass(frozen=True)
class ServerSettings:
    """How the server listens, how many workers serve, and how long a client may take."""

    host: str = "0.0.0.0"
    port: int = 5000
    workers: int = 2
    header_timeout_s: int = 10
    body_timeout_s: int = 10
    body_min_rate: int = 500
    graceful_timeout_s: int = 20
    log_level: str = "info"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServerSettings:
        """Read and check every setting; :class:`ServerConfigError` names the first bad one."""
        bind = environ.get("BIND") or f"0.0.0.0:{environ.get('PORT', '5000')}"
        host, sep, port = bind.rpartition(":")
        if not sep or not host:
            raise ServerConfigError(f"BIND must be HOST:PORT, not {bind!r}")
        log_level = environ.get("LOG_LEVEL", "info").lower()
        if log_level not in _LEVELS:
            raise ServerConfigError(f"LOG_LEVEL must be one of {', '.join(_LEVELS)}, not {log_level!r}")
        return cls(
            host=host.strip("[]"),
            port=_whole("port of BIND/PORT", port, 0, 65535),
            workers=_whole("SERVER_WORKERS", environ.get("SERVER_WORKERS", "2"), 1, 64),
            header_timeout_s=_whole(
                "SERVER_HEADER_TIMEOUT", environ.get("SERVER_HEADER_TIMEOUT", "10"), 1, 3600
            ),
            body_timeout_s=_whole("SERVER_BODY_TIMEOUT", environ.get("SERVER_BODY_TIMEOUT", "10"), 1, 3600),
            body_min_rate=_whole(
                "SERVER_BODY_MIN_RATE", environ.get("SERVER_BODY_MIN_RATE", "500"), 1, 1024 * 1024 * 1024
            ),
            graceful_timeout_s=_whole(
                "SERVER_GRACEFUL_TIMEOUT", environ.get("SERVER_GRACEFUL_TIMEOUT", "20"), 1, 3600
            ),
            log_level=log_level,
        )


def _whole(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ServerConfigError(f"{name} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise ServerConfigError(f"{name} must be between {low} and {high}, not {value}")
    return value


def reset_metrics_dir(directory: str | None) -> None:
    """Start multiprocess metrics from empty: files left by a previous run would be summed in.

    Raises :class:`OSError` when the folder cannot be made.
    """
    if not directory:
        return
    path = Path(directory)
    if path.is_dir():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def _fail(code: int, message: str) -> int:
    print(f"cannot start the service: {message}", file=sys.stderr)
    return code


def main() -> int:
    """Check the settings, build the app, serve until SIGTERM or SIGINT; the exit code."""
    environ = os.environ
    try:
        settings = ServerSettings.from_environ(environ)
    except ServerConfigError as exc:
        return _fail(EXIT_CONFIG, str(exc))
    metrics_dir = environ.get("PROMETHEUS_MULTIPROC_DIR")
    try:
        reset_metrics_dir(metrics_dir)
    except OSError as exc:
        return _fail(
            EXIT_ENVIRONMENT,
            f"PROMETHEUS_MULTIPROC_DIR {metrics_dir} is not writable ({exc.strerror}); give the container a "
            "writable /tmp (docker run --read-only --tmpfs /tmp, or a tmpfs volume on ECS) or point "
            "PROMETHEUS_MULTIPROC_DIR at a writable folder",
        )

    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    server = Granian(  # configures logging (ours: _LOGGING), so the app's messages below are formatted
        "app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI,  # the body is read on the event loop (app/rsgi.py says why)
        loop=Loops.uvloop,
        workers=settings.workers,
        # 64 KiB for the request line and headers (431 above; granian's default allows about 0.5 MB)
        http1_settings=HTTP1Settings(
            header_read_timeout=settings.header_timeout_s * 1000, max_buffer_size=65536
        ),
        log_level=LogLevels(settings.log_level),
        log_dictconfig=_LOGGING,
        # The access log is app/rsgi.py's own: granian's RSGI one cost a quarter of the throughput
        log_access=False,
        workers_kill_timeout=settings.graceful_timeout_s,
        respawn_failed_workers=True,
        websockets=False,
    )
    logging.getLogger().setLevel(settings.log_level.upper())

    from app import ModelLoadError, create_app
    from app.config import load_settings
    from app.rsgi import BodyLimits, BufferedWSGI

    try:
        app_settings = load_settings()  # the app's own (MAX_BATCH_ROWS, ...): a bad one is a line
    except ValueError as exc:
        return _fail(EXIT_CONFIG, str(exc))
    if "SERVER_THREADS" in environ:
        logging.getLogger(__name__).warning(
            "SERVER_THREADS is no longer used: requests run on each worker's event loop (app/rsgi.py); "
            "set SERVER_WORKERS for more parallelism"
        )
    try:
        flask_app = create_app()
    except ModelLoadError:
        return 1  # create_app logged why, in one line
    limits = BodyLimits(settings.body_timeout_s, settings.body_min_rate, app_settings.max_content_length)
    app = BufferedWSGI(flask_app, limits)
    # Everything loaded so far (Flask, numpy, ONNX Runtime, the model) lives as long as the process. Frozen, a
    # worker's full collections walk only what requests allocate (no 35-50 ms stalls; benchmarks/README.md),
    # and the pages stay shared with this process.
    gc.freeze()
    # The workers must be forks of this process to inherit the built app: granian starts them with
    # multiprocessing's default method, which is not "fork" everywhere (Python 3.14 changed it on Linux).
    multiprocessing.set_start_method("fork", force=True)
    server.serve(target_loader=lambda: app, wrap_loader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
