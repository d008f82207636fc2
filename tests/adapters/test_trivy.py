"""The trivy adapter against real trivy: secrets and misconfigurations offline, vulns with the fake DB.

Every scanned tree and image is made at test time in a temporary directory: a planted AWS key, a
root-running Dockerfile or a pinned vulnerable package committed to the repository would trip the
project's own ``trivy-fs`` stage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters import trivy
from pipeline.adapters.docker_engine import DockerEngine
from pipeline.errors import ToolFailed, ToolNotFound

pytestmark = pytest.mark.integration

ALL_FAKE_IDS = {"FAKE-2026-0001", "FAKE-2026-0002", "FAKE-2026-0003", "FAKE-2026-0004"}
REQUIREMENTS = "acme-widgets==1.0.0\nglobex_utils==2.3.0\n"


def _ids(findings: Any) -> set[str]:
    return {finding.id for finding in findings}


def _fake_aws_key() -> str:
    """A made-up access key id of the real shape, assembled here so no source file carries one."""
    return "AKIA" + "Q3ZP7XW2" + "M4KT9RBN"


@pytest.fixture
def leaky_tree(tmp_path: Path) -> Path:
    """A source tree with a planted AWS key and a Dockerfile that runs as root (no USER)."""
    tree = tmp_path / "leaky"
    tree.mkdir()
    (tree / "settings.env").write_text(f"AWS_ACCESS_KEY_ID={_fake_aws_key()}\n", encoding="utf-8")
    (tree / "Dockerfile").write_text(
        'FROM debian:bookworm\nRUN echo hello\nCMD ["sleep", "1"]\n', encoding="utf-8"
    )
    return tree


@pytest.fixture
def vulnerable_tree(tmp_path: Path) -> Path:
    """A tree whose requirements.txt pins the made-up vulnerable packages of the fake DB."""
    tree = tmp_path / "vulnerable"
    tree.mkdir()
    (tree / "requirements.txt").write_text(REQUIREMENTS, encoding="utf-8")
    return tree


@pytest.fixture(scope="module")
def vulnerable_image(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny image holding dist-info METADATA of the made-up packages, as pip leaves them installed."""
    context = tmp_path_factory.mktemp("vuln-image")
    site = context / "site-packages"
    for name, version in (("acme_widgets", "1.0.0"), ("globex_utils", "2.3.0")):
        dist_info = site / f"{name}-{version}.dist-info"
        dist_info.mkdir(parents=True)
        metadata = f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        (dist_info / "METADATA").write_text(metadata, encoding="utf-8")
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY site-packages /usr/local/lib/python3.11/site-packages\n", encoding="utf-8"
    )
    ref = f"testbed/vulnerable:{context.name}"
    engine.build(context, "Dockerfile", [ref], log=lambda _line: None)
    yield ref
    engine.remove_image(ref, force=True)


def _vuln_options(cache: Path, **overrides: Any) -> trivy.ScanOptions:
    return trivy.ScanOptions(scanners=["vuln"], cache_dir=cache, skip_db_update=True, **overrides)


def test_secret_and_root_dockerfile_are_found_and_gated(
    trivy_path: str, leaky_tree: Path, tmp_path: Path, log: Any
) -> None:
    options = trivy.ScanOptions(scanners=["secret", "misconfig"], cache_dir=tmp_path / "cache")

    report = trivy.scan_fs(trivy_path, leaky_tree, options, tmp_path / "reports", log=log)

    secrets = [f for f in report.findings if f.kind == "secret"]
    misconfigs = {f.id.replace("-", ""): f for f in report.findings if f.kind == "misconfig"}
    assert [(f.id, f.severity) for f in secrets] == [("aws-access-key-id", "CRITICAL")]
    assert secrets[0].target == "settings.env:1"
    assert misconfigs["DS0002"].severity == "HIGH"

    blocking, counts = trivy.gate(report.findings, "CRITICAL")
    assert [f.kind for f in blocking] == ["secret"]
    assert counts["secret"]["CRITICAL"] == 1 and counts["misconfig"]["HIGH"] >= 1
    assert {f.kind for f in trivy.gate(report.findings, "HIGH")[0]} == {"secret", "misconfig"}

    sarif = json.loads(report.sarif_path.read_text(encoding="utf-8"))
    rule_ids = {result["ruleId"] for run in sarif["runs"] for result in run["results"]}
    assert {"aws-access-key-id", "DS-0002"} <= rule_ids or {"aws-access-key-id", "DS002"} <= rule_ids
    assert "Dockerfile" in report.table_path.read_text(encoding="utf-8")
    assert report.sbom_path is None


