"""One cache for every stage (``pipeline/cache.py``, the runner's use of it) and the run-state contract.

The runner tests use small real stages with declared inputs in a real git repository; the stage
tests compute the real stages' fingerprints on a copy of this project and change one input at a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipeline import cache, config, planning, report, results, runner
from pipeline.errors import StalePrerequisite
from pipeline.outputs import Outputs
from pipeline.stages import BY_NAME
from pipeline.stages.base import Stage, StageContext, StageResult
from pipeline.state import RunState
from tests.conftest import ROOT, record_passes, run_cli
from tests.pipeline.test_runner import Recorder


def git_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


@dataclass(frozen=True)
class CountOutputs(Outputs):
    stage: ClassVar[str] = "count"
    runs: int


@dataclass(frozen=True)
class AfterOutputs(Outputs):
    stage: ClassVar[str] = "after"
    seen: int


@dataclass(frozen=True)
class SneakyOutputs(Outputs):
    stage: ClassVar[str] = "sneaky"
    x: int


@dataclass(frozen=True)
class ForeignCountOutputs(Outputs):
    """Claims to be count's outputs, but is not the class count declares."""

    stage: ClassVar[str] = "count"
    runs: int


class Counting(Stage):
    """Reads ``src/`` and ``lint.paths``, writes a report beside its log, records how often it ran."""

    name = "count"
    cacheable = True
    outputs = CountOutputs
    runs = 0
    fail = False

    def inputs(self, config: config.Config) -> cache.Inputs:
        del config
        return cache.Inputs(files=("src",), config=("lint.paths",), tools=("python",))

    def run(self, ctx: StageContext) -> StageResult:
        type(self).runs += 1
        ctx.report_path("-report.txt").write_text(f"run {self.runs}\n", encoding="utf-8")
        if self.fail:
            raise ValueError("broken on purpose")
        ctx.record(CountOutputs(runs=self.runs))
        return StageResult(summary=f"ran {self.runs} times", artifacts={"runs": self.runs})


class After(Stage):
    """Needs ``count``; its inputs are ``count``'s outputs."""

    name = "after"
    needs = ("count",)
    cacheable = True
    outputs = AfterOutputs

    def inputs(self, config: config.Config) -> cache.Inputs:
        del config
        return cache.Inputs(upstream=("count.runs",))

    def run(self, ctx: StageContext) -> StageResult:
        counted = ctx.read(CountOutputs)
        assert counted is not None
        ctx.record(AfterOutputs(seen=counted.runs))
        return StageResult(summary="after")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    Counting.runs, Counting.fail = 0, False
    return git_repo(tmp_path / "repo", {"src/a.py": "A = 1\n", "README.md": "# readme\n"})


def run(root: Path, *stages: Stage, sets: tuple[str, ...] = (), **options: Any) -> results.RunResult:
    cfg = config.load(root, overrides=list(sets), environ={})
    plan = planning.select(list(stages), stage=",".join(s.name for s in stages))
    state = RunState.load(cfg.state_file)
    planning.check_inputs(plan, cfg, state)
    result = runner.Runner(cfg, state, Recorder(), **options).execute(plan)
    report.write_reports(result, cfg.report_dir)
    return result


def status(result: results.RunResult, name: str = "count") -> str:
    return next(s.status for s in result.stages if s.name == name)


def stage_log(root: Path, name: str = "count") -> str:
    return (root / "reports" / "stages" / f"{name}.log").read_text(encoding="utf-8")


def test_a_second_run_with_the_same_inputs_is_cached_and_still_reported(repo: Path) -> None:
    assert status(run(repo, Counting())) == "passed"
    shutil.rmtree(repo / "reports")  # as Jenkins does after archiving

    result = run(repo, Counting())

    assert status(result) == "cached" and Counting.runs == 1
    stage = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["stages"][0]
    assert (
        stage["status"] == "cached"
        and stage["summary"] == "ran 1 times"
        and stage["artifacts"] == {"runs": 1}
    )
    case = ET.parse(repo / "reports" / "pipeline-junit.xml").getroot().find(".//testcase")
    assert case is not None and case.get("name") == "count"
    assert case.find("failure") is None and case.find("skipped") is None
    assert (repo / "reports" / "stages" / "count-report.txt").read_text(encoding="utf-8") == "run 1\n"
    log = stage_log(repo)
    assert "# cached: inputs unchanged" in log and "# --- the log of that run ---" in log


