"""POST /api/v1/predict: the happy paths and every error class of docs/api.md."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from app import create_app
from tests.app.conftest import SETOSA, VIRGINICA


def _post(client: FlaskClient, body: object) -> tuple[int, dict]:
    response = client.post("/api/v1/predict", json=body)
    return response.status_code, response.get_json()


def test_named_instances_answer_the_documented_shape(client: FlaskClient) -> None:
    status, body = _post(client, {"instances": [SETOSA, VIRGINICA]})
    assert status == 200
    assert list(body) == ["predictions", "model_version"]
    assert len(body["model_version"]) == 12
    first, second = body["predictions"]
    assert list(first) == ["label", "class_id", "probabilities"]
    assert (first["label"], first["class_id"]) == ("setosa", 0)
    assert (second["label"], second["class_id"]) == ("virginica", 2)
    assert list(first["probabilities"]) == ["setosa", "versicolor", "virginica"]
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert max(first["probabilities"], key=first["probabilities"].get) == "setosa"


def test_rows_and_named_instances_agree(client: FlaskClient) -> None:
    _, named = _post(client, {"instances": [SETOSA, VIRGINICA]})
    _, rows = _post(client, {"instances": [list(SETOSA.values()), list(VIRGINICA.values())]})
    assert named == rows


def test_integers_and_the_upper_bound_are_accepted(client: FlaskClient) -> None:
    status, body = _post(client, {"instances": [[5, 3, 1, 100]]})
    assert status == 200
    assert len(body["predictions"]) == 1


def test_batch_of_1000_rows_in_order(client: FlaskClient) -> None:
    rows = [list(SETOSA.values()), list(VIRGINICA.values())] * 500
    status, body = _post(client, {"instances": rows})
    assert status == 200
    labels = [p["label"] for p in body["predictions"]]
    assert labels == ["setosa", "virginica"] * 500


def test_model_version_matches_metadata(client: FlaskClient) -> None:
    _, body = _post(client, {"instances": [SETOSA]})
    assert body["model_version"] == client.get("/api/v1/model").get_json()["model_version"]


def _error(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b'{"instances": [[NaN, 3.5, 1.4, 0.2]]}', "invalid_json"),
        (b'{"instances": [[Infinity, 3.5, 1.4, 0.2]]}', "invalid_json"),
        (b'{"instances": [[-Infinity, 3.5, 1.4, 0.2]]}', "invalid_json"),
        (b"\xff\xfe\x00{", "invalid_json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b'{"instances": [[1' + b"0" * 5000 + b", 3.5, 1.4, 0.2]]}", "invalid_json"),
        (b"null", "validation_error"),
        (b"[]", "validation_error"),
        (b'"instances"', "validation_error"),
        (b"{}", "validation_error"),
        (b'{"instances": null}', "validation_error"),
        (b'{"instances": {}}', "validation_error"),
        (b'{"instances": []}', "validation_error"),
        (b'{"instances": [[5.1, 3.5, 1.4, 0.2]], "extra": 1}', "validation_error"),
        (b'{"instances": [[5.1, 3.5, 1.4]]}', "validation_error"),
        (b'{"instances": [[5.1, 3.5, 1.4, 0.2, 1.0]]}', "validation_error"),
        (b'{"instances": [[[5.1], [3.5], [1.4], [0.2]]]}', "validation_error"),
        (b'{"instances": [["5.1", 3.5, 1.4, 0.2]]}', "validation_error"),
        (b'{"instances": [[true, 3.5, 1.4, 0.2]]}', "validation_error"),
        (b'{"instances": [[null, 3.5, 1.4, 0.2]]}', "validation_error"),
        (b'{"instances": [[1e309, 3.5, 1.4, 0.2]]}', "validation_error"),
        (b'{"instances": [[0, 3.5, 1.4, 0.2]]}', "validation_error"),
        (b'{"instances": [[-1, 3.5, 1.4, 0.2]]}', "validation_error"),
        (b'{"instances": [[100.0001, 3.5, 1.4, 0.2]]}', "validation_error"),
        (b'{"instances": [5.1]}', "validation_error"),
        (b'{"instances": [{"sepal_length": 5.1}]}', "validation_error"),
        (
            b'{"instances": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, '
            b'"petal_width": 0.2, "x": 1}]}',
            "validation_error",
        ),
    ],
)
def test_bad_bodies_are_400_with_an_error_object(client: FlaskClient, raw: bytes, code: str) -> None:
    response = client.post("/api/v1/predict", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == code


def test_every_bad_value_is_located(client: FlaskClient) -> None:
    bad = dict(SETOSA, sepal_width="3.5", petal_width=0)
    response = client.post("/api/v1/predict", json={"instances": [SETOSA, bad, [1, 2, 3]]})
    assert response.status_code == 400
    locations = {item["location"]: item["message"] for item in _error(response)["details"]}
    assert locations == {
        "instances[1].sepal_width": "must be a number",
        "instances[1].petal_width": "must be greater than 0 and at most 100 (cm)",
        "instances[2]": "a row must have exactly 4 values, got 3",
    }


def test_error_details_are_capped(client: FlaskClient) -> None:
    response = client.post("/api/v1/predict", json={"instances": [["x"] * 4] * 500})
    error = _error(response)
    assert response.status_code == 400
    assert len(error["details"]) == 20
    assert "2000 problem(s)" in error["message"]


def test_over_the_row_limit_is_413(model_dir) -> None:
    client = create_app({"MODEL_DIR": str(model_dir), "MAX_BATCH_ROWS": 3}).test_client()
    assert client.post("/api/v1/predict", json={"instances": [SETOSA] * 3}).status_code == 200
    response = client.post("/api/v1/predict", json={"instances": [SETOSA] * 4})
    assert response.status_code == 413
    assert _error(response)["code"] == "too_many_rows"
    assert _error(response)["details"] == {"rows": 4, "max_rows": 3}


def test_default_row_limit_is_1000(client: FlaskClient) -> None:
    response = client.post("/api/v1/predict", json={"instances": [SETOSA] * 1001})
    assert response.status_code == 413


def test_body_over_the_size_limit_is_413(client: FlaskClient) -> None:
    raw = json.dumps({"instances": [SETOSA], "pad": "x" * (1024 * 1024)})
    response = client.post("/api/v1/predict", data=raw, content_type="application/json")
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"],
)
def test_wrong_content_type_is_415(client: FlaskClient, content_type: str | None) -> None:
    raw = json.dumps({"instances": [SETOSA]})
    response = client.post("/api/v1/predict", data=raw, content_type=content_type)
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"


def test_json_with_charset_parameter_is_accepted(client: FlaskClient) -> None:
    raw = json.dumps({"instances": [SETOSA]})
    response = client.post("/api/v1/predict", data=raw, content_type="application/json; charset=utf-8")
    assert response.status_code == 200


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.is_json
    assert _error(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "method, path", [("GET", "/api/v1/predict"), ("DELETE", "/health"), ("PUT", "/predict")]
)
def test_wrong_method_is_json_405_with_allow(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"
    assert response.headers["Allow"]


def test_without_a_model_predictions_are_503(model_dir) -> None:
    client = create_app({"MODEL_DIR": str(model_dir), "LOAD_MODEL": False}).test_client()
    response = client.post("/api/v1/predict", json={"instances": [SETOSA]})
    assert response.status_code == 503
    assert _error(response)["code"] == "model_not_ready"
