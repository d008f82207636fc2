"""The lint stage against fixture repositories with one planted problem each; real linters."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.support.report_formats import json_issues, mypy_issues, pylint_issues

TOML = '[lint]\npaths = ["pkg"]\npylint_paths = ["pkg"]\npylint_fail_under = 9.0\n'
CLEAN = {
    "pipeline.toml": TOML,
    "pkg/__init__.py": '"""A tiny package."""\n',
    "pkg/good.py": (
        '"""Good code."""\n\n\ndef add(a: int, b: int) -> int:\n    """Add."""\n    return a + b\n'
    ),
    "Dockerfile": (
        "FROM python:3.11-slim\n"
        "WORKDIR /app\n"
        "COPY pkg/ ./pkg/\n"
        "USER 10001\n"
        'CMD ["python3", "-c", "import pkg"]\n'
    ),
}


def lint(repo: Path) -> tuple[int, str, dict]:
    proc = run_cli(["run", "--stage", "lint"], repo)
    log = (repo / "reports" / "stages" / "lint.log").read_text(encoding="utf-8")
    doc = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    return proc.returncode, log, doc["stages"][0]


def test_clean_repo_passes(make_repo) -> None:
    code, _, stage = lint(make_repo(CLEAN))
    assert code == 0, stage
    assert stage["status"] == "passed"
    assert "ruff 0 findings" in stage["summary"] and "hadolint 0 findings in 1 Dockerfile" in stage["summary"]


def test_pylint_error_fails_and_is_named(make_repo) -> None:
    repo = make_repo(
        {
            **CLEAN,
            "pkg/bad.py": (
                '"""Bad."""\n\n\ndef f() -> int:\n    """F."""\n    return undefined_name  # noqa: F821\n'
            ),
        }
    )
    code, log, stage = lint(repo)
    assert code == 1
    assert "pylint failed" in stage["error"]
    assert "E0602" in log and "undefined-variable" in log
    # pylint runs beside the other linters, yet its lines stay together in the log: its command, then
    # its findings, with no other linter's command in between
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$ ") and " pylint " in line)
    block = lines[
        start + 1 : next((i for i in range(start + 1, len(lines)) if lines[i].startswith("$ ")), None)
    ]
    assert any("E0602" in line for line in block) and any("rated at" in line for line in block), log
    # lint-pylint.txt as Warnings NG's PyLintParser reads it (tests/support/report_formats.py)
    issues = pylint_issues(repo / "reports" / "stages" / "lint-pylint.txt")
    assert [(i["path"], i["line"], i["type"], i["symbol"]) for i in issues] == [
        ("pkg/bad.py", "6", "E0602", "undefined-variable")
    ]


def test_pylint_reads_only_its_paths_and_the_other_linters_all_paths(make_repo) -> None:
    # an error only pylint's inference sees, in a folder of lint.paths that is not in lint.pylint_paths
    probe = '"""Probe."""\n\nimport os\n\nos.not_a_function()\n'
    toml = '[lint]\npaths = ["pkg", "checks"]\npylint_paths = ["pkg"]\n'
    repo = make_repo({**CLEAN, "pipeline.toml": toml, "checks/probe.py": probe})
    code, log, stage = lint(repo)
    assert code == 0, stage
    assert "no-member" not in log
    (repo / "checks" / "probe.py").write_text(probe + "x=1\n", encoding="utf-8")  # black still reads it
    code, log, stage = lint(repo)
    assert code == 1 and stage["error"].startswith("black failed: ")
    (repo / "checks" / "probe.py").write_text(probe, encoding="utf-8")
    (repo / "pipeline.toml").write_text(toml.replace('["pkg"]', '["src"]'), encoding="utf-8")
    code, log, stage = lint(repo)  # a pylint that checks nothing says so
    assert code == 0 and "pylint skipped: no lint.pylint_paths (src) here" in stage["summary"]
    (repo / "pipeline.toml").write_text(toml.replace('["pkg"]', '["pkg", "checks"]'), encoding="utf-8")
    code, log, stage = lint(repo)
    assert code == 1 and stage["error"].startswith("pylint failed")
    assert "E1101" in log and "no-member" in log


def test_a_linter_whose_paths_are_all_missing_says_so_in_the_summary(make_repo) -> None:
    toml = '[lint]\npaths = ["src"]\npylint_paths = ["pkg"]\nmypy_paths = ["typed", "stubs"]\n'
    code, _, stage = lint(make_repo({**CLEAN, "pipeline.toml": toml}))
    assert code == 0, stage
    assert "ruff and black skipped: no lint.paths (src) here" in stage["summary"]
    assert "mypy skipped: no lint.mypy_paths (typed, stubs) here" in stage["summary"]
    assert stage["summary"].startswith("pylint 10.00/10")  # what does exist is still checked


def test_black_unformatted_file_fails_and_is_left_unchanged(make_repo) -> None:
    ugly = '"""Ugly."""\n\n\ndef g( a:int,b :int)->int :\n    """G."""\n    return a+b\n'
    repo = make_repo({**CLEAN, "pkg/ugly.py": ugly})
    before = hashlib.sha256((repo / "pkg" / "ugly.py").read_bytes()).hexdigest()
    code, log, stage = lint(repo)
    assert code == 1
    assert "black failed" in stage["error"] and "black 1 files to reformat" in stage["error"]
    assert "would reformat" in log and "ugly.py" in log
    assert hashlib.sha256((repo / "pkg" / "ugly.py").read_bytes()).hexdigest() == before


def test_bad_dockerfile_fails_with_the_rule_named(make_repo) -> None:
    repo = make_repo(
        {**CLEAN, "Dockerfile": "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl\n"}
    )
    code, log, stage = lint(repo)
    assert code == 1
    assert "hadolint failed" in stage["error"]
    assert "DL3007" in log  # using latest
    assert "DL3008" in log  # unpinned apt packages
    # The report is the JSON array alone, as Warnings NG's HadoLintParser reads it (report_formats.py).
    fields = ("code", "level", "line", "file", "message")
    report = json_issues(repo / "reports" / "stages" / "lint-hadolint.json", fields)
    assert {item["code"] for item in report} >= {"DL3007", "DL3008"}


@pytest.mark.parametrize("linter", ["ruff", "flake8"])
def test_style_linter_findings_fail(make_repo, linter: str) -> None:
    repo = make_repo(
        {
            **CLEAN,
            "pipeline.toml": TOML + f'linter = "{linter}"\n',
            "pkg/unused.py": '"""Unused import."""\n\nimport os\n',
        }
    )
    code, log, stage = lint(repo)
    assert code == 1
    assert f"{linter} failed" in stage["error"]
    assert "F401" in log
    if linter == "ruff":  # lint-ruff.json as Warnings NG's RuffParser reads it
        fields = ("code", "message", "location", "filename")
        findings = json_issues(repo / "reports" / "stages" / "lint-ruff.json", fields)
        assert [(Path(f["filename"]).name, f["code"], f["location"]["row"]) for f in findings] == [
            ("unused.py", "F401", 3)
        ]


def test_a_type_error_fails_mypy_and_is_named(make_repo) -> None:
    typed = TOML + 'mypy_paths = ["pkg"]\n'
    mistyped = '"""Mistyped."""\n\n\ndef half(n: int) -> int:\n    """Half."""\n    return n / 2\n'
    repo = make_repo({**CLEAN, "pipeline.toml": typed, "pkg/half.py": mistyped})
    code, log, stage = lint(repo)
    assert code == 1
    assert "mypy failed" in stage["error"] and "mypy 1 errors" in stage["error"]
    assert 'pkg/half.py:6: error: Incompatible return value type (got "float", expected "int")' in log
    assert (repo / "reports" / "stages" / "lint-mypy.txt").exists()

    # The line as Warnings NG's mypy parser reads it (violations-lib MyPyParser): FILE:LINE: SEVERITY:
    # MESSAGE, with no column even when the project's settings ask for columns and error ends.
    settings = "[tool.mypy]\nshow_column_numbers = true\nshow_error_end = true\n"
    (repo / "pyproject.toml").write_text(settings, encoding="utf-8")
    lint(repo)
    report = repo / "reports" / "stages" / "lint-mypy.txt"
    assert [i[:3] for i in mypy_issues(report)] == [("pkg/half.py", 6, "error")], report.read_text("utf-8")

    (repo / "pkg" / "half.py").write_text(mistyped.replace("n / 2", "n // 2"), encoding="utf-8")
    code, _, stage = lint(repo)
    assert code == 0, stage
    assert "mypy 0 errors" in stage["summary"]


# A settings file that turns a clean tree's lint red, for each kind of lookup (the nearest to the file for
# ruff, the working directory for mypy and hadolint): a run after it is added must not be "cached".
@pytest.mark.parametrize(
    "rel, text, failing",
    [
        ("ruff.toml", '[lint]\nselect = ["ALL"]\n', "ruff"),  # the probe of issue 26
        ("pkg/.ruff.toml", '[lint]\nselect = ["ALL"]\n', "ruff"),
        ("mypy.ini", "[mypy]\nplugins = no_such_plugin_here\n", "mypy"),
        (".hadolint.yaml", "trustedRegistries:\n  - registry.example.com\n", "hadolint"),
    ],
)
def test_a_new_settings_file_reruns_lint(make_repo, rel: str, text: str, failing: str) -> None:
    repo = make_repo({**CLEAN, "pipeline.toml": TOML + 'mypy_paths = ["pkg"]\n'})
    code, _, stage = lint(repo)
    assert code == 0 and stage["status"] == "passed", stage
    (repo / rel).write_text(text, encoding="utf-8")
    code, _, stage = lint(repo)
    assert stage["status"] == "failed" and code == 1, stage
    assert f"{failing} failed" in stage["error"], stage
