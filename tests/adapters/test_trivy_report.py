"""Parsing trivy's JSON (schema v2) and the security gate: pure functions, on reports of our own making."""

from __future__ import annotations

import pytest

from pipeline.adapters.trivy import Finding, gate, parse_report, severity_rank
from pipeline.errors import ToolFailed

REPORT = {
    "SchemaVersion": 2,
    "ArtifactName": "example",
    "ArtifactType": "repository",
    "Results": [
        {
            "Target": "requirements.txt",
            "Class": "lang-pkgs",
            "Type": "pip",
            "Vulnerabilities": [
                {
                    "VulnerabilityID": "FAKE-2026-0101",
                    "PkgName": "acme-widgets",
                    "InstalledVersion": "1.0.0",
                    "FixedVersion": "1.0.1",
                    "Status": "fixed",
                    "Title": "made-up high",
                    "Severity": "HIGH",
                },
                {
                    "VulnerabilityID": "FAKE-2026-0102",
                    "PkgName": "acme-widgets",
                    "InstalledVersion": "1.0.0",
                    "Status": "affected",
                    "Severity": "LOW",
                },
            ],
        },
        {
            "Target": "Dockerfile",
            "Class": "config",
            "Type": "dockerfile",
            "Misconfigurations": [
                {
                    "ID": "DS-0002",
                    "Title": "Image user should not be 'root'",
                    "Severity": "HIGH",
                    "Status": "FAIL",
                },
                {"ID": "DS-0026", "Title": "No HEALTHCHECK defined", "Severity": "LOW", "Status": "PASS"},
            ],
        },
        {
            "Target": "settings.env",
            "Class": "secret",
            "Secrets": [
                {
                    "RuleID": "aws-access-key-id",
                    "Title": "AWS Access Key ID",
                    "Severity": "CRITICAL",
                    "StartLine": 3,
                }
            ],
        },
        {"Target": "clean.txt", "Class": "secret"},
    ],
}


def test_parse_report_reads_every_kind() -> None:
    findings = parse_report(REPORT)

    assert findings == [
        Finding(
            "vuln",
            "requirements.txt",
            "FAKE-2026-0101",
            "HIGH",
            "made-up high",
            "acme-widgets",
            "1.0.0",
            "1.0.1",
        ),
        Finding(
            "vuln",
            "requirements.txt",
            "FAKE-2026-0102",
            "LOW",
            "FAKE-2026-0102",
            "acme-widgets",
            "1.0.0",
            None,
        ),
        Finding("misconfig", "Dockerfile", "DS-0002", "HIGH", "Image user should not be 'root'"),
        Finding("secret", "settings.env:3", "aws-access-key-id", "CRITICAL", "AWS Access Key ID"),
    ]


def test_parse_report_refuses_another_schema() -> None:
    with pytest.raises(ToolFailed, match="schema"):
        parse_report({"SchemaVersion": 1, "Results": []})


def test_parse_report_with_no_results() -> None:
    assert parse_report({"SchemaVersion": 2}) == []


def test_gate_blocks_at_or_above_the_threshold_worst_first() -> None:
    blocking, counts = gate(parse_report(REPORT), "high")

    assert [f.id for f in blocking] == ["aws-access-key-id", "DS-0002", "FAKE-2026-0101"]
    assert counts["vuln"] == {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 0, "HIGH": 1, "CRITICAL": 0}
    assert counts["secret"]["CRITICAL"] == 1 and counts["misconfig"]["HIGH"] == 1


def test_gate_passes_when_nothing_reaches_the_threshold() -> None:
    findings = [f for f in parse_report(REPORT) if f.severity != "CRITICAL"]
    assert not gate(findings, "CRITICAL")[0]


def test_unknown_severity_is_lowest_and_misspelt_threshold_is_an_error() -> None:
    assert severity_rank("UNKNOWN") < severity_rank("LOW") < severity_rank("CRITICAL")
    with pytest.raises(ValueError, match="CRTICAL"):
        gate([], "CRTICAL")


def test_describe_names_package_and_fix() -> None:
    finding = parse_report(REPORT)[0]
    assert (
        finding.describe() == "HIGH vuln FAKE-2026-0101 in acme-widgets 1.0.0 (fixed in 1.0.1): made-up high"
    )
