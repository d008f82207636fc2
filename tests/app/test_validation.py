"""app.validation on its own: the value rule, row shapes and form parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.errors import InvalidJson, TooManyRows, ValidationFailed
from app.validation import (
    RANGE_MESSAGE,
    TINY_MESSAGE,
    loads_strict,
    parse_form,
    parse_instances,
    value_problem,
)


@pytest.mark.parametrize("value", [0.1, 1, 5.1, 100, 100.0, 1e-9, 1e-40])
def test_accepted_values(value: object) -> None:
    assert value_problem(value) is None


@pytest.mark.parametrize(
    "value, problem",
    [
        (True, "must be a number"),
        (False, "must be a number"),
        ("5.1", "must be a number"),
        (None, "must be a number"),
        ([5.1], "must be a number"),
        ({"v": 1}, "must be a number"),
        (math.nan, "must be a finite number"),
        (math.inf, "must be a finite number"),
        (-math.inf, "must be a finite number"),
        (0, RANGE_MESSAGE),
        (0.0, RANGE_MESSAGE),
        (-0.0, RANGE_MESSAGE),
        (-5, RANGE_MESSAGE),
        (100.00001, RANGE_MESSAGE),
        (10**400, RANGE_MESSAGE),
        (1e-46, TINY_MESSAGE),  # > 0 as a Python float, 0.0 in the model's float32
        (5e-324, TINY_MESSAGE),
    ],
)
def test_rejected_values(value: object, problem: str) -> None:
    assert value_problem(value) == problem


def test_rows_become_one_float32_array_in_feature_order() -> None:
    named = {"petal_width": 0.2, "sepal_length": 5.1, "petal_length": 1.4, "sepal_width": 3.5}
    rows = parse_instances({"instances": [named, [6.7, 3.0, 5.2, 2.3]]}, max_rows=10)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], rtol=1e-6)


def test_row_limit_is_checked_before_the_rows() -> None:
    with pytest.raises(TooManyRows):
        parse_instances({"instances": ["not even a row"] * 3}, max_rows=2)


def test_long_unknown_field_names_are_truncated() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_instances({"instances": [[1, 2, 3, 4]], "x" * 10_000: 1}, max_rows=10)
    assert caught.value.details == [{"location": "x" * 37 + "...", "message": "unknown field"}]


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"\xc3\x28", b"\xef\xbb\xbf{}"])
def test_strict_json_refuses_extensions_and_bad_bytes(raw: bytes) -> None:
    with pytest.raises(InvalidJson):
        loads_strict(raw)


def test_form_parses_decimal_strings() -> None:
    row, errors = parse_form(
        {"sepal_length": " 5.1 ", "sepal_width": "3.5e0", "petal_length": ".4", "petal_width": "+2"}
    )
    assert errors == {}
    assert row is not None
    np.testing.assert_allclose(row, [[5.1, 3.5, 0.4, 2.0]], rtol=1e-6)


def test_form_reports_every_bad_field() -> None:
    row, errors = parse_form({"sepal_length": "x", "sepal_width": "0", "petal_length": ""})
    assert row is None
    assert set(errors) == {"sepal_length", "sepal_width", "petal_length", "petal_width"}


@pytest.mark.parametrize(
    "body",
    [b'{"instances": [], "instances": []}', b'{"instances": [{"sepal_length": 1, "sepal_length": 2}]}'],
)
def test_a_duplicate_key_is_invalid_json_not_last_one_wins(body: bytes) -> None:
    with pytest.raises(InvalidJson) as caught:
        loads_strict(body)

    assert "duplicate key" in str(caught.value.message)


def test_a_tiny_value_is_a_400_naming_it_through_the_api(client) -> None:
    row = {"sepal_length": 1e-46, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}

    answer = client.post("/api/v1/predict", json={"instances": [row]})

    assert answer.status_code == 400
    assert answer.get_json()["error"]["details"][0]["message"] == TINY_MESSAGE
