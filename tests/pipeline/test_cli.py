"""pipeline.cli through typer's runner and as a real ``python -m pipeline`` subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.outputs import BuildOutputs, PromotionOutputs, TrainOutputs
from tests.conftest import README_STAGES, ROOT, interrupt_cli, record_passes, run_cli
from tests.support.processes import find_processes

ANSI = "\x1b["

FIXTURE_TOML = """
[lint]
paths = ["pkg"]
[test]
paths = ["tests"]
markers = ""
coverage = []
workers = 1
"""


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None):
    monkeypatch.chdir(cwd)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(app, args)


def test_list_and_help(monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(["list"], ROOT, monkeypatch)
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(README_STAGES)
    result = invoke(["run", "--help"], ROOT, monkeypatch)
    for flag in (
        "--stage",
        "--from",
        "--skip",
        "--profile",
        "--set",
        "--dry-run",
        "--keep-going",
        "--jobs",
        "--report-dir",
    ):
        assert flag in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--stage", "nope"], "unknown stage 'nope'"),
        (["run", "--set", "trivy.severity"], "not KEY=VALUE"),
        (["run", "--set", "trivy.sevrity=LOW"], "trivy.sevrity"),
        (["run", "--profile", "prod"], "unknown profile 'prod'"),
        (["config", "--set", "pipeline.jobs=many"], "pipeline.jobs"),
        (["doctor", "--set", "deploy.target=mars"], "deploy.target"),
    ],
)
def test_usage_and_config_errors_exit_2(
    monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    result = invoke(args, ROOT, monkeypatch)
    assert result.exit_code == 2, result.output
    assert needle in result.output


PROFILE_FIX = "name a profile of pipeline.toml (local, aws)"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["run", "--stage", ""], {}, "error: --stage is empty: pass 'all' or stage names"),
        (["run", "--stage", " , "], {}, "error: --stage is empty: pass 'all' or stage names"),
        (["doctor", "--stage", ""], {}, "error: --stage is empty: pass 'all' or stage names"),
        (["run", "--profile", ""], {}, f"error: --profile is empty: {PROFILE_FIX}, or leave the option out"),
        (
            ["run", "--profile", "  "],
            {},
            f"error: --profile is empty: {PROFILE_FIX}, or leave the option out",
        ),
        (
            ["doctor", "--profile", ""],
            {},
            f"error: --profile is empty: {PROFILE_FIX}, or leave the option out",
        ),
        (
            ["config", "--profile", ""],
            {},
            f"error: --profile is empty: {PROFILE_FIX}, or leave the option out",
        ),
        (
            ["rollback", "--profile", ""],
            {},
            f"error: --profile is empty: {PROFILE_FIX}, or leave the option out",
        ),
        (
            ["run"],
            {"PIPELINE_PROFILE": ""},
            f"error: PIPELINE_PROFILE is set but empty: {PROFILE_FIX}, or unset",
        ),
        (["config"], {"PIPELINE_PROFILE": " "}, f"error: PIPELINE_PROFILE is set but empty: {PROFILE_FIX}"),
    ],
)
def test_an_empty_stage_or_profile_exits_2_and_says_what_to_pass(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], message: str
) -> None:
    """Empty is what Jenkins' first build passed for a parameter: never read it as the default."""
    monkeypatch.delenv("PIPELINE_PROFILE", raising=False)
    result = invoke([*args, "--dry-run"] if args[0] == "run" else args, ROOT, monkeypatch, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "plan (profile" not in result.output and "doctor (profile" not in result.output


def test_an_empty_profile_exits_2_as_a_subprocess_and_lists_the_files_profiles(make_repo) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML + "[profiles.staging]\n[profiles.prod]\n"})
    proc = run_cli(["run", "--stage", "lint", "--profile", "", "--dry-run"], repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "error: --profile is empty: name a profile of pipeline.toml (local, staging, prod), "
        "or leave the option out"
    )
    assert proc.stdout == ""
    proc = run_cli(["run", "--stage", "", "--dry-run"], repo)
    assert proc.returncode == 2 and "error: --stage is empty" in proc.stderr, proc.stderr


