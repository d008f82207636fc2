"""``python -m model_training``: see :mod:`model_training.cli`."""

import sys

from model_training.cli import main

sys.exit(main())
