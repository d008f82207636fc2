"""GET /openapi.json describes every route, and real responses validate against its schemas."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.app.conftest import SETOSA


@pytest.fixture
def spec(client: FlaskClient) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_is_openapi_3_1(spec: dict) -> None:
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"]


def test_is_a_valid_openapi_document(spec: dict) -> None:
    import openapi_spec_validator as validator

    validator.validate(spec)


def test_every_route_is_documented_with_its_methods(app: Flask, spec: dict) -> None:
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        documented = {method.upper() for method in spec["paths"][rule.rule]}
        assert documented == set(rule.methods) - {"HEAD", "OPTIONS"}, rule.rule


def test_row_limit_and_bounds_match_the_service(spec: dict) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["PredictRequest"]["properties"]["instances"]["maxItems"] == 1000
    value = schemas["NamedInstance"]["properties"]["petal_width"]
    assert (value["exclusiveMinimum"], value["maximum"]) == (0.0, 100.0)


def _validator(spec: dict, name: str):
    import jsonschema

    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_responses_validate_against_the_documented_schemas(client: FlaskClient, spec: dict) -> None:
    _validator(spec, "PredictResponse").validate(
        client.post("/api/v1/predict", json={"instances": [SETOSA]}).get_json()
    )
    _validator(spec, "Error").validate(client.post("/api/v1/predict", json={"instances": []}).get_json())
    _validator(spec, "Error").validate(client.get("/missing").get_json())
    _validator(spec, "Health").validate(client.get("/health").get_json())
    _validator(spec, "Ready").validate(client.get("/ready").get_json())
    _validator(spec, "ModelMetadata").validate(client.get("/api/v1/model").get_json())


@pytest.mark.parametrize(
    "body, valid",
    [
        ({"instances": [SETOSA]}, True),
        ({"instances": [[5.1, 3.5, 1.4, 0.2]]}, True),
        ({"instances": []}, False),
        ({"instances": [[5.1, 3.5, 1.4]]}, False),
        ({"instances": [[0, 3.5, 1.4, 0.2]]}, False),
        ({"instances": [dict(SETOSA, extra=1)]}, False),
        ({"instances": [SETOSA], "extra": 1}, False),
    ],
)
def test_request_schema_agrees_with_the_service(
    client: FlaskClient, spec: dict, body: dict, valid: bool
) -> None:
    schema_ok = _validator(spec, "PredictRequest").is_valid(body)
    service_ok = client.post("/api/v1/predict", json=body).status_code == 200
    assert schema_ok == service_ok == valid
