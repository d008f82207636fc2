"""All request validation in one place: JSON bodies for the API, form fields for the web page.

Rules (docs/api.md, "Predictions"): a feature value is a JSON number (not a boolean, not a numeric
string), finite, and 0 < x <= 100 (cm). An instance is either an object with exactly the four feature
names or a list of four numbers in feature order. A batch is a non-empty ``instances`` list of at most
``MAX_BATCH_ROWS`` rows. Form fields are strings by nature and parse as decimal numbers under the same
range rule.

Errors never echo client values back (only short, truncated field names), so no input can make the error
path itself expensive or fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import BinaryIO

import numpy as np
from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import InvalidJson, TooManyRows, UnsupportedMediaType, ValidationFailed
from app.schema import FEATURE_NAMES, MAXIMUM, MIN_EXCLUSIVE, UNIT

MAX_REPORTED_ERRORS = 20
_FEATURE_COUNT = len(FEATURE_NAMES)
_NUMBER_TYPES = (int, float)  # exact types: bool is a subclass of int and must not count as a number
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")  # ASCII only
_MAX_FORM_VALUE_LENGTH = 64
RANGE_MESSAGE = f"must be greater than {MIN_EXCLUSIVE:g} and at most {MAXIMUM:g} ({UNIT})"
# The model computes in float32: below its smallest positive value a measurement would become 0.
FLOAT32_SMALLEST = float(np.nextafter(np.float32(0), np.float32(1)))
TINY_MESSAGE = (
    f"is too small: the model computes in float32, where it would be 0 (the least is {FLOAT32_SMALLEST:g})"
)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object whose keys are all different: ``{"a": 1, "a": 2}`` is ambiguous, not "the last one wins"."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {_short(key)!r} in an object")
            seen.add(key)
    return found


_JSON = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
"""One decoder for every request: ``json.loads`` with any keyword argument builds a new one per call."""


def json_body(request: Request) -> object:
    """The parsed JSON body of ``request``; 415 unless it is ``application/json``, 400 unless strict JSON,
    413 over ``MAX_CONTENT_LENGTH``.

    The hot path of every prediction, so it reads the WSGI environment directly: the media type is the
    Content-Type up to its first ``;`` (werkzeug's full header parser costs more than the model), and a body
    with a Content-Length is read in one call. A chunked body (no Content-Length; the server marks its end
    with ``wsgi.input_terminated``) is read up to the limit plus one byte, so an oversized one is a 413 too
    (werkzeug would cut it at the limit and answer 400 for the broken JSON).
    """
    environ = request.environ
    mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if mimetype != "application/json":
        raise UnsupportedMediaType(
            "send the request body as JSON with 'Content-Type: application/json'",
            details={"content_type": mimetype or None},
        )
    length, limit = environ.get("CONTENT_LENGTH", ""), request.max_content_length
    if length.isdigit():
        size = int(length)
        if limit is not None and size > limit:
            raise RequestEntityTooLarge()
        return loads_strict(environ["wsgi.input"].read(size) if size else b"")
    if not environ.get("wsgi.input_terminated"):
        return loads_strict(b"")  # no length and no end marker: WSGI allows no read at all
    return loads_strict(_read_to_end(environ["wsgi.input"], limit))


def _read_to_end(stream: BinaryIO, limit: int | None) -> bytes:
    """Read a terminated stream to its end; 413 as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    while chunk := stream.read(65536):
        total += len(chunk)
        if limit is not None and total > limit:
            raise RequestEntityTooLarge()
        parts.append(chunk)
    return b"".join(parts)


def loads_strict(raw: bytes) -> object:
    """Parse UTF-8 JSON, refusing the NaN/Infinity extensions Python's json module accepts by default."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("request body is not valid UTF-8") from None
    try:
        return _JSON.decode(text)
    except RecursionError:
        raise InvalidJson("request body nests JSON too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers too long to convert
        raise InvalidJson(f"request body is not valid JSON: {str(exc)[:200]}") from None


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 40 else text[:37] + "..."


def value_problem(value: object) -> str | None:
    """Why ``value`` is not an acceptable feature value, or None when it is."""
    if type(value) not in _NUMBER_TYPES:  # pylint: disable=unidiomatic-typecheck
        return "must be a number"
    if FLOAT32_SMALLEST <= value <= MAXIMUM:  # type: ignore[operator]
        return None
    if MIN_EXCLUSIVE < value < FLOAT32_SMALLEST:  # type: ignore[operator]
        return TINY_MESSAGE
    if isinstance(value, float) and not np.isfinite(value):
        return "must be a finite number"
    return RANGE_MESSAGE


class _Problems:
    """Collects per-location problems, keeping the first few so a huge bad batch stays a small answer."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []
        self.count = 0

    def add(self, location: str, message: str) -> None:
        """Record one problem at ``location``."""
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append({"location": location, "message": message})

    def raise_if_any(self, summary: str) -> None:
        """Raise :class:`ValidationFailed` listing the problems, if there were any."""
        if self.count:
            more = f" (showing the first {MAX_REPORTED_ERRORS})" if self.count > MAX_REPORTED_ERRORS else ""
            raise ValidationFailed(f"{summary}: {self.count} problem(s){more}", details=self.items)


def _row_values(instance: object, where: str, problems: _Problems) -> list[object] | None:
    """The instance's values in feature order, or None after recording why it has none."""
    if isinstance(instance, list):
        if len(instance) != _FEATURE_COUNT:
            problems.add(where, f"a row must have exactly {_FEATURE_COUNT} values, got {len(instance)}")
            return None
        return instance
    if isinstance(instance, dict):
        missing = [name for name in FEATURE_NAMES if name not in instance]
        unknown = [_short(name) for name in instance if name not in FEATURE_NAMES]
        if missing:
            problems.add(where, "missing field(s): " + ", ".join(missing))
        if unknown:
            problems.add(where, "unknown field(s): " + ", ".join(unknown[:5]))
        if missing or unknown:
            return None
        return [instance[name] for name in FEATURE_NAMES]
    problems.add(
        where, f"an instance must be an object with fields {', '.join(FEATURE_NAMES)} or a list of 4 numbers"
    )
    return None


def parse_instances(payload: object, max_rows: int) -> np.ndarray:
    """Validate a predict body and return its rows as one float32 (N x 4) array for a single model run."""
    if not isinstance(payload, dict):
        raise ValidationFailed(
            'request body must be a JSON object like {"instances": [...]}',
            details=[{"location": "body", "message": "must be an object"}],
        )
    unknown = [_short(key) for key in payload if key != "instances"]
    if unknown:
        raise ValidationFailed(
            "unknown top-level field(s)",
            details=[
                {"location": name, "message": "unknown field"} for name in unknown[:MAX_REPORTED_ERRORS]
            ],
        )
    if "instances" not in payload:
        raise ValidationFailed(
            'missing field "instances"', details=[{"location": "instances", "message": "required"}]
        )
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise ValidationFailed(
            '"instances" must be a list', details=[{"location": "instances", "message": "must be a list"}]
        )
    if not instances:
        raise ValidationFailed(
            '"instances" must not be empty',
            details=[{"location": "instances", "message": "must contain at least one instance"}],
        )
    if len(instances) > max_rows:
        raise TooManyRows(
            f"{len(instances)} instances exceed the limit of {max_rows} per request",
            details={"rows": len(instances), "max_rows": max_rows},
        )
    problems = _Problems()
    rows = []
    for index, instance in enumerate(instances):
        where = f"instances[{index}]"
        values = _row_values(instance, where, problems)
        if values is None:
            continue
        for position, value in enumerate(values):
            problem = value_problem(value)
            if problem is not None:
                field = FEATURE_NAMES[position]
                location = f"{where}.{field}" if isinstance(instance, dict) else f"{where}[{position}]"
                problems.add(location, problem)
        rows.append(values)
    problems.raise_if_any("invalid instances")
    return np.array(rows, dtype=np.float32)


def parse_form(form: Mapping[str, str]) -> tuple[np.ndarray | None, dict[str, str]]:
    """Parse the web form: one row (1 x 4, float32) or None, and an error message per bad field."""
    errors: dict[str, str] = {}
    values: list[float] = []
    for name in FEATURE_NAMES:
        text = (form.get(name) or "").strip()
        if not text:
            errors[name] = "required"
            continue
        if len(text) > _MAX_FORM_VALUE_LENGTH or not _DECIMAL.fullmatch(text):
            errors[name] = "must be a number, e.g. 5.1"
            continue
        value = float(text)
        problem = value_problem(value)
        if problem is not None:
            errors[name] = problem
            continue
        values.append(value)
    if errors:
        return None, errors
    return np.array([values], dtype=np.float32), errors
