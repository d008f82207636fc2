"""Per-app service state (settings, model, metrics) kept in ``app.extensions`` rather than globals,
so tests can build several apps side by side."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from app.config import Settings
from app.errors import ModelNotReady
from app.metrics import Metrics
from app.model import IrisModel

EXTENSION_KEY = "iris_service"


@dataclass
class ServiceState:
    """What request handlers need besides the request."""

    settings: Settings
    metrics: Metrics
    model: IrisModel | None = None

    def ready_model(self) -> IrisModel:
        """The loaded model; 503 when there is none yet."""
        if self.model is None:
            raise ModelNotReady("the model is not loaded yet; retry when /ready answers 200")
        return self.model


def install(app: Flask, state: ServiceState) -> None:
    """Attach ``state`` to ``app``."""
    app.extensions[EXTENSION_KEY] = state


def current_state() -> ServiceState:
    """The state of the app handling the current request."""
    state: ServiceState = current_app.extensions[EXTENSION_KEY]
    return state
