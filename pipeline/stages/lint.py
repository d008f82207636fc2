"""``lint``: pylint, ruff (or flake8), black ``--check``, mypy and hadolint; any gate failure fails the stage.

pylint runs on ``lint.pylint_paths`` (its type inference through every import is the slow part of the stage:
the shipped code, not the tests), mypy on ``lint.mypy_paths``, ruff and black on all of ``lint.paths``.

pylint runs in a thread beside the others, which run one after another; its lines go to the stage log
as one block when it ends. Every linter runs even when another one failed, so one run lists every
finding. black only ever runs with ``--check``: the pipeline never rewrites the tree it checks.
"""

from __future__ import annotations

import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.cache import Inputs
from pipeline.config import GENERATED_DIRS, Config
from pipeline.errors import GateFailed
from pipeline.outputs import LintOutputs
from pipeline.stages.base import CheckResult, Stage, StageContext, StageResult, tool_check

_PYLINT_SCORE = re.compile(r"rated at (-?[\d.]+)/10")
_PYLINT_MESSAGE = re.compile(r"^\S+:\d+: \[[A-Z]\d+")
_MYPY_ERROR = re.compile(r"^\S+:\d+: error: ")
_FIX = "pip install -r requirements/dev.txt"


@dataclass
class GateOutcome:
    """One linter's verdict: did it pass, how many findings, a short phrase for the summary."""

    tool: str
    ok: bool
    findings: int
    phrase: str


def find_dockerfiles(root: Path, config: Config) -> list[Path]:
    """Dockerfiles to lint: the configured ones, else every ``Dockerfile``/``*.Dockerfile`` in the tree."""
    if config.lint.dockerfiles:
        return [root / p for p in config.lint.dockerfiles]
    excluded = set(config.lint.exclude)
    found = []
    for current, dirs, files in os.walk(root):
        rel_dir = Path(current).relative_to(root)
        # Prune excluded directories (by name or by path) instead of walking .venv and friends.
        dirs[:] = sorted(d for d in dirs if d not in excluded and (rel_dir / d).as_posix() not in excluded)
        for name in sorted(files):
            if name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile"):
                found.append(Path(current) / name)
    return found


# The locked requirements: pylint's and mypy's verdicts depend on which packages they can import.
_REQUIREMENTS = ("requirements/*.txt",)

# Every settings file a linter looks up by name, from each tool's own lookup. The linters run in the root
# (``run_tool``'s cwd); files outside the tree (the user's home) are not inputs.
# - pylint 4.1 (pylint/config/find_default_config_files.py, CONFIG_NAMES and _find_pyproject): in the cwd
#   pylintrc, pylintrc.toml, .pylintrc, .pylintrc.toml, pyproject.toml, setup.cfg, tox.ini; pyproject.toml
#   of the parents up to the one holding .git; then PYLINTRC, ~/.pylintrc, ~/.config/pylintrc, /etc/pylintrc.
# - mypy 2.4 (mypy/config_parser.py _find_config_file, mypy/defaults.py CONFIG_NAMES, SHARED_CONFIG_NAMES):
#   mypy.ini, .mypy.ini, pyproject.toml, setup.cfg in the cwd, then its parents up to one holding .git or
#   .hg; then $XDG_CONFIG_HOME/mypy/config, ~/.config/mypy/config, ~/.mypy.ini.
# - flake8 7.5 (flake8/options/config.py _find_config_file): setup.cfg, tox.ini, .flake8 in the cwd, then
#   its parents up to the home directory.
# - hadolint 2.x (hadolint/hadolint src/Hadolint/Config/Configfile.hs findConfig): .hadolint.yaml,
#   .hadolint.yml in the cwd; then $XDG_CONFIG_HOME/hadolint.{yaml,yml} and files under the home directory.
_IN_CWD = (
    "pylintrc",
    "pylintrc.toml",
    ".pylintrc",
    ".pylintrc.toml",
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "mypy.ini",
    ".mypy.ini",
    ".flake8",
    ".hadolint.yaml",
    ".hadolint.yml",
)
# Looked up from each linted path upwards:
# - ruff 0.17 (astral-sh/ruff crates/ruff_workspace/src/pyproject.rs settings_toml, find_settings_toml):
#   .ruff.toml, ruff.toml, pyproject.toml (with [tool.ruff]) in the file's directory and each parent;
#   then the user's ~/.config/ruff/. It skips what .gitignore lists (respect-gitignore).
# - black 26 (black/files.py find_project_root, find_pyproject_toml, get_gitignore): pyproject.toml and
#   .gitignore of the project root, the nearest parent of the paths holding .git, .hg or a pyproject.toml
#   with [tool.black]; then ~/.config/black.
_UP_FROM_PATHS = (".ruff.toml", "ruff.toml", "pyproject.toml", ".gitignore")


