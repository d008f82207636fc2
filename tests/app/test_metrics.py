"""GET /metrics: request counts and latency by endpoint and status, predictions by class, model info."""

from __future__ import annotations

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.app.conftest import SETOSA, VIRGINICA


def _samples(client: FlaskClient) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_requests_predictions_and_model_version_are_counted(client: FlaskClient) -> None:
    client.post("/api/v1/predict", json={"instances": [SETOSA, SETOSA, VIRGINICA]})
    client.post("/api/v1/predict", json={"instances": []})
    client.get("/nowhere/1")
    client.get("/nowhere/2")
    samples = _samples(client)

    def requests_total(endpoint: str, status: str, method: str = "POST") -> float:
        labels = frozenset({"method": method, "endpoint": endpoint, "status": status}.items())
        return samples[("http_requests_total", labels)]

    assert requests_total("/api/v1/predict", "200") == 1
    assert requests_total("/api/v1/predict", "400") == 1
    assert requests_total("<unmatched>", "404", method="other") == 2  # one series for all unknown paths
    latency = frozenset({"method": "POST", "endpoint": "/api/v1/predict", "status": "200"}.items())
    assert samples[("http_request_duration_seconds_count", latency)] == 1
    assert samples[("iris_predictions_total", frozenset({"label": "setosa"}.items()))] == 2
    assert samples[("iris_predictions_total", frozenset({"label": "virginica"}.items()))] == 1
    version = client.get("/ready").get_json()["model_version"]
    assert samples[("iris_model_info", frozenset({"model_version": version}.items()))] == 1


def test_form_predictions_are_counted_too(client: FlaskClient) -> None:
    client.post("/predict", data={name: str(value) for name, value in SETOSA.items()})
    assert _samples(client)[("iris_predictions_total", frozenset({"label": "setosa"}.items()))] == 1
