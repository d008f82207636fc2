"""The Iris classifier service (its contract: docs/api.md): ``create_app()`` builds the Flask app.

Modules, one job each: ``config`` (settings), ``model`` (load/predict/metadata), ``validation`` (every input
rule), ``errors`` (the error tree and its one handler), ``api`` (JSON endpoints), ``web`` (the form),
``metrics`` (Prometheus), ``openapi`` (the API description).

Production entry point: ``python -m app.serve`` (``app/serve.py``: granian serving ``create_app()``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask

from app.config import Settings, load_settings
from app.errors import register_error_handlers
from app.metrics import Metrics
from app.model import IrisModel, ModelLoadError
from app.state import ServiceState, install

__all__ = ["IrisModel", "ModelLoadError", "Settings", "create_app"]

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, object] | None = None) -> Flask:
    """Build the app and load the model once; raise :class:`ModelLoadError` (after logging why) if it cannot.

    ``test_config`` overrides settings (``MODEL_DIR``, ``MAX_BATCH_ROWS``, ``MAX_CONTENT_LENGTH``, and
    ``LOAD_MODEL=False`` to start without a model, which keeps ``/ready`` at 503) and any Flask config key.
    """
    settings = load_settings(test_config)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_content_length)
    if test_config:
        app.config.update({k: v for k, v in test_config.items() if k.isupper()})
    # Keep label, class_id, probabilities in the documented order (Flask's DefaultJSONProvider setting).
    app.json.sort_keys = False  # type: ignore[attr-defined]

    metrics = Metrics(settings.prometheus_multiproc_dir)
    state = ServiceState(settings=settings, metrics=metrics)
    if settings.load_model:
        try:
            state.model = IrisModel.load(settings.model_dir)
        except ModelLoadError as exc:
            log.critical("cannot start the service: %s", exc)
            raise
        log.info("model %s loaded from %s", state.model.version, settings.model_dir)
        metrics.set_model_version(state.model.version)
    install(app, state)

    from app import api, openapi, web  # after state is wired

    register_error_handlers(app)
    metrics.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(openapi.bp)
    return app
