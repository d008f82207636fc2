"""The report formats Jenkins' parsers read, as their own source reads them.

The Jenkinsfile publishes the tool reports under ``reports/stages/`` to Warnings NG (``recordIssues``) and to
the Coverage plugin (``recordCoverage``). Neither can run here, so each check below does what the parser does
with the file, read at the release the pinned plugin bundles (custom_jenkins/plugins.lock.json):

- warnings-ng 13.10153.v011f47a_3ef01 bundles analysis-model 14.12.0 (its ``analysis-model-api`` is
  14.12.0-992), which bundles violations-lib 1.160.5 (jenkinsci/analysis-model ``pom.xml`` at v14.12.0);
- coverage 3.3278.va_04d3e352354 bundles coverage-model 0.71.1 (jenkinsci/coverage-plugin ``plugin/pom.xml``).

Each check returns what the parser would take from the file (the issues or the covered lines), so a test can
ask for more than "it parses": the findings it planted, or a non-empty coverage.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# jenkinsci/analysis-model src/main/java/edu/hm/hafner/analysis/parser/PyLintParser.java, PYLINT_PATTERN
# ("the default pattern matches --output-format=parseable"), used with Matcher.find() by LookaheadParser on
# each line that contains "[" (isLineInteresting). Java's (?<name>) is Python's (?P<name>).
PYLINT_PATTERN = re.compile(
    r"(?P<path>(?:[A-Z]:\\)?[^:]*)(?::(?P<module>.*))?:(?P<line>\d+): "
    r"\[(?P<type>(?P<category>[A-Z])\d*)?(?:\((?P<symbol>.*)\), )?.*?\] (?P<message>.*)"
)
# tomasbjerre/violations-lib 1.160.5 violations-lib/src/main/java/se/bjurr/violations/lib/parsers/
# MyPyParser.java: ViolationParserUtils.getLines(report, "^(.*):(\\d+): ([^:]*): (.*)$"), line by line.
MYPY_PATTERN = re.compile(r"^(.*):(\d+): ([^:]*): (.*)$")


def pylint_issues(path: Path) -> list[dict[str, str]]:
    """The issues PyLintParser takes from a report: every interesting line that the pattern finds."""
    issues = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PYLINT_PATTERN.search(line) if "[" in line else None
        if match:
            issues.append({k: v for k, v in match.groupdict().items() if v is not None})
    return issues


def mypy_issues(path: Path) -> list[tuple[str, int, str, str]]:
    """(file, line, severity, message) of each line MyPyParser matches."""
    found = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        match = MYPY_PATTERN.match(line)
        if match:
            found.append((match.group(1), int(match.group(2)), match.group(3), match.group(4)))
    return found


def json_issues(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """What analysis-model's JsonIssueParser reads: the file's first JSON value (JSONTokener.nextValue), which
    RuffParser and HadoLintParser take as an array of objects (parseJsonArray); an object gives no issue.
    Every element must carry ``fields``, the keys the parser reads (RuffParser: code, message, location,
    filename; HadoLintParser: code, level, line, message, file)."""
    text = path.read_text(encoding="utf-8")
    value, _ = json.JSONDecoder().raw_decode(text)  # the first value, from the first character
    assert isinstance(value, list), f"{path.name}: a JSON array, not {type(value).__name__}"
    for item in value:
        assert isinstance(item, dict) and set(fields) <= item.keys(), f"{path.name}: {item}"
    return value


def sarif_results(path: Path) -> list[dict[str, Any]]:
    """analysis-model SarifAdapter -> violations-lib SarifParser: a SARIF document whose ``runs`` each hold
    ``results`` (iterated without a null check: a run without them fails), each result with a ``message``
    (one without is skipped); findings keep ``ruleId`` and ``locations[].physicalLocation``."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc.get("version") == "2.1.0", f"{path.name}: SARIF version {doc.get('version')}"
    runs = doc.get("runs")
    assert isinstance(runs, list) and runs, f"{path.name}: no runs"
    results: list[dict[str, Any]] = []
    for run in runs:
        assert isinstance(run.get("results"), list), f"{path.name}: a run without results"
        assert run["tool"]["driver"]["name"], f"{path.name}: a run without its tool"
        for result in run["results"]:
            assert "text" in result.get("message", {}), f"{path.name}: a result without a message"
        results += run["results"]
    return results


def cobertura_lines(path: Path) -> dict[str, dict[int, int]]:
    """jenkinsci/coverage-model 0.71.1 src/main/java/edu/hm/hafner/coverage/parser/CoberturaParser.java: the
    root ``coverage``, ``source`` elements, then ``package`` (name) > ``class`` (filename) > ``line``
    (number, hits; branch lines with condition-coverage "N% (covered/total)"). A report without any
    package is an error ("No coverage information found"). Returns {filename: {line: hits}}."""
    root = ET.parse(path).getroot()
    assert root.tag == "coverage", f"{path.name}: root <{root.tag}>"
    assert 0.0 <= float(root.attrib["line-rate"]) <= 1.0
    packages = root.findall("packages/package")
    assert packages, f"{path.name}: no package"
    files: dict[str, dict[int, int]] = {}
    for package in packages:
        assert package.get("name") is not None
        for cls in package.iter("class"):
            # coverage.py writes one class per file: a name twice is two files the parser would merge
            assert cls.attrib["filename"] not in files, f"{path.name}: {cls.attrib['filename']} twice"
            lines = files.setdefault(cls.attrib["filename"], {})
            for line in cls.iter("line"):
                if line.get("branch") == "true":
                    assert re.fullmatch(r".*\((\d+)/(\d+)\)", line.attrib["condition-coverage"])
                lines[int(line.attrib["number"])] = int(line.attrib["hits"])
    return files
