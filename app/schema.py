"""The service's input contract: four named measurements in centimetres, each 0 < x <= 100.

The bounds are deliberately wide (an iris is never a metre long, but a typo should be rejected, not
extrapolated far beyond anything the forest could mean); validation, the form and OpenAPI all read them here.
"""

from __future__ import annotations

FEATURES: tuple[tuple[str, str], ...] = (
    ("sepal_length", "Sepal length"),
    ("sepal_width", "Sepal width"),
    ("petal_length", "Petal length"),
    ("petal_width", "Petal width"),
)
"""(name, label) in the model's input column order."""

FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)
UNIT = "cm"
MIN_EXCLUSIVE = 0.0
MAXIMUM = 100.0