def settings_files(config: Config) -> tuple[str, ...]:
    """The linters' settings files in the tree, as each one looks them up (relative to the root)."""
    names = {*_IN_CWD, *_UP_FROM_PATHS}
    for path in (*config.lint.paths, *config.lint.pylint_paths, *config.lint.mypy_paths):
        parts = PurePosixPath(path).parts
        for depth in range(1, len(parts)):  # each parent of the path up to the root
            names.update(PurePosixPath(*parts[:depth], name).as_posix() for name in _UP_FROM_PATHS)
        # and in a linted directory, the nearest to each file: git-ignored ones too, which ruff still reads
        for current, dirs, files in os.walk(config.path(path)):
            dirs[:] = [d for d in dirs if d not in GENERATED_DIRS and d != "__pycache__"]
            rel = Path(current).relative_to(config.root).as_posix()
            names.update(f"{rel}/{name}" for name in files if name in _UP_FROM_PATHS)
    return tuple(sorted(names))


def _tools(config: Config) -> list[str]:
    """The linters this configuration runs."""
    tools = ["pylint"] if config.lint.pylint_paths else []
    tools += [config.lint.linter, "hadolint"]
    tools += ["black"] if config.lint.black else []
    tools += ["mypy"] if config.lint.mypy_paths else []
    return tools


