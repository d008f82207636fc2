"""``python -m pipeline``."""

import sys

# Before anything heavy is imported: a SIGTERM in the first half second is an interrupt (exit 130) too.
from pipeline import interrupts

interrupts.install()

try:
    from pipeline.cli import main
except KeyboardInterrupt:
    print("interrupted while starting: nothing was run", file=sys.stderr)
    sys.exit(130)  # pipeline.errors.EXIT_INTERRUPTED, not imported: an import is what was interrupted

main()
