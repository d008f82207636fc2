"""Credentials out of the process environment, where every process below the pipeline could read them.

Linux shows each process's environment *as it was started* in ``/proc/PID/environ``, readable by any process
of the same user: ``del os.environ[...]`` (``unsetenv``) changes the C ``environ`` but not that block. So
a test the pipeline runs, though it gets only the tool allowlist (``tool_env.tool_environment``), could still
read ``REGISTRY_PASSWORD`` from its parent's ``/proc/PPID/environ``. Hence :func:`reexec_without_secrets`,
the first thing ``python -m pipeline`` does: when its environment holds a credential, it starts itself
again (``execve``: same process, same arguments) with an environment without them, and hands them over
through a pipe that the new program reads, and closes, before it imports anything else. The credentials
then live in the pipeline's memory only (:func:`held`), which ``cli`` hands to ``config.load`` with the
environment.

What counts as a credential (:func:`is_secret_name`): the variables of ``CREDENTIAL_VARIABLES``, and any
name that looks like one (``...PASSWORD``, ``...TOKEN``, ``...SECRET...``, ``..._KEY``), except names of a
file or a socket (``..._FILE``, ``SSH_AUTH_SOCK``): a path is not a secret, and boto3 needs
``AWS_WEB_IDENTITY_TOKEN_FILE`` where it is.

Kept light: it runs before anything else is imported.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Mapping

# The registry secrets (config.SECRET_ENV) and AWS's standard credential variables.
CREDENTIAL_VARIABLES = frozenset(
    (
        "REGISTRY_USERNAME",
        "DOCKERHUB_USERNAME",
        "REGISTRY_PASSWORD",
        "DOCKERHUB_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    )
)
CREDENTIAL_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY(_|$)|AUTH", re.I)
# Paths and addresses are not secrets: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI (an ECS task
# role's or EKS Pod Identity's credential endpoint) stay where botocore's ContainerProvider looks for them.
_NOT_SECRET = re.compile(r"_(FILE|PATH|DIR|SOCK|URI)$|^XAUTHORITY$", re.I)
# The variable that tells the started-again program which descriptor holds its credentials.
FD_VARIABLE = "PIPELINE_SECRETS_FD"
# A pipe holds 64 KiB on Linux before a write blocks (pipe(7)); 16 KiB is safe everywhere.
_PIPE_ROOM = 16 * 1024
_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_HELD: dict[str, str] = {}
_BLOCKED: list[bool] = []


def is_secret_name(name: str) -> bool:
    """Is the variable ``name`` a credential (kept out of every process the pipeline starts)?"""
    if name in CREDENTIAL_VARIABLES:
        return True
    return bool(CREDENTIAL_NAME.search(name)) and not _NOT_SECRET.search(name)


def held() -> dict[str, str]:
    """The credentials this process took out of its environment when it started."""
    return dict(_HELD)


def without_secrets(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ``os.environ``) without the variables :func:`is_secret_name` calls credentials: the
    environment of every process the pipeline starts without an environment of its own (Trivy, git), since
    this process's ``os.environ`` holds the ``AWS_*`` credentials botocore reads (``_take_over``)."""
    source = os.environ if env is None else env
    return {name: value for name, value in source.items() if not is_secret_name(name)}


def environ() -> dict[str, str]:
    """The environment the pipeline started with: ``os.environ`` and the credentials it took out of it."""
    return {**os.environ, **_HELD}


def reexec_without_secrets(env: Mapping[str, str] | None = None) -> None:
    """Start this program again without the credentials in its environment (see the module's text).

    In the started-again program, takes the credentials from the pipe instead. SIGINT and SIGTERM are
    blocked across the ``execve`` (a blocked signal stays pending through it): :func:`release_signals`,
    once ``interrupts`` has its handlers, lets them in, so an early Ctrl-C is still exit 130.
    """
    env = os.environ if env is None else env
    if FD_VARIABLE in env:
        _take_over(env[FD_VARIABLE])
        return
    secrets = {name: value for name, value in env.items() if is_secret_name(name)}
    if not secrets or os.name != "posix":
        return
    payload = json.dumps(secrets).encode("utf-8")
    if len(payload) > _PIPE_ROOM:  # would block the write: stay as we are rather than hang
        sys.stderr.write("pipeline: warning: credentials too large to hand over; they stay in the environ\n")
        return
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    clean = {name: value for name, value in env.items() if name not in secrets}
    clean[FD_VARIABLE] = str(read_end)
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, clean)
    except OSError as exc:  # the interpreter vanished: go on as we are
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        os.close(read_end)
        sys.stderr.write(f"pipeline: warning: cannot start again without the credentials: {exc}\n")


def _take_over(fd_text: str) -> None:
    os.environ.pop(FD_VARIABLE, None)
    _BLOCKED.append(True)  # by the program before the start-again
    try:
        fd = int(fd_text)
        with os.fdopen(fd, "rb") as pipe:
            data = json.loads(pipe.read().decode("utf-8"))
    except (ValueError, OSError):
        return  # not ours (a variable set by hand): nothing to take
    if isinstance(data, dict):
        _HELD.update({str(k): str(v) for k, v in data.items()})
    # botocore reads its environment-based credentials from os.environ in this process, not only from the
    # client's arguments: AWS_CONTAINER_AUTHORIZATION_TOKEN (ContainerProvider, botocore 1.44
    # credentials.py), AWS_SESSION_TOKEN, AWS_PROFILE's keys. Setting them here changes this process's C
    # environ, not the block /proc/PID/environ shows (fixed at execve). The tools the stages run get
    # tool_env.tool_environment's allowlist, which names no credential, and every other process the pipeline
    # starts gets without_secrets() (adapters/process.py, adapters/git.py).
    for name, value in _HELD.items():
        if name.startswith("AWS_"):
            os.environ[name] = value


def release_signals() -> None:
    """Let in SIGINT and SIGTERM, blocked across the start-again (a no-op when there was none)."""
    if _BLOCKED:
        _BLOCKED.clear()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
