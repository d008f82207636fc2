"""``reports/index.html``: the run for people, with its stylesheet ``report.css`` beside it (no script, no
network, no CDN, no inline style).

It holds the stages as a timeline (start, duration, status, cached), each stage's summary or error with links
to its log and tool reports; the model's metrics, its confusion matrix as a heat map and the promotion gate's
line; the test counts and coverage; Trivy's findings as a table; the image (tags, digest) and the deploy
target. Everything comes from what the run already wrote (the run result, the run state, ``model/`` and the
tool reports in ``stages/``); a part whose source is missing says so instead of failing the report. Jenkins
shows it from the archived artifacts or with the HTML Publisher plugin.

Jenkins serves both under its Content-Security-Policy for user content: ``DEFAULT_CSP_VALUE`` of
``hudson.model.DirectoryBrowserSupport`` in Jenkins core (jenkinsci/jenkins; "sandbox allow-same-origin;
default-src 'none'; img-src 'self'; style-src 'self';", and "sandbox; ..." in older releases), see
https://www.jenkins.io/doc/book/security/configuring-content-security-policy/. ``style-src 'self'`` blocks a
``<style>`` element and every ``style="..."`` attribute, but allows a stylesheet from the same server: so the
styles live in ``report.css``, and the page has no ``style`` attribute (SVG presentation attributes such as
``fill`` are not styles under CSP and stay).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from pipeline.adapters.trivy import Finding, parse_report
from pipeline.config import Config
from pipeline.errors import PipelineError
from pipeline.outputs import run_facts
from pipeline.results import RunResult, StageRun, Status
from pipeline.state import RunState, atomic_write_text

CSS_FILE = "report.css"
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1100px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde}
.meta{color:#556}.status{font-weight:600;padding:1px 8px;border-radius:10px;color:#fff}
.passed{background:#2e7d32}.cached{background:#546e7a}.failed{background:#c62828}
.skipped,.not-run{background:#9e9e9e}.interrupted{background:#ef6c00}.running{background:#1565c0}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #dde;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f4f8}tr.row-failed td{background:#fdecea}
.bar{fill:#2e7d32}.bar.cached{fill:#90a4ae}.bar.failed{fill:#c62828}.bar.skipped,.bar.not-run{fill:#cfd8dc}
.none{color:#889}code{font-size:12px}
"""


def write(result: RunResult, config: Config, state: RunState) -> Path:
    """Write ``index.html`` and its stylesheet into the report folder; the page's path."""
    atomic_write_text(config.report_dir / CSS_FILE, _CSS.lstrip())
    path = config.report_dir / "index.html"
    atomic_write_text(path, render(result, config, state))
    return path


def render(result: RunResult, config: Config, state: RunState) -> str:
    sections = [
        _header(result),
        _timeline(result.stages),
        _stages(result.stages, config),
        _model(config, result.stages),
        _tests(config, state, result),
        _findings(config),
        _release(state, result.run_id),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>pipeline run {escape(result.run_id)}</title>"
        f'<link rel="stylesheet" href="{CSS_FILE}"></head><body>' + "".join(sections) + "</body></html>\n"
    )


def _header(result: RunResult) -> str:
    status = str(result.status)
    return (
        f"<h1>pipeline run {escape(result.run_id)} "
        f'<span class="status {escape(status)}" id="run-status">{escape(status)}</span></h1>'
        f'<p class="meta">profile {escape(result.profile)} · '
        f"commit {escape(result.git_sha or 'unknown')} · "
        f"started {escape(result.started_at)} · finished {escape(result.finished_at or '-')}"
        + (f' · <a id="build-url" href="{escape(result.build_url)}">CI build</a>' if result.build_url else "")
        + "</p>"
    )


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _timeline(stages: list[StageRun]) -> str:
    """One bar per stage that started, placed by its start and sized by its duration."""
    started = [(run, _moment(run.started_at)) for run in stages]
    times = [moment for _, moment in started if moment is not None]
    if not times:
        return '<h2>Timeline</h2><p class="none" id="timeline">no stage started</p>'
    origin = min(times)
    end = max((moment - origin).total_seconds() + run.duration_s for run, moment in started if moment)
    scale = 700 / max(end, 1.0)
    rows = []
    for index, (run, moment) in enumerate(started):
        y = 8 + index * 24
        label = f"{run.name} · {run.status} · {run.duration_s:.1f}s"
        rows.append(f'<text x="0" y="{y + 13}" font-size="12">{escape(run.name)}</text>')
        if moment is not None:
            x = 110 + (moment - origin).total_seconds() * scale
            width = max(run.duration_s * scale, 2)
            rows.append(
                f'<rect class="bar {escape(str(run.status))}" x="{x:.1f}" y="{y}" width="{width:.1f}" '
                f'height="16" rx="3"><title>{escape(label)}</title></rect>'
                f'<text x="{x + width + 6:.1f}" y="{y + 13}" font-size="11">{escape(label)}</text>'
            )
        else:
            rows.append(
                f'<text x="110" y="{y + 13}" font-size="11" fill="#889">{escape(str(run.status))}</text>'
            )
    height = 16 + len(stages) * 24
    return (
        f'<h2>Timeline</h2><svg id="timeline" role="img" aria-label="stage timeline" width="1000" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>'
    )


