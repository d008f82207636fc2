"""``reports/index.html`` in real headless Chromium: it renders with no console error, holds the timeline
and the confusion matrix, marks a failed stage so it stands out, and loads nothing from the network.

It is served over HTTP with the Content-Security-Policy Jenkins sends with archived files and HTML Publisher
reports (``DEFAULT_CSP_VALUE`` of ``hudson.model.DirectoryBrowserSupport`` in jenkinsci/jenkins: "sandbox
allow-same-origin; ..." today, "sandbox; ..." in older releases; both are tested), under which an inline
style is blocked: the styles must come from ``report.css``, so the test checks computed styles, not only
that the elements exist.

The run is made up (a failed ``test``, a passed ``train`` and ``trivy-fs``, stages not run), over a real
trained model and a Trivy report in Trivy's JSON schema. The README's screenshot comes from this test
(``UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from model_training import run_training
from pipeline import config as config_mod
from pipeline import report_html
from pipeline.results import RunResult, RunStatus, StageRun, Status
from pipeline.state import RunState, StageRecord
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

RUN_ID = "20261130T210000Z-abc123"
# Jenkins' default CSP for user content (see the docstring), in its current and its older form.
JENKINS_CSP = {
    "current": "sandbox allow-same-origin; default-src 'none'; img-src 'self'; style-src 'self';",
    "older": "sandbox; default-src 'none'; img-src 'self'; style-src 'self';",
}
# The colours of report.css (rgb as getComputedStyle gives them).
RED, GREEN, GREY_BLUE = "rgb(198, 40, 40)", "rgb(46, 125, 50)", "rgb(144, 164, 174)"
TRIVY = {
    "SchemaVersion": 2,
    "Results": [
        {
            "Target": "requirements/runtime.txt",
            "Vulnerabilities": [
                {
                    "VulnerabilityID": "CVE-2099-0001",
                    "PkgName": "madeup",
                    "InstalledVersion": "1.0",
                    "FixedVersion": "1.1",
                    "Severity": "HIGH",
                    "Title": "made-up <b>advisory</b>",
                }
            ],
        }
    ],
}


def _report(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.toml").write_text((ROOT / "pipeline.toml").read_text(encoding="utf-8"), "utf-8")
    run_training(tmp_path / "model")
    cfg = config_mod.load(tmp_path, profile="local", environ={})
    cfg.stage_reports.mkdir(parents=True)
    (cfg.stage_reports / "trivy-fs.json").write_text(json.dumps(TRIVY), encoding="utf-8")
    for name in ("train", "test", "trivy-fs"):
        (cfg.stage_reports / f"{name}.log").write_text(f"{name} output\n", encoding="utf-8")
    state = RunState(cfg.state_file)
    state.put("test", StageRecord("failed", "t", RUN_ID, outputs={}))
    stages = [
        StageRun("lint", Status.CACHED, "2026-11-30T21:00:00Z", 0.4, "pylint 10.00/10"),
        StageRun("train", Status.PASSED, "2026-11-30T21:00:00Z", 3.1, "cv accuracy 0.958"),
        StageRun(
            "test", Status.FAILED, "2026-11-30T21:00:03Z", 40.2, "", error="1 failed: tests/x.py::test_y"
        ),
        StageRun("trivy-fs", Status.PASSED, "2026-11-30T21:00:00Z", 2.5, "1 finding below the gate"),
        *(StageRun(name) for name in ("build", "trivy-image", "smoke", "push", "deploy")),
    ]
    result = RunResult(RUN_ID, "2026-11-30T21:00:00Z", "local", "0123abc", stages, "2026-11-30T21:00:44Z")
    result.status = RunStatus.FAILED
    return report_html.write(result, cfg, state)


@contextlib.contextmanager
def served(folder: Path, csp: str) -> Iterator[str]:
    """``folder`` over HTTP on loopback, each response with ``csp`` as Jenkins sends it; the base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", csp)
            super().end_headers()

        def log_message(self, format: str, *args: object) -> None:  # pylint: disable=redefined-builtin
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _computed(page: Any, selector: str, prop: str) -> list[str]:
    return page.locator(selector).evaluate_all(f"es => es.map(e => getComputedStyle(e).{prop})")


