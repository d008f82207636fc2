"""Every error the service answers with, and the one handler that renders them.

All client errors are JSON ``{"error": {"code", "message", "details"}}`` (docs/api.md, "Errors")::

    ApiError                      base; status and code travel with the exception
    ├── InvalidJson       400     body is not UTF-8 JSON, or uses NaN/Infinity literals, or nests too deep
    ├── ValidationFailed  400     JSON is well formed but the instances are not (details list each problem)
    ├── TooManyRows       413     more instances than MAX_BATCH_ROWS
    ├── UnsupportedMediaType 415  the body is not application/json (or form data where a form is accepted)
    └── ModelNotReady     503     the model is not loaded (yet)

    werkzeug HTTPException        404, 405, 413 (body over MAX_CONTENT_LENGTH) ... rendered the same way
    any other exception           500 "internal_error", logged with its traceback; no client input reaches it

The form flow (``POST /predict`` with form data) does not use these: it re-renders the page with 400.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A client-visible error with its HTTP status, stable machine-readable code and optional details."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidJson(ApiError):
    """The body could not be parsed as strict JSON."""

    code = "invalid_json"


class ValidationFailed(ApiError):
    """The JSON was parsed but does not describe valid instances."""

    code = "validation_error"


class TooManyRows(ApiError):
    """The batch is larger than the configured row limit."""

    status = 413
    code = "too_many_rows"


class UnsupportedMediaType(ApiError):
    """The request's content type is not one this endpoint reads."""

    status = 415
    code = "unsupported_media_type"


class ModelNotReady(ApiError):
    """Predictions were asked for before the model was loaded."""

    status = 503
    code = "model_not_ready"


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, details: object = None) -> tuple[Response, int]:
    """The JSON error body (docs/api.md, "Errors")."""
    return jsonify({"error": {"code": code, "message": message, "details": details}}), status


def _handle_api_error(exc: ApiError) -> tuple[Response, int]:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def _handle_http_exception(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    response, status = error_response(
        status, _HTTP_CODES.get(status, f"http_{status}"), exc.description or ""
    )
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response, status


def _handle_unexpected(exc: Exception) -> tuple[Response, int]:
    log.exception("unhandled error: %s", exc)
    return error_response(500, "internal_error", "internal server error")


def register_error_handlers(app: Flask) -> None:
    """Route every error the app can raise through the renderers above."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
