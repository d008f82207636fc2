"""The HTML form flow: GET / and POST /predict with form data (and JSON)."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from tests.app.conftest import SETOSA

FORM = {name: str(value) for name, value in SETOSA.items()}


def test_index_has_four_labelled_inputs_with_units(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    for name, label in [
        ("sepal_length", "Sepal length"),
        ("sepal_width", "Sepal width"),
        ("petal_length", "Petal length"),
        ("petal_width", "Petal width"),
    ]:
        assert f'<label for="{name}">{label} (cm)</label>' in html
        assert f'id="{name}" name="{name}"' in html
    assert 'action="/predict"' in html


def test_valid_form_shows_species_and_probabilities(client: FlaskClient) -> None:
    response = client.post("/predict", data=FORM)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<span id="species">setosa</span>' in html
    for species in ("setosa", "versicolor", "virginica"):
        assert re.search(rf'data-species="{species}">\d+\.\d%<', html)
    assert 'value="5.1"' in html  # the entered values stay in the form


def test_multipart_form_is_accepted(client: FlaskClient) -> None:
    response = client.post("/predict", data=FORM, content_type="multipart/form-data")
    assert response.status_code == 200
    assert '<span id="species">setosa</span>' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("sepal_length", "", "required"),
        ("sepal_length", "   ", "required"),
        ("sepal_width", "abc", "must be a number, e.g. 5.1"),
        ("sepal_width", "nan", "must be a number, e.g. 5.1"),
        ("sepal_width", "1_0", "must be a number, e.g. 5.1"),
        ("sepal_width", "5,1", "must be a number, e.g. 5.1"),
        ("sepal_width", "\u0665", "must be a number, e.g. 5.1"),  # an Arabic-Indic 5: float() would take it
        ("sepal_width", "\uff15", "must be a number, e.g. 5.1"),  # a full-width 5
        ("petal_length", "0", "must be greater than 0 and at most 100 (cm)"),
        ("petal_length", "-3", "must be greater than 0 and at most 100 (cm)"),
        ("petal_width", "100.5", "must be greater than 0 and at most 100 (cm)"),
        ("petal_width", "1e999", "must be a finite number"),
        ("petal_width", "9" * 100, "must be a number, e.g. 5.1"),
    ],
)
def test_bad_field_is_400_with_the_error_beside_it(
    client: FlaskClient, field: str, value: str, message: str
) -> None:
    response = client.post("/predict", data={**FORM, field: value})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'<p class="field-error" id="{field}-error" role="alert">{message}</p>' in html
    assert html.count('class="field-error"') == 1
    assert 'id="species"' not in html


def test_missing_fields_each_get_an_error(client: FlaskClient) -> None:
    response = client.post("/predict", data={"unrelated": "1"})
    assert response.status_code == 400
    assert response.get_data(as_text=True).count("required</p>") == 4


def test_values_are_escaped_when_re_rendered(client: FlaskClient) -> None:
    response = client.post("/predict", data={**FORM, "sepal_length": '"><script>alert(1)</script>'})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;" in html


def test_json_to_predict_answers_like_the_api(client: FlaskClient) -> None:
    body = {"instances": [SETOSA]}
    form_route = client.post("/predict", json=body)
    api_route = client.post("/api/v1/predict", json=body)
    assert form_route.status_code == 200
    assert form_route.get_json() == api_route.get_json()
    bad = client.post("/predict", json={"instances": []})
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "validation_error"


def test_other_content_types_to_predict_are_415(client: FlaskClient) -> None:
    response = client.post("/predict", data="sepal_length=5.1", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_the_page_tells_the_browser_to_load_nothing_run_nothing_and_not_be_framed(
    client: FlaskClient,
) -> None:
    for answer in (client.get("/"), client.post("/predict", data={"sepal_length": "x"})):
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "style-src 'sha256-" in policy and "unsafe-inline" not in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" not in client.get("/health").headers  # JSON answers stay lean
