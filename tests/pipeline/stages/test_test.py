"""The test stage against fixture repositories: counts from pytest's JUnit report."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import record_passes, run_cli
from tests.support.report_formats import cobertura_lines

TOML = '[test]\npaths = ["tests"]\nmarkers = "not integration"\ncoverage = ["pkg"]\nworkers = 1\n'
FILES = {
    "pipeline.toml": TOML,
    "pkg/__init__.py": "def add(a, b):\n    return a + b\n",
    "tests/test_pkg.py": (
        "import pytest\nfrom pkg import add\n\n"
        "def test_add():\n    assert add(1, 2) == 3\n\n"
        "@pytest.mark.skip(reason='no server here')\ndef test_skipped():\n    pass\n"
    ),
    "pytest.ini": "[pytest]\nmarkers =\n    integration: needs a server\n",
}


def stage_of(repo: Path) -> dict:
    return json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]


def test_passing_suite_reports_counts_and_reports(make_repo) -> None:
    repo = make_repo(FILES)
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test"], repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stage = stage_of(repo)
    assert stage["summary"] == "1 passed, 0 failed, 1 skipped (selected by -m 'not integration')"
    assert (repo / "reports" / "stages" / "test-junit.xml").exists()
    assert (repo / "reports" / "stages" / "test-coverage.xml").exists()


def test_the_coverage_xml_names_each_file_from_the_project_root(make_repo) -> None:
    """Two measured packages, each with its __init__.py: coverage.py would name both ``__init__.py`` in
    package ``.`` (each relative to its --cov folder), which Jenkins' Coverage plugin (coverage-model's
    CoberturaParser) merges into one file. The stage writes them as pkg/__init__.py and other/__init__.py."""
    files = {
        **FILES,
        "pipeline.toml": TOML.replace('coverage = ["pkg"]', 'coverage = ["pkg", "other"]'),
        "other/__init__.py": "def sub(a, b):\n    return a - b\n\n\ndef unused():\n    return 0\n",
        "tests/test_other.py": "from other import sub\n\ndef test_sub():\n    assert sub(3, 2) == 1\n",
    }
    repo = make_repo(files)
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test"], repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = cobertura_lines(repo / "reports" / "stages" / "test-coverage.xml")
    assert lines == {"other/__init__.py": {1: 1, 2: 1, 5: 1, 6: 0}, "pkg/__init__.py": {1: 1, 2: 1}}


def test_failing_test_fails_the_stage(make_repo) -> None:
    repo = make_repo({**FILES, "tests/test_broken.py": "def test_broken():\n    assert 2 + 2 == 5\n"})
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test"], repo)
    assert proc.returncode == 1
    stage = stage_of(repo)
    assert stage["status"] == "failed"
    assert "1 passed, 1 failed, 1 skipped" in stage["error"]
    assert "test_broken" in stage["error"]


def test_no_tests_is_a_failure_not_a_pass(make_repo) -> None:
    repo = make_repo({**FILES, "tests/test_pkg.py": "# nothing here\n"})
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test"], repo)
    assert proc.returncode == 1
    assert "no tests collected" in stage_of(repo)["error"]


def test_deselected_integration_tests_are_counted(make_repo) -> None:
    server_test = "import pytest\n\n@pytest.mark.integration\ndef test_needs_server():\n    pass\n"
    repo = make_repo({**FILES, "tests/test_server.py": server_test})
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test", "--set", "test.workers=1"], repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stage_of(repo)["summary"] == "1 passed, 0 failed, 1 skipped (1 deselected by -m 'not integration')"
    # in parallel (pytest-xdist, the default) pytest does not count them: the selection is still named
    proc = run_cli(["run", "--stage", "test", "--set", "test.workers=2"], repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert stage_of(repo)["summary"] == "1 passed, 0 failed, 1 skipped (selected by -m 'not integration')"
    assert "-n 2" in (repo / "reports" / "stages" / "test.log").read_text(encoding="utf-8")


def test_the_suite_never_sees_a_credential_and_leaves_no_coverage_file_in_the_tree(make_repo) -> None:
    probe = (
        "import os\n\n"
        "def test_no_credentials():\n"
        "    names = ('REGISTRY_PASSWORD', 'DOCKERHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY')\n"
        "    leaked = [n for n in names if n in os.environ]\n"
        "    assert not leaked, leaked\n"
    )
    repo = make_repo({**FILES, "tests/test_env.py": probe})
    record_passes(repo, train={})
    secrets = {
        "REGISTRY_PASSWORD": "reg-pw",
        "DOCKERHUB_TOKEN": "hub-token",
        "AWS_SECRET_ACCESS_KEY": "aws-key",
    }
    proc = run_cli(["run", "--stage", "test"], repo, env=secrets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(repo.glob(".coverage*")), "coverage data belongs in the run state's folder"
    assert (repo / ".pipeline" / "coverage" / ".coverage").exists()
    assert (repo / "reports" / "stages" / "test-coverage.xml").exists()


# What a project's test can do to find the pipeline's credentials: walk up its ancestors and read the
# environment each was started with (/proc/PID/environ), the one the tool allowlist does not reach.
ANCESTOR_PROBE = """
import json, os
from pathlib import Path

