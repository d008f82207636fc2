"""CI/CD for an ML service, in Python: ``python -m pipeline run --stage all``."""

__version__ = "0.1.0"
