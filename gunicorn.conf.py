"""gunicorn settings for the Iris service: ``gunicorn --config gunicorn.conf.py``.

Tuned for a small container (2 vCPU): one process per core, a few threads each so keep-alive connections
from a load balancer do not pin a whole process, the model loaded once in the master (``preload_app``) so a
missing model stops start-up with a clear message and exit code instead of crash-looping workers.
Environment: ``BIND`` or ``PORT`` (default 0.0.0.0:5000), ``GUNICORN_WORKERS`` (2), ``GUNICORN_THREADS`` (4),
``GUNICORN_TIMEOUT`` (30), ``GUNICORN_KEEPALIVE`` (5), ``GUNICORN_HEADER_TIMEOUT`` (10), ``LOG_LEVEL`` (info),
``PROMETHEUS_MULTIPROC_DIR``.
"""

# pylint: disable=invalid-name  # gunicorn reads these lower-case module globals by name

import gc
import logging
import os
import shutil
import sys
from pathlib import Path

wsgi_app = "app:create_app()"

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# gthread (threads + keep-alive), except that a connection gets a thread only once its headers are in: slow
# clients cannot hold the threads (app/worker.py; GUNICORN_HEADER_TIMEOUT, default 10 s, closes them).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "app.worker.HeaderFirstWorker")
preload_app = True
# One listening socket per worker (SO_REUSEPORT): the kernel spreads new connections over the workers.
# With one shared socket, whichever worker wakes first accepts a burst of keep-alive connections and keeps
# them, and under load one worker idled while the other queued: throughput swung 2x from run to run.
reuse_port = True
worker_tmp_dir = (
    "/dev/shm"  # heartbeat file in memory: a slow container disk must not look like a hung worker
)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20  # finish in-flight requests inside ECS's 30 s stopTimeout before SIGKILL
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = 0  # no periodic restarts: the model is read once and nothing leaks per request
control_socket_disable = True  # gunicorn's runtime control socket is unused; it would need a writable $HOME

accesslog = "-"
errorlog = "-"
# Same lines as gunicorn's logger, without building every header and environ variable into each one
logger_class = "app.access_log.AccessLogger"
loglevel = os.environ.get("LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'


def _reset_multiproc_dir() -> None:
    """Start multiprocess metrics from empty: files left by a previous run would be summed in.

    Runs when gunicorn reads this file, before ``preload_app`` builds the app (whose metrics write there);
    a server hook such as ``on_starting`` would run too late and delete the master's files.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        try:
            if path.is_dir():
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a --read-only container without a writable /tmp, say
            print(
                f"cannot start the service: PROMETHEUS_MULTIPROC_DIR {directory} is not writable "
                f"({exc.strerror}); give the container a writable /tmp (docker run --read-only --tmpfs /tmp, "
                "or a tmpfs volume on ECS) or point PROMETHEUS_MULTIPROC_DIR at a writable folder",
                file=sys.stderr,
            )
            sys.exit(3)


_reset_multiproc_dir()


def pre_fork(server, worker):  # pylint: disable=unused-argument
    """Move everything the master loaded (Flask, numpy, ONNX Runtime, the model) out of the garbage
    collector's reach before each fork.

    Those objects live as long as the process. Left tracked, every full collection in a worker walks all of
    them: 35-50 ms stalls of every request in flight, measured under load (benchmarks/README.md). Frozen,
    a full collection only walks what requests allocate, and the pages stay shared with the master.
    """
    gc.freeze()


def worker_exit(server, worker):  # pylint: disable=unused-argument
    """End the worker with ``os._exit`` once gunicorn is done with it.

    ONNX Runtime, imported in the master by ``preload_app`` and used in the forked worker, hangs or aborts
    in its C++ static destructors during normal interpreter shutdown of a forked process. That turned every
    SIGTERM into a ``graceful_timeout`` wait and a SIGKILL. This hook is the last thing gunicorn runs in the
    worker, so skipping finalization loses nothing once the logs are flushed.
    """
    exiting = sys.exc_info()[1]
    code = exiting.code if isinstance(exiting, SystemExit) else 0
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code if isinstance(code, int) else 1)


def child_exit(server, worker):  # pylint: disable=unused-argument
    """Drop an exited worker's live gauges from the multiprocess metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