def ancestors():
    pid = os.getppid()
    while pid > 1:
        yield pid
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])

def test_reads_the_environment_of_its_ancestors():
    seen = []
    for pid in ancestors():
        try:
            block = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\\0", b" ").decode()
        except OSError:
            continue
        env = dict(item.partition("=")[::2] for item in block.split("\\0") if item)
        seen.append({"pid": pid, "cmdline": cmdline, "env": env})
    Path("PROBE_OUT").write_text(json.dumps(seen))
    found = {
        k: v for entry in seen for k, v in entry["env"].items() if k.endswith(("_PASSWORD", "_KEY", "_TOKEN"))
    }
    assert not found, f"credentials of the pipeline's process tree: {found}"
"""

PROBE_SECRETS = {
    "REGISTRY_PASSWORD": "reg-pw-4d1f0c",
    "AWS_SECRET_ACCESS_KEY": "aws-key-97b2e1",
    "CUSTOM_DEPLOY_TOKEN": "custom-tok-5a83",
}


def report_files_holding(repo: Path, values: list[str]) -> dict[str, list[str]]:
    """Every file under reports/ that holds one of ``values``, with the values it holds."""
    held = {}
    for path in (repo / "reports").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            found = [v for v in values if v in text]
            if found:
                held[str(path.relative_to(repo))] = found
    return held


def test_no_secret_is_readable_from_the_pipelines_process_tree(make_repo) -> None:
    repo = make_repo({**FILES, "tests/test_ancestors.py": ANCESTOR_PROBE})
    record_passes(repo, train={})
    env = {**PROBE_SECRETS, "PIPELINE_PROBE_MARKER": "visible"}
    # Started from a process that never had the secrets (run_cli gives them to the pipeline only).
    proc = run_cli(["run", "--stage", "test"], repo, env=env)
    seen = json.loads((repo / "PROBE_OUT").read_text(encoding="utf-8"))
    pipeline = [e for e in seen if "-m pipeline" in e["cmdline"]]
    assert pipeline and pipeline[0]["env"].get("PIPELINE_PROBE_MARKER") == "visible", seen  # it was read
    leaked = {e["pid"]: [v for v in PROBE_SECRETS.values() if v in json.dumps(e["env"])] for e in seen}
    assert not any(leaked.values()), leaked
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not report_files_holding(repo, list(PROBE_SECRETS.values()))


def test_every_report_file_of_a_stage_passes_the_scrubber(make_repo) -> None:
    values = list(PROBE_SECRETS.values())
    leaky = "def test_prints_what_it_has():\n" f"    print({values!r})\n" f"    assert {values!r} == []\n"
    toml = TOML.replace("workers = 1\n", 'workers = 1\nextra_args = ["-o", "junit_logging=all"]\n')
    repo = make_repo({**FILES, "pipeline.toml": toml, "tests/test_leaky.py": leaky})
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test"], repo, env=PROBE_SECRETS)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    junit = (repo / "reports" / "stages" / "test-junit.xml").read_text(encoding="utf-8")
    assert "test_prints_what_it_has" in junit and "***" in junit
    assert not report_files_holding(repo, values)
    assert values[0] not in proc.stdout + proc.stderr
