"""``test``: pytest with JUnit XML and coverage XML in the report dir.

The stage runs the configured selection (the fast suite by default); the counts come from pytest's own
JUnit report, so skipped tests are shown, never hidden.
"""

from __future__ import annotations

import re
import shlex
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pipeline.cache import Inputs
from pipeline.config import Config
from pipeline.errors import GateFailed, StageFailed
from pipeline.outputs import TestOutputs
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult, tool_check

_DESELECTED = re.compile(r"(\d+) deselected")
# pytest's exit codes (pytest.ExitCode) that mean "the suite itself could not run".
_PYTEST_INTERNAL = {2: "interrupted", 3: "an internal error", 4: "a usage error", 5: "no tests collected"}


@dataclass(frozen=True)
class TestCounts:
    """Totals of a pytest JUnit report."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    tests: int
    failures: int
    errors: int
    skipped: int

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped

    def phrase(self) -> str:
        text = f"{self.passed} passed, {self.failures} failed, {self.skipped} skipped"
        return text + (f", {self.errors} errors" if self.errors else "")


def read_junit(path: Path) -> TestCounts:
    """Sum the counts of every ``testsuite`` in a JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals = [0, 0, 0, 0]
    for suite in suites:
        for i, attr in enumerate(("tests", "failures", "errors", "skipped")):
            totals[i] += int(suite.get(attr, "0"))
    return TestCounts(*totals)


def failed_tests(path: Path, limit: int = 5) -> list[str]:
    root = ET.parse(path).getroot()
    names = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            names.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    return names[:limit]


class TestStage(Stage):
    __test__ = False

    name = "test"
    needs = ("train",)
    description = "pytest (fast suite by default) with JUnit XML and coverage XML"
    outputs = TestOutputs
    cacheable = True

    def inputs(self, config: Config) -> Inputs:
        # Tests read more than the code they import (the Dockerfile, the Jenkinsfile, scripts, the
        # locked requirements): every file of the tree counts, except prose.
        return Inputs(
            files=("*", "!*.md"),
            config=("test",),
            tools=("python", "pytest", "pytest-cov", "pytest-xdist"),
            upstream=("train.model_version",),
        )

    def checks(self, config: Config) -> list[CheckResult]:
        del config
        return [tool_check("pytest", fix="pip install -r requirements/dev.txt")]

    def argv(self, config: Config, junit: Path, coverage: Path) -> list[str]:
        args = [sys.executable, "-m", "pytest", *config.test.paths, f"--junitxml={junit}", "-q", "-rfE"]
        if config.test.workers != 1:
            # pytest-xdist: the suite in parallel processes (61 s -> 38 s for this project's, 2 cores).
            args += ["-n", str(config.test.workers or "auto")]
        if config.test.markers:
            args += ["-m", config.test.markers]
        if config.test.coverage:
            args += [f"--cov={pkg}" for pkg in config.test.coverage]
            args += [f"--cov-report=xml:{coverage}", "--cov-report=term"]
        return args + list(config.test.extra_args)

    def plan(self, config: Config) -> list[str]:
        stages = config.stage_reports
        lines = [shlex.join(self.argv(config, stages / "test-junit.xml", stages / "test-coverage.xml"))]
        if config.test.coverage:
            lines.append(
                "coverage xml again, its file names from the project root (Jenkins' Coverage plugin)"
            )
        return lines

    @staticmethod
    def rewrite_coverage_xml(
        ctx: StageContext, coverage: Path, data_file: Path, env: dict[str, str] | None
    ) -> None:
        """Write ``coverage`` again from the run's data, its file names relative to the project root.

        pytest-cov takes each ``--cov`` folder as a source root, and coverage.py's XML names each file
        relative to its root: ``app/__init__.py`` and ``model_training/__init__.py`` both become
        ``__init__.py`` in the package ``.``. Jenkins' Coverage plugin reads the file with coverage-model's
        CoberturaParser (jenkinsci/coverage-model 0.71.1, parser/CoberturaParser.java), which keys a file
        by its package and ``class@filename``: the two would be merged into one. With no ``source`` in the
        settings (only this empty file: pyproject.toml's are not read), coverage.py names each file from the
        working directory, the project root (``app/__init__.py`` in the package ``app``).
        """
        rcfile = data_file.with_name("cobertura.coveragerc")
        rcfile.write_text("# The test stage's coverage xml: no source.\n[run]\n", encoding="utf-8")
        argv = [sys.executable, "-m", "coverage", "xml", f"--rcfile={rcfile}", f"--data-file={data_file}"]
        res = ctx.run_tool([*argv, "-q", "-o", str(coverage)], env=env)
        if res.returncode != 0:
            raise StageFailed(
                f"coverage xml exited {res.returncode} writing {coverage}", hint=f"see {ctx.log_path}"
            )

    def run(self, ctx: StageContext) -> StageResult:
        junit = ctx.report_path("-junit.xml")
        coverage = ctx.report_path("-coverage.xml")
        junit.unlink(missing_ok=True)
        ctx.progress("pytest")
        # Coverage's data file goes to the run state's folder, not the tree: a file that changes with
        # every run would make trivy-fs, which reads the whole tree, look changed every time.
        data_file = ctx.config.path(ctx.config.pipeline.state_dir) / "coverage" / ".coverage"
        data_file.parent.mkdir(parents=True, exist_ok=True)
        env = (
            {**ctx.config.tool_environ, "COVERAGE_FILE": str(data_file)} if ctx.config.tool_environ else None
        )
        res = ctx.run_tool(self.argv(ctx.config, junit, coverage), env=env)
        if res.returncode in _PYTEST_INTERNAL:
            raise StageFailed(
                f"pytest could not run the suite: {_PYTEST_INTERNAL[res.returncode]} (exit {res.returncode})",
                hint=f"see {ctx.log_path}",
            )
        if not junit.exists():
            raise StageFailed(f"pytest exited {res.returncode} without writing {junit}")
        if coverage.exists():
            self.rewrite_coverage_xml(ctx, coverage, data_file, env)
        counts = read_junit(junit)
        artifacts = {
            "junit": str(junit),
            "coverage": str(coverage) if coverage.exists() else None,
            "passed": counts.passed,
            "failed": counts.failures + counts.errors,
            "skipped": counts.skipped,
        }
        ctx.record(
            TestOutputs(passed=counts.passed, failed=counts.failures + counts.errors, skipped=counts.skipped)
        )
        if res.returncode != 0 or counts.failures or counts.errors:
            names = ", ".join(failed_tests(junit))
            raise GateFailed(
                f"{counts.phrase()}" + (f": {names}" if names else ""), hint=f"see {ctx.log_path}"
            )
        summary = counts.phrase()
        deselected = _DESELECTED.search(res.output)
        if deselected:
            summary += f" ({deselected.group(1)} deselected by -m {ctx.config.test.markers!r})"
        elif ctx.config.test.markers:  # pytest-xdist's summary does not count what -m deselected
            summary += f" (selected by -m {ctx.config.test.markers!r})"
        return StageResult(summary=summary, artifacts=artifacts)