class LintStage(Stage):
    name = "lint"
    description = "pylint, ruff/flake8, black --check, mypy, hadolint on every Dockerfile"
    outputs = LintOutputs
    cacheable = True

    def inputs(self, config: Config) -> Inputs:
        dockerfiles = tuple(
            p.relative_to(config.root).as_posix() for p in find_dockerfiles(config.root, config)
        )
        lint = config.lint
        files = (*lint.paths, *lint.pylint_paths, *lint.mypy_paths, *dockerfiles, *_REQUIREMENTS)
        return Inputs(
            files=files, named=settings_files(config), config=("lint",), tools=("python", *_tools(config))
        )

    def checks(self, config: Config) -> list[CheckResult]:
        return [tool_check(t, fix=_FIX) for t in _tools(config)]

    def plan(self, config: Config) -> list[str]:
        paths = " ".join(config.lint.paths)
        lines = []
        if config.lint.pylint_paths:
            pylint_paths = " ".join(config.lint.pylint_paths)
            lines.append(f"pylint --fail-under {config.lint.pylint_fail_under} --fail-on E,F {pylint_paths}")
        lines.append(f"{config.lint.linter} {'check ' if config.lint.linter == 'ruff' else ''}{paths}")
        if config.lint.black:
            lines.append(f"black --check {paths}")
        if config.lint.mypy_paths:
            lines.append(f"mypy {' '.join(config.lint.mypy_paths)} (settings: [tool.mypy] of pyproject.toml)")
        dockerfiles = [str(p.relative_to(config.root)) for p in find_dockerfiles(config.root, config)]
        threshold = config.lint.hadolint_failure_threshold
        lines.append(f"hadolint --failure-threshold {threshold} {' '.join(dockerfiles) or '(no Dockerfile)'}")
        return lines

    def run(self, ctx: StageContext) -> StageResult:
        lint = ctx.config.lint
        outcomes: list[GateOutcome] = []

        def present(configured: tuple[str, ...], key: str, tools: str) -> list[str]:
            """The paths of ``lint.KEY`` that exist; when none does, the summary says so: a gate that checks
            nothing must show it, not pass silently."""
            found = [p for p in configured if (ctx.root / p).exists()]
            if configured and not found:
                phrase = f"{tools} skipped: no lint.{key} ({', '.join(configured)}) here"
                outcomes.append(GateOutcome(tools, True, 0, phrase))
            return found

        # pylint, by far the slowest, in a thread of its own beside the others, one after another.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lint-pylint") as beside:
            pylint = None
            if pylint_paths := present(lint.pylint_paths, "pylint_paths", "pylint"):
                pylint = beside.submit(self._pylint, ctx, pylint_paths)
            if paths := present(lint.paths, "paths", lint.linter + (" and black" if lint.black else "")):
                outcomes.append(self._ruff(ctx, paths) if lint.linter == "ruff" else self._flake8(ctx, paths))
                if lint.black:
                    outcomes.append(self._black(ctx, paths))
            if typed := present(lint.mypy_paths, "mypy_paths", "mypy"):
                outcomes.append(self._mypy(ctx, typed))
            outcomes.append(self._hadolint(ctx))
            if pylint is not None:
                if not pylint.done():
                    ctx.progress("pylint")
                outcomes.insert(0, pylint.result())
        summary = ", ".join(o.phrase for o in outcomes)
        failed = [o.tool for o in outcomes if not o.ok]
        findings = sum(o.findings for o in outcomes)
        ctx.record(LintOutputs(findings=findings))
        if failed:
            raise GateFailed(f"{', '.join(failed)} failed: {summary}", hint=f"see {ctx.log_path}")
        return StageResult(summary=summary, artifacts={"findings": findings})

    # -- one method per linter ---------------------------------------------------------------
    def _pylint(self, ctx: StageContext, paths: list[str]) -> GateOutcome:
        threshold = ctx.config.lint.pylint_fail_under
        report = ctx.report_path("-pylint.txt")
        ctx.progress("pylint")
        lines: list[str] = []  # logged as one block when pylint ends, not between the other linters' lines
        try:
            res = ctx.run_tool(
                [
                    sys.executable,
                    "-m",
                    "pylint",
                    "--output-format=parseable",
                    "--score=y",
                    f"--fail-under={threshold}",
                    "--fail-on=E,F",
                    *paths,
                ],
                hint=_FIX,
                log=lines.append,
            )
        finally:
            for line in lines:
                ctx.log(line)
        report.write_text(res.output + "\n", encoding="utf-8")
        match = _PYLINT_SCORE.search(res.output)
        score = float(match.group(1)) if match else None
        messages = sum(1 for line in res.output.splitlines() if _PYLINT_MESSAGE.match(line))
        if score is None:
            return GateOutcome("pylint", False, messages, f"pylint did not finish (exit {res.returncode})")
        # pylint's exit status carries --fail-under and --fail-on; usage errors (32) also fail.
        ok = res.returncode == 0
        return GateOutcome(
            "pylint", ok, messages, f"pylint {score:.2f}/10 ({messages} messages, min {threshold:g})"
        )

    def _ruff(self, ctx: StageContext, paths: list[str]) -> GateOutcome:
        report = ctx.report_path("-ruff.json")
        ctx.progress("ruff")
        res = ctx.run_tool(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--no-cache",
                "--output-format=json",
                f"--output-file={report}",
                *paths,
            ],
            hint=_FIX,
        )
        try:
            findings = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return GateOutcome("ruff", False, 0, f"ruff did not finish (exit {res.returncode})")
        for item in findings:
            loc = item.get("location") or {}
            ctx.log(
                f"ruff: {item.get('filename')}:{loc.get('row')}:{loc.get('column')}: "
                f"{item.get('code')} {item.get('message')}"
            )
        ok = res.returncode == 0 and not findings
        return GateOutcome("ruff", ok, len(findings), f"ruff {len(findings)} findings")

    def _flake8(self, ctx: StageContext, paths: list[str]) -> GateOutcome:
        report = ctx.report_path("-flake8.txt")
        ctx.progress("flake8")
        res = ctx.run_tool([sys.executable, "-m", "flake8", *paths], hint=_FIX)
        report.write_text(res.output + "\n", encoding="utf-8")
        count = sum(1 for line in res.output.splitlines() if re.match(r"^\S+:\d+:\d+: ", line))
        return GateOutcome("flake8", res.returncode == 0, count, f"flake8 {count} findings")

    def _black(self, ctx: StageContext, paths: list[str]) -> GateOutcome:
        report = ctx.report_path("-black.txt")
        ctx.progress("black --check")
        res = ctx.run_tool([sys.executable, "-m", "black", "--check", "--no-color", *paths], hint=_FIX)
        report.write_text(res.output + "\n", encoding="utf-8")
        would = [line for line in res.output.splitlines() if line.startswith("would reformat")]
        if res.returncode not in (0, 1):
            return GateOutcome("black", False, 0, f"black did not finish (exit {res.returncode})")
        return GateOutcome("black", res.returncode == 0, len(would), f"black {len(would)} files to reformat")

    def _mypy(self, ctx: StageContext, paths: list[str]) -> GateOutcome:
        report = ctx.report_path("-mypy.txt")
        ctx.progress("mypy")
        # The report is read by Warnings NG (Jenkinsfile: myPy), whose parser is violations-lib's MyPyParser
        # (tomasbjerre/violations-lib 1.160.5, MyPyParser.java): one issue a line matching
        # ^(.*):(\d+): ([^:]*): (.*)$, so FILE:LINE: SEVERITY: MESSAGE. A column (show_column_numbers or
        # show_error_end in a project's settings) would be read as the line and the line as the file name.
        argv = ["--no-color-output", "--no-error-summary", "--hide-column-numbers", "--hide-error-end"]
        res = ctx.run_tool([sys.executable, "-m", "mypy", *argv, *paths], hint=_FIX)
        report.write_text(res.output + "\n", encoding="utf-8")
        errors = sum(1 for line in res.output.splitlines() if _MYPY_ERROR.match(line))
        if res.returncode not in (0, 1):
            return GateOutcome("mypy", False, errors, f"mypy did not finish (exit {res.returncode})")
        return GateOutcome("mypy", res.returncode == 0, errors, f"mypy {errors} errors")

    def _hadolint(self, ctx: StageContext) -> GateOutcome:
        dockerfiles = find_dockerfiles(ctx.root, ctx.config)
        if not dockerfiles:
            return GateOutcome("hadolint", True, 0, "hadolint: no Dockerfile")
        hadolint = tool_check("hadolint", fix=_FIX)
        ctx.progress("hadolint")
        threshold = ctx.config.lint.hadolint_failure_threshold
        res = ctx.run_tool(
            [
                hadolint.detail if hadolint.ok else "hadolint",
                "--format",
                "json",
                "--no-color",
                "--failure-threshold",
                threshold,
                *[str(p.relative_to(ctx.root)) for p in dockerfiles],
            ],
            hint=_FIX,
        )
        report = ctx.report_path("-hadolint.json")
        try:
            findings = json.loads(res.output.splitlines()[-1]) if res.output.strip() else []
        except ValueError:
            report.write_text(res.output + "\n", encoding="utf-8")
            return GateOutcome("hadolint", False, 0, f"hadolint did not finish (exit {res.returncode})")
        # Only the JSON array, without what hadolint wrote to stderr: Warnings NG (Jenkinsfile: hadoLint)
        # parses the file from its first character (jenkinsci/analysis-model 14.12.0, JsonIssueParser: one
        # JSONTokener value; HadoLintParser reads code, level, line, column, message, file of each element).
        report.write_text(json.dumps(findings) + "\n", encoding="utf-8")
        for item in findings:
            ctx.log(
                f"hadolint: {item.get('file')}:{item.get('line')}: {item.get('code')} "
                f"{item.get('level')}: {item.get('message')}"
            )
        return GateOutcome(
            "hadolint",
            res.returncode == 0,
            len(findings),
            f"hadolint {len(findings)} findings in {len(dockerfiles)} "
            f"Dockerfile{'s' if len(dockerfiles) != 1 else ''}",
        )