def test_an_unset_profile_still_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_PROFILE", raising=False)
    result = invoke(["run", "--stage", "lint", "--dry-run"], ROOT, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "plan (profile local" in result.output
    result = invoke(
        ["run", "--stage", "lint", "--dry-run"], ROOT, monkeypatch, env={"PIPELINE_PROFILE": "aws"}
    )
    assert result.exit_code == 0 and "plan (profile aws" in result.output, result.output


def test_missing_prerequisite_exits_2(make_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    result = invoke(["run", "--stage", "test"], repo, monkeypatch)
    assert result.exit_code == 2
    assert "run 'python -m pipeline run --stage train' first" in result.output


def test_config_shows_sources_and_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(
        ["config", "--profile", "aws", "--set", "trivy.severity=CRITICAL"],
        ROOT,
        monkeypatch,
        env={"REGISTRY_PASSWORD": "hunter2-very-secret", "REGISTRY_USERNAME": "ci-bot"},
    )
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.startswith("trivy.severity"))
    assert "'CRITICAL'" in line and "# --set" in line
    assert "[profiles.aws]" in next(
        line for line in result.output.splitlines() if line.startswith("deploy.target")
    )
    assert "hunter2" not in result.output
    assert "<set>" in result.output


def test_dry_run_runs_nothing(make_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    result = invoke(["run", "--stage", "lint,train,test", "--dry-run"], repo, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "1. lint" in result.output and "3. test" in result.output
    assert "model_training --output-dir model" in result.output
    assert not (repo / "reports").exists() and not (repo / ".pipeline").exists()


def test_the_dry_run_never_calls_cached_what_the_run_rebuilds(make_repo) -> None:
    """Issue 26: after a change of training parameters the dry run said build was cached, and the run rebuilt.
    Build packs the model train makes: when train runs, build's inputs are only known then."""
    repo = make_repo(
        {
            "pipeline.toml": FIXTURE_TOML,
            "model_training/params.py": "N_ESTIMATORS = 100\n",
            "Dockerfile": "FROM scratch\nCOPY model/ /model/\n",
            ".dockerignore": "reports\n.pipeline\nmodel_training\n",  # as the project's: only the model
            "model/iris_model.onnx": "model",
        }
    )
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    train = TrainOutputs(model_version="m1", model_dir="model", cv_accuracy_mean=0.95)
    built = BuildOutputs(
        image_id="sha256:" + "a" * 64, tags=["r:t"], image="r:t", model_version="m1", model=None
    )
    waived = PromotionOutputs("waived", "m1", None, "local:x", None, None, "waived")
    record_passes(
        repo,
        lint={},
        train=train.to_json(),
        promotion=waived.to_json(),
        test={},
        trivy_fs={},
        build=built.to_json(),
    )
    dry_run = ["run", "--stage", "train,promotion,build", "--dry-run"]
    before = run_cli(dry_run, repo)
    assert before.stdout.count("-> cached: inputs unchanged") == 3, before.stdout

    (repo / "model_training" / "params.py").write_text("N_ESTIMATORS = 1\n", encoding="utf-8")
    after = run_cli(dry_run, repo)

    assert after.returncode == 0, after.stdout + after.stderr
    train_part, promotion_part, build_part = re.split(r"\n\d\. (?:promotion|build) ", after.stdout)
    assert "-> runs:" in train_part
    assert "-> runs unless what it reads from train comes out unchanged" in promotion_part
    assert "-> runs unless what it reads from train comes out unchanged" in build_part


def test_doctor_reports_missing_tool_with_exit_3(make_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    result = invoke(["doctor", "--stage", "lint"], repo, monkeypatch)
    assert result.exit_code == 3, result.output
    assert "✗" in result.output and "pylint" in result.output


def test_status_shows_each_stages_typed_outputs(make_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.state import RunState, StageRecord

    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    state = RunState.load(repo / ".pipeline" / "state.json")
    train = TrainOutputs(model_version="m1", model_dir="model", cv_accuracy_mean=0.95)
    state.put("train", StageRecord("passed", "t1", "r1", "trained", outputs=train.to_json()))
    state.put("test", StageRecord("failed", "t2", "r1", "2 failed"))
    result = invoke(["status"], repo, monkeypatch)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "train        passed   t1  trained",
        "               cv_accuracy_mean: 0.95",
        "               model_dir: model",
        "               model_version: m1",
        "test         failed   t2  2 failed",
    ]
    state.put("train", StageRecord("passed", "t1", "r1", "trained", outputs={"model_version": 1}))
    result = invoke(["status"], repo, monkeypatch)
    assert result.exit_code == 2 and "train.model_version is 1, not str" in result.output


def test_status_and_rollback_before_any_deploy(make_repo, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    assert "no run recorded" in invoke(["status"], repo, monkeypatch).output
    result = invoke(["rollback", "--set", "deploy.local.container_name=svc"], repo, monkeypatch)
    assert result.exit_code == 2
    assert "no release of container svc is recorded" in result.output


def test_help_is_fast_and_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['pipeline', '--help']\n"
        "from pipeline.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('docker', 'boto3', 'botocore', 'sklearn', 'onnxruntime') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_subprocess_plain_output_and_reports(make_repo) -> None:
    repo = make_repo(
        {
            "pipeline.toml": FIXTURE_TOML,
            "tests/test_ok.py": "def test_ok():\n    assert 1 + 1 == 2\n",
        }
    )
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test"], repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ANSI not in proc.stdout and ANSI not in proc.stderr
    assert "[test] passed" in proc.stdout and "1 passed, 0 failed, 0 skipped" in proc.stdout
    doc = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    assert doc["status"] == "passed" and doc["stages"][0]["name"] == "test"
    assert (repo / "reports" / "pipeline-junit.xml").exists()
    assert (repo / "reports" / "stages" / "test.log").exists()
    assert (repo / "reports" / "stages" / "test-junit.xml").exists()


def test_sigint_stops_the_stage_writes_reports_and_exits_130(make_repo) -> None:
    repo = make_repo(
        {
            "pipeline.toml": FIXTURE_TOML,
            "tests/test_slow.py": "import time\n\ndef test_slow():\n    time.sleep(60)\n",
        }
    )
    record_passes(repo, train={})
    # "$ " starts the logged pytest command; then let pytest get into the sleeping test
    run = interrupt_cli(
        ["run", "--stage", "test"],
        repo,
        log=repo / "reports" / "stages" / "test.log",
        ready="$ ",
        settle_s=1.5,
    )
    assert run.returncode == 130, run.output
    assert run.seconds_to_exit < 15
    doc = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    assert doc["status"] == "interrupted"
    assert doc["stages"][0]["status"] == "failed" and "interrupted" in doc["stages"][0]["error"]
    leftover = find_processes(f"pytest tests --junitxml={repo}")
    assert not leftover, f"the pytest child was stopped: {leftover}"


def _wait_until_it_catches(pid: int, signum: int, timeout_s: float = 30) -> None:
    """Until process ``pid`` has a handler for ``signum`` (``SigCgt`` in /proc/PID/status): before that,
    no Python program can do anything about a signal, however early its first line installs one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines()
        caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} installed no handler for signal {signum} in {timeout_s} s")


@pytest.mark.parametrize(
    "secret", [{}, {"REGISTRY_PASSWORD": "hunter2-secret"}], ids=["plain", "started-again"]
)
@pytest.mark.parametrize("after_s", [0.0, 0.35])
def test_sigterm_before_any_stage_started_exits_130(
    make_repo, after_s: float, secret: dict[str, str]
) -> None:
    """Jenkins may abort a build whose pipeline is still starting: that is an interrupt (130) too, not
    Python's default death by signal (143 in the shell). The signal comes ``after_s`` after the process
    can first catch it (while it imports, reads the config, plans). The run itself lasts (its one test
    sleeps), so that the signal can never come after it ended on a fast machine. With a credential in its
    environment the pipeline starts itself again first (pipeline.secret_env), signals blocked across it."""
    repo = make_repo(
        {
            "pipeline.toml": FIXTURE_TOML,
            "tests/test_slow.py": "import time\n\ndef test_slow():\n    time.sleep(30)\n",
        }
    )
    record_passes(repo, train={})
    proc = subprocess.Popen(  # pylint: disable=consider-using-with  # signalled, then communicate()
        [sys.executable, "-m", "pipeline", "run", "--stage", "test"],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", **secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_until_it_catches(proc.pid, signal.SIGTERM)
    time.sleep(after_s)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "SIGTERM received: stopping" in out and "Traceback" not in out


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MiB tmpfs of this test's own (the test bed runs as root), unmounted afterwards: room enough for
    the report folder's check (16 MiB free), small enough to fill in a moment."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (run the suite as root, as on the test bed): {done.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Write into ``disk`` until it has no byte left."""
    with (disk / "filler").open("ab") as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()


def test_a_full_report_disk_exits_2_before_any_stage(make_repo, small_disk: Path) -> None:
    """An empty file needs no space: the report folder's check writes data, and looks at the free space."""
    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    fill(small_disk)
    proc = run_cli(["run", "--stage", "lint", "--report-dir", str(small_disk / "reports")], repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"disk full: cannot write the reports to {small_disk / 'reports'}" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (repo / ".pipeline" / "state.json").exists(), "no stage ran"


def test_a_disk_that_fills_during_the_run_is_said_not_a_traceback(make_repo, small_disk: Path) -> None:
    """The disk fills while a stage runs (here its own test does it): the stage goes on without its log, and
    the run ends with the stage's verdict and "disk full" with the path, never a traceback."""
    repo = make_repo(
        {
            "pipeline.toml": FIXTURE_TOML,
            "tests/test_fill.py": (
                "def test_fill():\n"
                f"    with open({str(small_disk / 'filler')!r}, 'ab') as fh:\n"
                "        try:\n"
                "            while True:\n"
                "                fh.write(bytes(65536)); fh.flush()\n"
                "        except OSError:\n"
                "            pass\n"
            ),
        }
    )
    record_passes(repo, train={})
    proc = run_cli(["run", "--stage", "test", "--report-dir", str(small_disk / "reports")], repo)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert "[test] started" in proc.stdout, "the disk had room when the run started"
    assert "the stage goes on without its log" in proc.stderr, output
    assert f"disk full: cannot write the reports to {small_disk / 'reports'}" in proc.stderr, output
    assert proc.returncode == 1, output  # the stage's verdict (its JUnit could not be written either)


@pytest.mark.parametrize(
    ("build_url", "recorded"),
    [
        ("https://ci.example.com/job/iris-classifier/7/", "https://ci.example.com/job/iris-classifier/7/"),
        ("javascript:alert(1)", None),
        (None, None),
    ],
    ids=["jenkins", "not-a-url", "no-ci"],
)
def test_the_reports_link_back_to_the_ci_build(
    make_repo, build_url: str | None, recorded: str | None
) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML, "tests/test_ok.py": "def test_ok():\n    pass\n"})
    record_passes(repo, train={})
    env = {"BUILD_URL": build_url or ""}  # "" also when the suite itself runs in Jenkins
    proc = run_cli(["run", "--stage", "test"], repo, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))
    assert doc["build_url"] == recorded
    page = (repo / "reports" / "index.html").read_text(encoding="utf-8")
    assert ('id="build-url"' in page) == (recorded is not None)
    assert "javascript:" not in page


def test_a_damaged_history_never_fails_a_run_and_loses_no_entry(make_repo) -> None:
    """Garbage bytes (not UTF-8) and a torn last line in .pipeline/history.jsonl: the next run ends normally
    with its reports, its entry is a line of its own, and ``history`` skips the bad lines with a warning."""
    repo = make_repo({"pipeline.toml": FIXTURE_TOML, "tests/test_ok.py": "def test_ok():\n    pass\n"})
    record_passes(repo, train={})
    assert run_cli(["run", "--stage", "test"], repo).returncode == 0
    path = repo / ".pipeline" / "history.jsonl"
    with path.open("ab") as fh:
        fh.write(b"\xff\xfe garbage\n")
        fh.write(b'{"run_id": "torn-by-a-kill", "started_')  # no newline: the write was cut short

    proc = run_cli(["run", "--stage", "test"], repo)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for name in ("pipeline.json", "pipeline-junit.xml", "index.html"):
        assert (repo / "reports" / name).is_file(), name
    run_id = json.loads((repo / "reports" / "pipeline.json").read_text(encoding="utf-8"))["run_id"]
    shown = run_cli(["history", "--json"], repo)
    assert shown.returncode == 0, shown.stderr
    runs = [json.loads(line)["run_id"] for line in shown.stdout.splitlines()]
    assert len(runs) == 2 and runs[0] == run_id, runs
    assert "2 line(s)" in shown.stderr and "skipped" in shown.stderr


@pytest.mark.parametrize(
    ("args", "planned"),
    [
        (["--stage", "lint", "--stage", "train"], ["lint", "train"]),
        (["--stage", "lint,train", "--stage", "test"], ["lint", "train", "test"]),
        (["--stage", "all", "--skip", "push", "--skip", "deploy"], None),
    ],
    ids=["stage-twice", "stage-lists-add-up", "skip-twice"],
)
def test_repeated_stage_options_add_up(
    args: list[str], planned: list[str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(["run", *args, "--dry-run"], ROOT, monkeypatch)
    assert result.exit_code == 0, result.output
    steps = [line.split()[1] for line in result.output.splitlines() if line[:1].isdigit()]
    if planned is not None:
        assert steps == planned
    else:
        assert "push" not in steps and "deploy" not in steps and "smoke" in steps


@pytest.mark.parametrize("flag", ["--profile", "--from", "--report-dir"])
def test_an_option_that_names_one_thing_is_refused_twice(flag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"--profile": ("local", "aws"), "--from": ("lint", "test"), "--report-dir": ("r1", "r2")}[flag]
    result = invoke(["run", "--dry-run", flag, values[0], flag, values[1]], ROOT, monkeypatch)
    assert result.exit_code == 2, result.output
    assert f"{flag} is given 2 times" in result.output


def test_doctor_shows_tool_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(["doctor", "--stage", "lint,test"], ROOT, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "pylint 4." in result.output and "hadolint" in result.output.lower()
    assert "✗" not in result.output


def test_an_unwritable_report_dir_exits_2_before_any_stage(
    make_repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML, "a-file": ""})

    result = invoke(["run", "--stage", "lint", "--report-dir", "a-file/reports"], repo, monkeypatch)

    assert result.exit_code == 2, result.output
    assert "cannot write reports to" in result.output and "Not a directory" in result.output
    assert not (repo / ".pipeline" / "state.json").exists()


@pytest.mark.parametrize(
    "releases",
    [
        {"local:iris-classifier": [{"image": 5}]},
        {"local:iris-classifier": [{"image": "a@sha256:1", "previous": ["not", "a", "string"]}]},
        {"local:iris-classifier": ["a string, not a release"]},
    ],
)
def test_rollback_with_a_wrong_typed_state_exits_2_with_a_message(
    make_repo, monkeypatch: pytest.MonkeyPatch, releases: dict
) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    state = {"version": 1, "stages": {}, "extra": {"releases": releases}}
    (repo / ".pipeline").mkdir()
    (repo / ".pipeline" / "state.json").write_text(json.dumps(state), encoding="utf-8")

    result = invoke(["rollback", "--set", "deploy.local.container_name=iris-classifier"], repo, monkeypatch)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "run state" in result.output and "no release" not in result.output


def test_history_lists_each_run_newest_first_with_what_that_run_made(make_repo) -> None:
    repo = make_repo(
        {
            "pipeline.toml": FIXTURE_TOML,
            "tests/test_ok.py": "def test_ok():\n    assert 1 + 1 == 2\n",
        }
    )
    record_passes(repo, train={"model_version": "m-old", "cv_accuracy_mean": 0.9})  # an earlier run's
    assert run_cli(["run", "--stage", "test"], repo).returncode == 0
    (repo / "tests" / "test_ok.py").write_text("def test_ok():\n    assert False\n", encoding="utf-8")
    assert run_cli(["run", "--stage", "test"], repo).returncode == 1

    table = run_cli(["history"], repo)
    lines = run_cli(["history", "--json", "--limit", "5"], repo)

    assert table.returncode == 0, table.stderr
    assert "last 2 run(s), newest first" in table.stdout
    entries = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [e["status"] for e in entries] == ["failed", "passed"]
    assert entries[0]["stages"] == {"test": "failed"} and entries[1]["stages"] == {"test": "passed"}
    # train did not run in these runs: its old model is not theirs
    assert all(e["model_version"] is None and e["image"] is None for e in entries)
    assert entries[0]["started_at"] >= entries[1]["started_at"]
    assert len(run_cli(["history", "--json", "--limit", "1"], repo).stdout.splitlines()) == 1


def test_history_skips_torn_lines_and_keeps_the_last_runs(tmp_path: Path) -> None:
    from pipeline import history
    from pipeline.results import RunResult, RunStatus, StageRun, Status
    from pipeline.state import RunState

    state = RunState(tmp_path / "state.json")
    for number in range(history.KEEP + 5):
        result = RunResult(
            run_id=f"run-{number:03d}",
            started_at="2026-11-30T21:00:00+00:00",
            profile="local",
            git_sha=None,
            stages=[StageRun("lint", Status.PASSED)],
            finished_at="2026-11-30T21:00:12+00:00",
            status=RunStatus.PASSED,
        )
        history.append(tmp_path, history.entry_for(result, state))
    with (tmp_path / history.FILE_NAME).open("a", encoding="utf-8") as fh:
        fh.write('{"run_id": "torn\n[1, 2]\n')

    entries = history.read(tmp_path, 1000)

    assert len(entries) == history.KEEP
    assert entries[0].run_id == f"run-{history.KEEP + 4:03d}" and entries[0].duration_s == 12.0
    assert entries[-1].run_id == "run-005"


# Names the stages hand to Docker or ECS, each one Docker (or ECS) would refuse, or a shell fragment.
BAD_NAMES = [
    ("image.repository=$(touch pwned);A", "image.repository", "not a repository name as Docker reads it"),
    ("image.repository=Team/Iris", "image.repository", "not a repository name as Docker reads it"),
    ("registry.url=https://registry.example", "registry.url", "no scheme"),
    ("image.base=python:3.11 slim", "image.base", "not an image reference"),
    ("image.tags=latest,{commit}", "image.tags", "only {git_sha} and {branch}"),
    ("image.tags=v1;touch pwned", "image.tags", "does not make a tag"),
    ("deploy.image=$(touch pwned)@sha256:" + "a" * 64, "deploy.image", "not a digest reference"),
    ("deploy.image=iris@sha256:abc", "deploy.image", "not a digest reference"),
    ("deploy.local.container_name=x;touch pwned", "deploy.local.container_name", "not a container name"),
    ("deploy.local.container_name=-iris", "deploy.local.container_name", "not a container name"),
    ("deploy.ecs.container=web app", "deploy.ecs.container", "not an ECS container name"),
    (
        "deploy.ecs.extra_containers=worker,mig.rate",
        "deploy.ecs.extra_containers",
        "not an ECS container name",
    ),
]


@pytest.mark.parametrize(("assignment", "key", "why"), BAD_NAMES, ids=[b[0].split("=")[0] for b in BAD_NAMES])
def test_a_bad_image_reference_or_container_name_exits_2_before_any_stage(
    make_repo, assignment: str, key: str, why: str
) -> None:
    repo = make_repo({"pipeline.toml": FIXTURE_TOML})
    proc = run_cli(["run", "--stage", "lint", "--set", assignment], repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ") and key in first and why in first, proc.stderr
    assert not (repo / "reports" / "stages" / "lint.log").exists(), "no stage may run"
    assert not (repo / "pwned").exists()