def test_the_dry_run_and_the_run_take_their_verdicts_from_the_one_plan_function(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever ``planning.CacheJudge.verdict`` decides is what the dry run shows and what the run does."""
    first = run(repo, Counting()).run_id
    decide = planning.CacheJudge.verdict
    asked: list[str] = []

    def decided_here(judge: planning.CacheJudge, stage: Stage) -> planning.CacheVerdict:
        asked.append(stage.name)
        verdict = decide(judge, stage)
        return planning.CacheVerdict(verdict.reusable, f"decided here ({verdict.why})", verdict.inputs)

    monkeypatch.setattr(planning.CacheJudge, "verdict", decided_here)
    cfg = config.load(repo, environ={})
    plan = planning.select([Counting()], stage="count")

    def dry_run(**forcing: Any) -> str:
        judge = planning.CacheJudge(cfg, RunState.load(cfg.state_file), **forcing)
        return planning.dry_run(plan, judge).stages[0].verdict

    assert dry_run() == f"cached: decided here (inputs unchanged since run {first})"
    assert status(run(repo, Counting())) == "cached" and Counting.runs == 1
    assert f"# cached: decided here (inputs unchanged since run {first})" in stage_log(repo)
    assert dry_run(rerun={"count"}) == "runs: decided here (forced (--no-cache or --rerun))"
    assert status(run(repo, Counting(), rerun={"count"})) == "passed" and Counting.runs == 2
    assert "# runs: decided here (forced (--no-cache or --rerun))" in stage_log(repo)
    assert asked == ["count"] * 4


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root: (root / "src" / "a.py").write_text("A = 2\n", encoding="utf-8"), id="file"),
        pytest.param(
            lambda root: (root / "src" / "new.py").write_text("B = 1\n", encoding="utf-8"), id="new-file"
        ),
        pytest.param(lambda root: (root / "src" / "a.py").unlink(), id="deleted-file"),
    ],
)
def test_a_changed_declared_file_runs_the_stage_again(repo: Path, change: Any) -> None:
    run(repo, Counting())
    change(repo)
    result = run(repo, Counting())
    assert status(result) == "passed" and Counting.runs == 2
    assert "# runs: " in stage_log(repo) and "src/" in stage_log(repo)


def test_a_changed_config_key_runs_it_again_and_says_which(repo: Path) -> None:
    run(repo, Counting())
    assert status(run(repo, Counting(), sets=("lint.paths=src,other",))) == "passed"
    assert "config lint.paths" in stage_log(repo)
    assert (
        status(run(repo, Counting(), sets=("trivy.severity=LOW",))) == "passed"
    )  # back to lint.paths' default
    assert status(run(repo, Counting(), sets=("trivy.severity=CRITICAL",))) == "cached", "an undeclared key"


def test_an_undeclared_file_changes_nothing(repo: Path) -> None:
    run(repo, Counting())
    (repo / "README.md").write_text("# changed\n", encoding="utf-8")
    (repo / "notes.txt").write_text("untracked\n", encoding="utf-8")
    assert status(run(repo, Counting())) == "cached"


def test_a_changed_upstream_output_runs_the_stage_after_it(repo: Path) -> None:
    run(repo, Counting(), After())
    assert [status(run(repo, Counting(), After()), n) for n in ("count", "after")] == ["cached", "cached"]
    (repo / "src" / "a.py").write_text("A = 3\n", encoding="utf-8")
    result = run(repo, Counting(), After())
    assert [status(result, n) for n in ("count", "after")] == ["passed", "passed"]


def test_a_failed_stage_is_never_cached(repo: Path) -> None:
    Counting.fail = True
    assert status(run(repo, Counting())) == "failed"
    assert status(run(repo, Counting())) == "failed" and Counting.runs == 2
    Counting.fail = False
    assert status(run(repo, Counting())) == "passed"
    assert status(run(repo, Counting())) == "cached" and Counting.runs == 3


def test_no_cache_and_rerun_force_the_work(repo: Path) -> None:
    run(repo, Counting())
    assert status(run(repo, Counting(), no_cache=True)) == "passed"
    assert status(run(repo, Counting(), rerun=("count",))) == "passed" and Counting.runs == 3
    assert "forced (--no-cache or --rerun)" in stage_log(repo)


def test_a_corrupt_cache_entry_is_ignored_with_a_warning(repo: Path) -> None:
    run(repo, Counting())
    (repo / ".pipeline" / "cache" / "count" / "count-report.txt").write_text("tampered\n", encoding="utf-8")
    assert status(run(repo, Counting())) == "passed" and Counting.runs == 2
    assert "warning: the cache entry of 'count' is not used" in stage_log(repo)
    shutil.rmtree(repo / ".pipeline" / "cache")
    assert status(run(repo, Counting())) == "passed", "a missing entry: run"
    assert status(run(repo, Counting())) == "cached", "and the new pass is stored"


def test_a_stale_prerequisite_is_refused_naming_it(repo: Path) -> None:
    run(repo, Counting())
    (repo / "src" / "a.py").write_text("A = 4\n", encoding="utf-8")
    cfg = config.load(repo, environ={})
    plan = planning.select([Counting(), After()], stage="after")
    with pytest.raises(StalePrerequisite) as caught:
        planning.check_inputs(plan, cfg, RunState.load(cfg.state_file))
    assert "needs 'count'" in caught.value.message and "src/a.py changed" in caught.value.message
    assert "--skip count" in (caught.value.hint or "")
    waived = planning.select([Counting(), After()], stage="after", skip="count")
    planning.check_inputs(waived, cfg, RunState.load(cfg.state_file))


class ReadsUndeclared(Stage):
    name = "sneaky"
    needs = ("count",)
    outputs = SneakyOutputs
    reads: ClassVar[type[Outputs]] = ForeignCountOutputs

    def run(self, ctx: StageContext) -> StageResult:
        ctx.read(self.reads)
        return StageResult()


class RecordsUndeclared(Stage):
    name = "sneaky"
    outputs = SneakyOutputs
    value: ClassVar[Outputs] = AfterOutputs(seen=1)

    def run(self, ctx: StageContext) -> StageResult:
        ctx.record(self.value)
        return StageResult()


@pytest.mark.parametrize(
    "stage, message",
    [
        (ReadsUndeclared(), "reads ForeignCountOutputs, but 'count' records CountOutputs"),
        (RecordsUndeclared(), "records AfterOutputs, but declares"),
    ],
)
def test_a_stage_outside_its_contract_fails(repo: Path, stage: Stage, message: str) -> None:
    stages = [Counting(), stage] if stage.needs else [stage]
    result = run(repo, *stages)
    sneaky = next(s for s in result.stages if s.name == "sneaky")
    assert sneaky.status == "failed" and message in (sneaky.error or "")


def test_a_stage_that_does_not_need_another_cannot_read_it(repo: Path) -> None:
    class Stranger(ReadsUndeclared):
        needs = ()
        reads = CountOutputs

    run(repo, Counting())
    result = run(repo, Stranger())
    assert "does not need 'count'" in (result.stages[0].error or "")


def test_a_wrongly_typed_output_fails(repo: Path) -> None:
    class WrongType(RecordsUndeclared):
        value = SneakyOutputs(x="not an int")  # type: ignore[arg-type]  # what mypy would refuse

    assert "sneaky.x is 'not an int', not int" in (run(repo, WrongType()).stages[0].error or "")


# --- the real stages' declarations --------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project's tracked files in a fresh git repository, with a model where train leaves it."""
    root = tmp_path_factory.mktemp("project")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    files = {}
    for rel in filter(None, listed.split("\0")):
        if (ROOT / rel).is_file():
            files[rel] = (ROOT / rel).read_text(encoding="utf-8", errors="replace")
    git_repo(root, files)
    (root / "model").mkdir()
    (root / "model" / "iris_model.onnx").write_text("model", encoding="utf-8")
    return root


def fingerprints(root: Path) -> dict[str, dict[str, str]]:
    cfg = config.load(root, environ={})
    state = RunState.load(cfg.state_file)
    fingerprinter = cache.Fingerprinter(root)
    return {name: planning.fingerprint(stage, cfg, state, fingerprinter) for name, stage in BY_NAME.items()}


def changed_stages(root: Path, rel: str, text: str) -> set[str]:
    before = fingerprints(root)
    path = root / rel
    old = path.read_text(encoding="utf-8") if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        after = fingerprints(root)
    finally:
        if old is None:
            path.unlink()
        else:
            path.write_text(old, encoding="utf-8")
    return {name for name in before if cache.key(before[name]) != cache.key(after[name])}


@pytest.mark.parametrize(
    "rel, stages",
    [
        ("README.md", {"trivy-fs"}),  # prose: only the scanner of the whole tree reads it
        ("app/__init__.py", {"lint", "test", "trivy-fs", "build"}),
        ("model_training/train.py", {"lint", "train", "test", "trivy-fs"}),
        ("tests/test_new.py", {"lint", "test", "trivy-fs"}),
        ("Dockerfile", {"lint", "test", "trivy-fs", "build"}),
        ("pyproject.toml", {"lint", "test", "trivy-fs"}),
        ("model/iris_model.onnx", {"build"}),  # the model is in the image's context, not in git
        (".env", {"trivy-fs"}),  # git-ignored, but Trivy reads it (a planted secret)
    ],
)
def test_each_file_reruns_exactly_the_stages_that_read_it(project: Path, rel: str, stages: set[str]) -> None:
    assert changed_stages(project, rel, "changed = True\n") == stages


# Each settings file a linter of lint looks up by name (pipeline/stages/lint.py cites each tool's lookup).
LINT_SETTINGS = [
    "ruff.toml",  # ruff
    ".ruff.toml",
    "pipeline/ruff.toml",  # the one nearest to each file, for ruff
    "pyproject.toml",  # ruff, black, mypy, pylint
    ".gitignore",  # black's and ruff's excludes
    "mypy.ini",  # mypy
    ".mypy.ini",
    "setup.cfg",  # mypy, pylint, flake8
    "pylintrc",  # pylint
    ".pylintrc",
    "pylintrc.toml",
    ".pylintrc.toml",
    "tox.ini",  # pylint, flake8
    ".flake8",  # flake8
    ".hadolint.yaml",  # hadolint
    ".hadolint.yml",
]


@pytest.mark.parametrize("rel", LINT_SETTINGS)
def test_each_linter_settings_file_is_an_input_of_lint(project: Path, rel: str) -> None:
    assert "lint" in changed_stages(project, rel, "[tool.ruff]\nchanged = true\n")


@pytest.mark.parametrize("rel", LINT_SETTINGS)
def test_a_git_ignored_settings_file_still_counts(project: Path, rel: str) -> None:
    """A linter reads its settings whatever git thinks of them."""
    if rel == ".gitignore":
        pytest.skip("the file that ignores")
    ignore = project / ".gitignore"
    before = ignore.read_text(encoding="utf-8")
    ignore.write_text(before + f"\n/{rel}\n", encoding="utf-8")
    try:
        assert "lint" in changed_stages(project, rel, "[tool.ruff]\nchanged = true\n")
    finally:
        ignore.write_text(before, encoding="utf-8")


@pytest.mark.parametrize("rel", [".trivyignore", ".trivyignore.yaml", "trivy.yaml", "trivy-secret.yaml"])
def test_each_file_trivy_reads_by_name_is_an_input_of_both_scans(project: Path, rel: str) -> None:
    assert {"trivy-fs", "trivy-image"} <= changed_stages(project, rel, "aws-access-key-id\n")


def test_config_and_upstream_inputs_of_the_real_stages(project: Path) -> None:
    prints = fingerprints(project)
    assert "config:trivy.severity" in prints["trivy-fs"] and "config:trivy.severity" in prints["trivy-image"]
    assert "config:lint.pylint_fail_under" in prints["lint"] and "tool:pylint" in prints["lint"]
    assert "config:train.min_cv_accuracy" in prints["train"] and "tool:scikit-learn" in prints["train"]
    assert "upstream:train.model_version" in prints["test"]
    assert "upstream:build.image_id" in prints["trivy-image"] and "extra:trivy-db" in prints["trivy-image"]
    assert (
        not BY_NAME["smoke"].cacheable and not BY_NAME["push"].cacheable and not BY_NAME["deploy"].cacheable
    )


def test_the_vulnerability_db_version_is_an_input_of_both_scans(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "trivy-cache" / "db"
    db.mkdir(parents=True)
    meta = {"Version": 2, "NextUpdate": "2099-01-01T00:00:00Z", "UpdatedAt": "2024-01-01T00:00:00Z"}
    (db / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    sets = [f"trivy.cache_dir={db.parent}", "trivy.skip_db_update=true"]

    def db_input() -> str:
        cfg = config.load(project, overrides=sets, environ={})
        return cache.fingerprint(
            BY_NAME["trivy-fs"].inputs(cfg), cfg, lambda _: None, cache.Fingerprinter(project)
        )["extra:trivy-db"]

    first = db_input()
    (db / "metadata.json").write_text(
        json.dumps({**meta, "UpdatedAt": "2024-02-01T00:00:00Z"}), encoding="utf-8"
    )
    assert db_input() != first and "2024-02-01" in db_input()


def test_select_and_explain() -> None:
    fingerprinter = cache.Fingerprinter(ROOT)
    app = fingerprinter.select(("app",))
    assert "app/__init__.py" in app and all(p.startswith("app/") for p in app)
    assert not [p for p in fingerprinter.select(("*", "!*.md")) if p.endswith(".md")]
    before = {"file:a.py": "1", "config:x": '"a"', "tool:t": "1.0"}
    after = {"file:a.py": "2", "config:x": '"b"', "tool:t": "1.0", "file:b.py": "3"}
    assert cache.explain(before, after) == 'config x "a" -> "b", a.py changed, b.py added'
    assert cache.explain(before, before) == "inputs unchanged"


# --- the CLI ---------------------------------------------------------------------------------------


def test_dry_run_says_what_would_run_and_why(tmp_path: Path) -> None:
    repo = git_repo(
        tmp_path / "r", {"pipeline.toml": '[train]\ninputs = ["trainer"]\n', "trainer/x.py": "X = 1\n"}
    )
    record_passes(repo, train={"model_version": "abc"})
    out = run_cli(["run", "--stage", "train,test", "--dry-run"], repo)
    assert out.returncode == 0, out.stderr
    assert "-> cached: inputs unchanged since run r0" in out.stdout
    (repo / "trainer" / "x.py").write_text("X = 2\n", encoding="utf-8")
    out = run_cli(["run", "--stage", "train", "--dry-run"], repo)
    assert "-> runs: trainer/x.py changed" in out.stdout
    out = run_cli(["run", "--stage", "train", "--dry-run", "--rerun", "train"], repo)
    assert "-> runs: forced" in out.stdout
    out = run_cli(["run", "--stage", "test"], repo)
    assert out.returncode == 2 and "stage 'test' needs 'train', whose last pass is stale" in out.stderr
    assert "trainer/x.py changed" in out.stderr
    out = run_cli(["run", "--stage", "train", "--rerun", "lint"], repo)
    assert out.returncode == 2 and "--rerun: lint not selected" in out.stderr
