"""Prometheus metrics: requests and latency by endpoint and status, predictions by class, model version.

Each server worker is its own process. When ``PROMETHEUS_MULTIPROC_DIR`` is set (the image sets it),
prometheus-client's multiprocess mode shares values through files in that directory and ``/metrics``
aggregates all workers; ``app/serve.py`` empties the directory at start-up. A worker that died leaves its
files: its counts stay in the totals, as they should, and the one gauge (the model version) is aggregated
with ``max``. Only ``live*`` gauges would need a dead worker's files marked, and there are none.
Without it, every worker counts only its own requests, so a scrape sees one worker's numbers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Finer than the default buckets at the low end: a prediction takes about a millisecond."""

UNMATCHED = "<unmatched>"
"""Endpoint label for requests that match no route, so random URLs cannot create new time series."""


class Metrics:
    """The service's metric objects, registered in a registry of their own per app."""

    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        if multiproc_dir:
            os.makedirs(multiproc_dir, exist_ok=True)
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "endpoint", "status")
        self.requests = Counter("http_requests", "HTTP requests answered.", labels, registry=self.registry)
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "iris_predictions", "Predictions made, by predicted class.", ("label",), registry=self.registry
        )
        self._per_class: dict[str, Counter] = {}
        self._per_request: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._info: Info | Gauge
        if multiproc_dir:  # Info is not supported across processes; a constant gauge says the same
            self._info = Gauge(
                "iris_model_info",
                "The loaded model (value is always 1).",
                ("model_version",),
                multiprocess_mode="max",
                registry=self.registry,
            )
        else:
            self._info = Info("iris_model", "The loaded model.", registry=self.registry)

    def set_model_version(self, version: str) -> None:
        """Publish the loaded model's version."""
        if isinstance(self._info, Info):
            self._info.info({"model_version": version})
        else:
            self._info.labels(model_version=version).set(1)

    def count_predictions(self, labels: Iterable[str]) -> None:
        """Count one prediction per label."""
        counts: dict[str, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        for label, count in counts.items():
            child = self._per_class.get(label)
            if child is None:  # labels() validates and locks: once per class, not once per request
                child = self._per_class[label] = self.predictions.labels(label=label)
            child.inc(count)

    def exposition(self) -> bytes:
        """The text exposition: this process's registry, or every worker's in multiprocess mode."""
        if self.multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    def init_app(self, app: Flask) -> None:
        """Time every request and serve ``GET /metrics``."""
        app.before_request(_start_timer)
        app.after_request(self._observe)
        blueprint = Blueprint("metrics", __name__)
        blueprint.add_url_rule("/metrics", "metrics", self._serve, methods=["GET"])
        app.register_blueprint(blueprint)

    def _observe(self, response: Response) -> Response:
        started = g.pop("metrics_started", None)
        rule = request.url_rule
        labels = (
            request.method if rule else "other",
            rule.rule if rule else UNMATCHED,
            str(response.status_code),
        )
        # labels() validates and takes a lock on every call. The label sets are few (routes x methods x the
        # statuses the app answers, unmatched URLs share one), so each pair of children is looked up once.
        children = self._per_request.get(labels)
        if children is None:
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._per_request[labels] = children
        count, latency = children
        count.inc()
        if started is not None:
            latency.observe(time.perf_counter() - started)
        return response

    def _serve(self) -> Response:
        return Response(self.exposition(), content_type=CONTENT_TYPE_LATEST)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()