def test_ignorefile_lets_the_gate_pass(trivy_path: str, leaky_tree: Path, tmp_path: Path, log: Any) -> None:
    ignorefile = tmp_path / ".trivyignore"
    ignorefile.write_text("aws-access-key-id\nDS-0002\nDS002\nDS-0026\nDS026\n", encoding="utf-8")
    options = trivy.ScanOptions(
        scanners=["secret", "misconfig"], cache_dir=tmp_path / "cache", ignorefile=ignorefile
    )

    report = trivy.scan_fs(trivy_path, leaky_tree, options, tmp_path / "reports", log=log)

    assert not trivy.gate(report.findings, "LOW")[0]


def test_vulnerable_requirements_with_fake_db(
    trivy_path: str, fake_trivy_cache: Path, vulnerable_tree: Path, tmp_path: Path, log: Any
) -> None:
    report = trivy.scan_fs(trivy_path, vulnerable_tree, _vuln_options(fake_trivy_cache), tmp_path, log=log)

    assert _ids(report.findings) == ALL_FAKE_IDS
    by_id = {f.id: f for f in report.findings}
    assert (by_id["FAKE-2026-0001"].severity, by_id["FAKE-2026-0001"].fixed_version) == ("HIGH", "1.0.1")
    assert (by_id["FAKE-2026-0002"].severity, by_id["FAKE-2026-0002"].fixed_version) == ("CRITICAL", None)
    assert (
        by_id["FAKE-2026-0002"].pkg == "acme-widgets" and by_id["FAKE-2026-0002"].installed_version == "1.0.0"
    )
    assert _ids(trivy.gate(report.findings, "HIGH")[0]) == {"FAKE-2026-0001", "FAKE-2026-0002"}
    assert _ids(trivy.gate(report.findings, "MEDIUM")[0]) == ALL_FAKE_IDS - {"FAKE-2026-0003"}
    assert _ids(trivy.gate(report.findings, "UNKNOWN")[0]) == ALL_FAKE_IDS


def test_ignore_unfixed_and_ignorefile_filter_the_report(
    trivy_path: str, fake_trivy_cache: Path, vulnerable_tree: Path, tmp_path: Path, log: Any
) -> None:
    unfixed = trivy.scan_fs(
        trivy_path,
        vulnerable_tree,
        _vuln_options(fake_trivy_cache, ignore_unfixed=True),
        tmp_path / "a",
        log=log,
    )
    ignorefile = tmp_path / ".trivyignore"
    ignorefile.write_text("# accepted until the vendor ships a fix\nFAKE-2026-0001\n", encoding="utf-8")
    ignored = trivy.scan_fs(
        trivy_path,
        vulnerable_tree,
        _vuln_options(fake_trivy_cache, ignorefile=ignorefile),
        tmp_path / "b",
        log=log,
    )

    assert _ids(unfixed.findings) == ALL_FAKE_IDS - {"FAKE-2026-0002"}
    assert _ids(ignored.findings) == ALL_FAKE_IDS - {"FAKE-2026-0001"}
    assert "FAKE-2026-0001" not in ignored.table_path.read_text(encoding="utf-8")


