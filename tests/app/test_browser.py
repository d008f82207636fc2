"""The form in real headless Chromium against the real server (python -m app.serve).

Chromium is required, not optional: CI installs Debian's ``chromium``, and a missing browser fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.app.conftest import Server

pytestmark = pytest.mark.integration


@pytest.fixture
def page(browser: Browser, live_server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url)
    opened = context.new_page()
    yield opened
    context.close()


def _fill(page: Page, values: dict[str, str]) -> None:
    page.goto("/")
    for name, value in values.items():
        page.get_by_label(name.replace("_", " ").capitalize() + " (cm)").fill(value)
    page.get_by_role("button", name="Classify").click()
    page.wait_for_load_state()


def test_valid_values_show_the_species(page: Page) -> None:
    _fill(page, {"sepal_length": "6.7", "sepal_width": "3.0", "petal_length": "5.2", "petal_width": "2.3"})
    assert page.locator("#species").inner_text() == "virginica"
    assert page.locator('td[data-species="virginica"]').inner_text().endswith("%")
    assert page.locator(".field-error").count() == 0
    assert page.get_by_label("Petal length (cm)").input_value() == "5.2"


def test_bad_value_shows_the_error_beside_its_field(page: Page) -> None:
    _fill(page, {"sepal_length": "5.1", "sepal_width": "3.5", "petal_length": "150", "petal_width": ""})
    assert page.locator("#petal_length-error").inner_text() == "must be greater than 0 and at most 100 (cm)"
    assert page.locator("#petal_width-error").inner_text() == "required"
    assert page.get_by_label("Petal length (cm)").get_attribute("aria-invalid") == "true"
    assert page.locator("#species").count() == 0
    assert page.locator(".field-error").count() == 2