def _links(run: StageRun, config: Config) -> str:
    folder = config.stage_reports
    files = (
        sorted(path.name for path in folder.glob(f"{run.name}*") if path.is_file()) if folder.is_dir() else []
    )
    relative = folder.relative_to(config.report_dir) if folder.is_relative_to(config.report_dir) else folder
    return " ".join(f'<a href="{escape(str(relative / name))}">{escape(name)}</a>' for name in files) or "-"


def _stages(stages: list[StageRun], config: Config) -> str:
    rows = []
    for run in stages:
        status = str(run.status)
        text = run.error if run.status == Status.FAILED and run.error else run.summary
        shown = status.upper() if run.status == Status.FAILED else status  # a failure stands out in words too
        rows.append(
            f'<tr class="row-{escape(status)}" id="stage-{escape(run.name)}"><td>{escape(run.name)}</td>'
            f'<td><span class="status {escape(status)}">{escape(shown)}'
            f"</span></td><td>{run.duration_s:.1f}s</td><td>{escape(text or '')}</td>"
            f"<td>{_links(run, config)}</td></tr>"
        )
    return (
        '<h2>Stages</h2><table id="stages"><tr><th>stage</th><th>status</th><th>duration</th>'
        f"<th>summary</th><th>logs and reports</th></tr>{''.join(rows)}</table>"
    )


