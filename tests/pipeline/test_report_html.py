"""``reports/index.html`` in real headless Chromium: it renders with no console error, holds the timeline
and the confusion matrix, marks a failed stage so it stands out, and loads nothing from the network.

The run is made up (a failed ``test``, a passed ``train`` and ``trivy-fs``, stages not run), over a real
trained model and a Trivy report in Trivy's JSON schema. The README's screenshot comes from this test
(``UPDATE_SCREENSHOT=1``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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


def test_the_report_renders_in_chromium_with_the_timeline_the_matrix_and_the_failure_marked(
    browser: Browser, tmp_path: Path
) -> None:
    path = _report(tmp_path)
    context = browser.new_context(viewport={"width": 1100, "height": 1400}, offline=True)
    page = context.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))

    page.goto(path.as_uri())
    page.wait_for_load_state()

    assert not problems, problems
    assert requests == [path.as_uri()]  # self-contained: nothing else is fetched
    assert page.locator("#timeline rect.bar").count() == 4  # the stages that started
    assert page.locator("#confusion-matrix rect").count() == 9  # 3 classes x 3
    failed = page.locator("#stage-test")
    assert failed.get_attribute("class") == "row-failed"
    assert "FAILED" in failed.inner_text() and "1 failed: tests/x.py::test_y" in failed.inner_text()
    badge = failed.locator(".status").evaluate("e => getComputedStyle(e).backgroundColor")
    assert badge == "rgb(198, 40, 40)"
    assert page.locator("#stage-trivy-fs a").first.get_attribute("href") == "stages/trivy-fs.json"
    assert "CVE-2099-0001" in page.locator("#findings").inner_text()
    assert page.locator("#findings b").count() == 0  # Trivy's text is escaped, never markup
    assert page.locator("#run-status").inner_text() == "failed"
    if os.environ.get("UPDATE_SCREENSHOT"):
        page.screenshot(path=str(ROOT / "docs" / "report.png"), full_page=True)
    context.close()