def test_image_scan_with_fake_db_writes_sbom(
    trivy_path: str, fake_trivy_cache: Path, vulnerable_image: str, tmp_path: Path, log: Any
) -> None:
    report = trivy.scan_image(
        trivy_path, vulnerable_image, _vuln_options(fake_trivy_cache), tmp_path, log=log
    )

    assert _ids(report.findings) == ALL_FAKE_IDS
    assert _ids(trivy.gate(report.findings, "CRITICAL")[0]) == {"FAKE-2026-0002"}
    assert report.sbom_path is not None
    sbom = json.loads(report.sbom_path.read_text(encoding="utf-8"))
    assert sbom["bomFormat"] == "CycloneDX"
    assert {"acme-widgets", "globex-utils"} <= {component["name"] for component in sbom.get("components", [])}

    unfixed = trivy.scan_image(
        trivy_path,
        vulnerable_image,
        _vuln_options(fake_trivy_cache, ignore_unfixed=True),
        tmp_path / "u",
        log=log,
    )
    assert _ids(unfixed.findings) == ALL_FAKE_IDS - {"FAKE-2026-0002"}


def test_missing_db_fails_with_a_way_out(
    trivy_path: str, vulnerable_tree: Path, tmp_path: Path, log: Any
) -> None:
    with pytest.raises(ToolFailed) as caught:
        trivy.scan_fs(
            trivy_path, vulnerable_tree, _vuln_options(tmp_path / "empty-cache"), tmp_path / "r", log=log
        )

    message = str(caught.value)
    assert "--skip-db-update cannot be specified on the first run" in message
    assert 'trivy.scanners = ["secret", "misconfig"]' in message and "trivy.db_repository" in message
    assert not (tmp_path / "r" / "trivy-fs.json").exists()


def test_unreachable_db_repository_fails_with_a_way_out(
    trivy_path: str, vulnerable_tree: Path, tmp_path: Path, log: Any
) -> None:
    options = trivy.ScanOptions(
        scanners=["vuln"], cache_dir=tmp_path / "empty-cache", db_repository="127.0.0.1:1/nowhere/trivy-db:2"
    )

    with pytest.raises(ToolFailed) as caught:
        trivy.scan_fs(trivy_path, vulnerable_tree, options, tmp_path / "r", log=log)

    assert "failed to download vulnerability DB" in str(caught.value)
    assert "trivy.cache_dir" in str(caught.value)


def test_missing_trivy_is_tool_not_found(vulnerable_tree: Path, tmp_path: Path, log: Any) -> None:
    with pytest.raises(ToolNotFound):
        trivy.scan_fs("/nonexistent/bin/trivy", vulnerable_tree, trivy.ScanOptions(), tmp_path, log=log)


def test_image_missing_from_engine_fails(
    engine: DockerEngine, trivy_path: str, fake_trivy_cache: Path, tmp_path: Path, log: Any, unique: str
) -> None:
    assert engine.image_id(f"testbed/absent:{unique}") is None
    with pytest.raises(ToolFailed) as caught:
        trivy.scan_image(
            trivy_path, f"testbed/absent:{unique}", _vuln_options(fake_trivy_cache), tmp_path, log=log
        )
    assert "trivy failed on testbed/absent" in str(caught.value)


def test_missing_ignorefile_ignores_nothing(
    trivy_path: str, fake_trivy_cache: Path, vulnerable_tree: Path, tmp_path: Path, log: Any
) -> None:
    (vulnerable_tree / ".trivyignore").write_text(
        "FAKE-2026-0001\n", encoding="utf-8"
    )  # not the one asked for
    options = _vuln_options(fake_trivy_cache, ignorefile=tmp_path / "missing.trivyignore")

    report = trivy.scan_fs(trivy_path, vulnerable_tree, options, tmp_path / "r", log=log)

    assert _ids(report.findings) == ALL_FAKE_IDS
    assert "not found: no finding is ignored" in log.text
