"""``python -m pipeline``."""

import os
import sys

# First of all: the credentials out of this process's environment (/proc/PID/environ), into its memory.
from pipeline import secret_env

secret_env.reexec_without_secrets()

# Before anything heavy is imported: a SIGTERM in the first half second is an interrupt (exit 130) too.
from pipeline import interrupts  # noqa: E402  # pylint: disable=wrong-import-position

interrupts.install()

# 130 is pipeline.errors.EXIT_INTERRUPTED, not imported here: an import may be what a signal interrupts.
_INTERRUPTED = 130


def _leave(code: int) -> None:
    """Exit with ``code`` at once, stdio flushed. After a KeyboardInterrupt raised inside an import or inside
    typer and handled, CPython may still mark it "unhandled" and end the process by SIGINT (-2) whatever the
    exit code said (seen in CI, and 10 times in 60 signals at 0.08-0.27 s here): os._exit skips that last
    step. Used only once a signal has come: the run has stopped and written what it writes by then."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


try:
    secret_env.release_signals()  # a signal that came during the start-again is an interrupt from here on
    from pipeline.cli import main

    main()
except KeyboardInterrupt:  # before a command's own handling (pipeline.cli._guard) took over
    print("interrupted while starting: nothing was run", file=sys.stderr)
    _leave(_INTERRUPTED)
except SystemExit as done:
    if interrupts.received() is None:
        raise
    _leave(done.code if isinstance(done.code, int) else _INTERRUPTED)
