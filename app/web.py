"""The HTML form: ``GET /`` shows it, ``POST /predict`` answers form data with the page re-rendered
(species and probabilities, or each error beside its field) and JSON bodies like the API."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from flask import Blueprint, Response, render_template, request

from app.api import predict_json
from app.errors import UnsupportedMediaType
from app.predict import predict_rows
from app.schema import FEATURES, MAXIMUM, MIN_EXCLUSIVE, UNIT
from app.state import current_state
from app.validation import parse_form

bp = Blueprint("web", __name__)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _style_hash(template: Path) -> str:
    """The CSP source of the page's one inline ``<style>`` block (it holds no template expressions)."""
    found = re.search(r"<style>(.*?)</style>", template.read_text(encoding="utf-8"), re.S)
    digest = hashlib.sha256(found.group(1).encode("utf-8") if found else b"").digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# The page loads nothing from anywhere, runs no script and may not be framed: a browser enforces that even
# if a value ever reached the page unescaped.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src {_style_hash(Path(__file__).parent / 'templates' / 'index.html')}; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@bp.after_request
def _secure(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers.update(SECURITY_HEADERS)
    return response


def _page(status: int = 200, **context: object) -> tuple[str, int]:
    model = current_state().model
    page = render_template(
        "index.html",
        features=FEATURES,
        unit=UNIT,
        minimum=MIN_EXCLUSIVE,
        maximum=MAXIMUM,
        model_version=model.version if model else None,
        values=context.pop("values", {}),
        errors=context.pop("errors", {}),
        **context,
    )
    return page, status


@bp.get("/")
def index() -> tuple[str, int]:
    """The empty form."""
    return _page()


@bp.post("/predict")
def predict() -> Response | tuple[str, int]:
    """Form data -> HTML page (400 with inline errors when invalid); JSON -> the API's answer."""
    if request.mimetype == "application/json":
        return predict_json()
    if request.mimetype not in _FORM_TYPES:
        raise UnsupportedMediaType(
            "send form data (application/x-www-form-urlencoded) or JSON (application/json)",
            details={"content_type": request.mimetype or None},
        )
    state = current_state()
    values = {name: (request.form.get(name) or "")[:64] for name, _ in FEATURES}
    row, errors = parse_form(request.form)
    if row is None:
        return _page(400, values=values, errors=errors)
    model = state.ready_model()
    prediction = predict_rows(model, row, state.metrics)[0]
    return _page(values=values, prediction=prediction)