def _metadata(config: Config) -> dict[str, Any] | None:
    try:
        found = json.loads(
            (config.path(config.train.output_dir) / "metadata.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _heat_map(matrix: list[list[int]], classes: list[str]) -> str:
    """The confusion matrix as an SVG grid: darker is more rows; the count in each cell."""
    size, left, top = 64, 110, 70
    most = max((value for row in matrix for value in row), default=1) or 1
    cells = []
    for i, name in enumerate(classes):
        cells.append(
            f'<text x="{left - 8}" y="{top + i * size + size / 2 + 4}" text-anchor="end" '
            f'font-size="12">{escape(name)}</text>'
        )
        cells.append(
            f'<text x="{left + i * size + size / 2}" y="{top - 8}" text-anchor="middle" '
            f'font-size="12">{escape(name)}</text>'
        )
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            shade = int(245 - 200 * value / most)
            colour = f"rgb({shade},{shade + 5 if shade < 250 else 250},255)"
            ink = "#fff" if value / most > 0.5 else "#1d2330"
            cells.append(
                f'<rect x="{left + j * size}" y="{top + i * size}" width="{size}" height="{size}" '
                f'fill="{colour}" stroke="#fff"><title>true {escape(classes[i])}, predicted '
                f'{escape(classes[j])}: {value}</title></rect><text x="{left + j * size + size / 2}" '
                f'y="{top + i * size + size / 2 + 5}" text-anchor="middle" fill="{ink}">{value}</text>'
            )
    width, height = left + len(classes) * size + 10, top + len(classes) * size + 10
    return (
        f'<svg id="confusion-matrix" role="img" aria-label="confusion matrix" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="{left}" y="16" font-size="12">predicted →</text>'
        f'<text x="0" y="{top - 24}" font-size="12">true ↓</text>{"".join(cells)}</svg>'
    )


def _model(config: Config, stages: list[StageRun]) -> str:
    meta = _metadata(config)
    if meta is None:
        return '<h2>Model</h2><p class="none" id="model">no model in this checkout</p>'
    metrics = [
        ("version", meta.get("model_version")),
        ("hold-out accuracy", meta.get("holdout_accuracy")),
        ("hold-out macro-F1", meta.get("holdout_macro_f1")),
        ("CV accuracy", f"{meta.get('cv_accuracy_mean', 0):.4f} ± {meta.get('cv_accuracy_std', 0):.4f}"),
    ]
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(f'{v:.4f}' if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in metrics
    )
    gate = next((run for run in stages if run.name == "promotion"), None)
    promotion = ""
    if gate is not None and (gate.summary or gate.error):
        text = gate.error if gate.status == Status.FAILED and gate.error else gate.summary
        promotion = f'<p id="promotion">{escape(text or "")}</p>'
    matrix, classes = meta.get("confusion_matrix"), meta.get("classes")
    heat = (
        _heat_map(matrix, [str(c) for c in classes])
        if isinstance(matrix, list) and isinstance(classes, list) and len(matrix) == len(classes)
        else '<p class="none">no confusion matrix recorded</p>'
    )
    return (
        f'<h2>Model</h2><table id="model">{rows}</table>{promotion}<h3>Confusion matrix (hold-out)</h3>{heat}'
    )


def _tests(config: Config, state: RunState, result: RunResult) -> str:
    record = state.record("test")
    run = next((stage for stage in result.stages if stage.name == "test"), None)
    if record is None or record.run_id != result.run_id or run is None:
        return '<h2>Tests</h2><p class="none" id="tests">the test stage did not run in this run</p>'
    if run.status == Status.FAILED:
        return f'<h2>Tests</h2><p id="tests">failed: {escape(run.error or run.summary)}</p>'
    counts = ", ".join(f"{record.outputs.get(k, '?')} {k}" for k in ("passed", "failed", "skipped"))
    coverage = "not measured"
    try:
        root = ET.parse(config.stage_reports / "test-coverage.xml").getroot()
        coverage = f"{float(root.get('line-rate', 0)) * 100:.1f}% of lines"
    except (OSError, ET.ParseError, ValueError):
        pass
    return f'<h2>Tests</h2><p id="tests">{escape(counts)}; coverage {escape(coverage)}</p>'


def _findings(config: Config) -> str:
    parts = []
    for name in ("trivy-fs", "trivy-image"):
        path = config.stage_reports / f"{name}.json"
        if not path.is_file():
            continue
        try:
            findings: list[Finding] = parse_report(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, PipelineError):
            parts.append(f"<p>{escape(name)}: the report cannot be read</p>")
            continue
        rows = "".join(
            f"<tr><td>{escape(f.severity)}</td><td>{escape(f.kind)}</td><td>{escape(f.id)}</td>"
            f"<td>{escape(f.pkg or f.target)}</td><td>{escape(f.installed_version or '')}</td>"
            f"<td>{escape(f.fixed_version or '')}</td><td>{escape(f.title)}</td></tr>"
            for f in findings
        )
        table = (
            "<table><tr><th>severity</th><th>kind</th><th>id</th><th>where</th><th>installed</th>"
            f"<th>fixed in</th><th>title</th></tr>{rows}</table>"
            if findings
            else "<p>no findings</p>"
        )
        parts.append(f"<h3>{escape(name)}</h3>{table}")
    body = "".join(parts) or '<p class="none">no Trivy report in this run</p>'
    return f'<h2>Security findings (Trivy)</h2><div id="findings">{body}</div>'


def _release(state: RunState, run_id: str) -> str:
    facts = run_facts(state, run_id)
    rows = [
        ("image id", facts.image_id),
        ("tags", ", ".join(facts.tags) or None),
        ("pushed as", facts.image),
        ("deployed to", facts.deployed_to),
        ("serving at", facts.url),
    ]
    body = "".join(
        f"<tr><th>{escape(k)}</th><td><code>{escape(str(v))}</code></td></tr>" for k, v in rows if v
    )
    return (
        f'<h2>Image and deployment</h2><table id="release">{body}</table>'
        if body
        else (
            "<h2>Image and deployment</h2>"
            '<p class="none" id="release">nothing built or deployed in this run</p>'
        )
    )