@pytest.mark.parametrize("csp", JENKINS_CSP.values(), ids=JENKINS_CSP.keys())
def test_the_report_renders_under_jenkins_csp_with_its_styles(
    browser: Browser, tmp_path: Path, csp: str
) -> None:
    path = _report(tmp_path)
    page_text = path.read_text(encoding="utf-8")
    assert "<style" not in page_text and "style=" not in page_text, "Jenkins' CSP blocks inline styles"
    assert (path.parent / report_html.CSS_FILE).is_file()
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    page = context.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))

    with served(path.parent, csp) as base:
        # Chromium drops a load with ERR_NETWORK_CHANGED when the engine adds or removes a container's network
        # interface meanwhile (other tests run beside this one): load again then, up to three times.
        for _ in range(3):
            problems.clear()
            requests.clear()
            response = page.goto(base + "index.html")
            page.wait_for_load_state()
            if not any("ERR_NETWORK_CHANGED" in problem for problem in problems):
                break
        assert response is not None and response.headers["content-security-policy"] == csp

        assert not problems, problems  # a CSP violation is a console error
        assert set(requests) - {base + "favicon.ico"} == {base + "index.html", base + report_html.CSS_FILE}
        assert page.locator("#timeline rect.bar").count() == 4  # the stages that started
        assert page.locator("#confusion-matrix rect").count() == 9  # 3 classes x 3
        failed = page.locator("#stage-test")
        assert failed.get_attribute("class") == "row-failed"
        assert "FAILED" in failed.inner_text() and "1 failed: tests/x.py::test_y" in failed.inner_text()
        # The styles come from report.css: a failed badge is red with white text, the bars have their colours.
        assert _computed(page, "#stage-test .status", "backgroundColor") == [RED]
        assert _computed(page, "#stage-test .status", "color") == ["rgb(255, 255, 255)"]
        assert _computed(page, "#run-status", "backgroundColor") == [RED]
        assert _computed(page, "#stage-train .status", "backgroundColor") == [GREEN]
        assert _computed(page, "#timeline rect.bar", "fill") == [
            GREY_BLUE,
            GREEN,
            RED,
            GREEN,
        ]  # lint .. trivy-fs
        assert _computed(page, "#stages th", "backgroundColor")[0] == "rgb(243, 244, 248)"
        assert page.locator("#stage-trivy-fs a").first.get_attribute("href") == "stages/trivy-fs.json"
        assert "CVE-2099-0001" in page.locator("#findings").inner_text()
        assert page.locator("#findings b").count() == 0  # Trivy's text is escaped, never markup
        assert page.locator("#run-status").inner_text() == "failed"
        if os.environ.get("UPDATE_SCREENSHOT") and csp == JENKINS_CSP["current"]:
            page.screenshot(path=str(ROOT / "docs" / "report.png"), full_page=True)
    context.close()


def test_an_inline_style_would_be_blocked_by_jenkins_csp(browser: Browser, tmp_path: Path) -> None:
    """The check above can fail: the same page with its styles inline (as before issue 22) loses them."""
    path = _report(tmp_path)
    css = (path.parent / report_html.CSS_FILE).read_text(encoding="utf-8")
    link = f'<link rel="stylesheet" href="{report_html.CSS_FILE}">'
    path.write_text(path.read_text(encoding="utf-8").replace(link, f"<style>{css}</style>"), encoding="utf-8")
    context = browser.new_context()
    page = context.new_page()
    with served(path.parent, JENKINS_CSP["current"]) as base:
        page.goto(base + "index.html")
        page.wait_for_load_state()
        assert _computed(page, "#stage-test .status", "backgroundColor") != [RED]
    context.close()
