"""``adapters/git.py`` and the tags it decides: dirty means dirty, and a dirty tree never gets ``latest``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pipeline import config
from pipeline.adapters import git
from pipeline.stages import _images
from pipeline.stages.build import BuildStage


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text("print('hi')\n", encoding="utf-8")
    (root / ".gitignore").write_text("/model/\n*.log\n", encoding="utf-8")
    run = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run([*run, "commit", "-q", "-m", "one"], cwd=root, check=True)
    return root


def test_a_clean_checkout_is_clean_and_tagged_latest_on_main(checkout: Path) -> None:
    info = git.info(checkout)
    assert not info.dirty and info.branch == "main" and info.sha
    tags = _images.resolve_tags(config.load(checkout, environ={}), info, "x")
    assert tags == [info.sha, "latest"]


@pytest.mark.parametrize(
    "rel, dirty",
    [
        ("app/main.py", True),  # a tracked file changed
        ("app/big.bin", True),  # an untracked file that the build context would include
        ("notes.txt", True),  # the default context is the whole tree
        ("model/iris.onnx", False),  # git-ignored
        ("app/debug.log", False),  # git-ignored
    ],
)
def test_any_file_git_would_track_makes_the_tree_dirty(checkout: Path, rel: str, dirty: bool) -> None:
    (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
    (checkout / rel).write_text("new\n", encoding="utf-8")
    assert git.info(checkout).dirty is dirty


def test_only_the_build_context_counts(checkout: Path) -> None:
    (checkout / "notes.txt").write_text("outside app/\n", encoding="utf-8")
    assert not git.info(checkout, "app").dirty
    (checkout / "app" / "new.py").write_text("x = 1\n", encoding="utf-8")
    assert git.info(checkout, "app").dirty


def test_a_dirty_tree_gets_the_dirty_sha_tag_and_never_latest(checkout: Path) -> None:
    (checkout / "app" / "big.bin").write_text("300 MB, say\n", encoding="utf-8")
    info = git.info(checkout)
    tags = _images.resolve_tags(config.load(checkout, environ={}), info, "x")
    assert tags == [f"{info.sha}-dirty"]


def detach(checkout: Path) -> None:
    """Check out main's commit, not the branch: what Jenkins' git plugin does (``git checkout -f SHA``)."""
    subprocess.run(["git", "checkout", "-q", "--detach", "main"], cwd=checkout, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True
    )
    assert head.stdout.strip() == "HEAD", "the checkout must be detached"


@pytest.mark.parametrize(
    "environ, branch, latest",
    [
        ({"GIT_BRANCH": "origin/main"}, "main", True),  # Jenkins' git plugin, a build of main
        ({"BRANCH_NAME": "main"}, "main", True),  # a multibranch job
        ({"GIT_BRANCH": "origin/feature/x"}, "feature/x", False),
        ({"GIT_BRANCH": "origin/feature", "BRANCH_NAME": "main"}, "feature", False),  # GIT_BRANCH wins
        ({"PIPELINE_IMAGE__BRANCH": "main"}, "main", True),
        ({}, None, False),  # no word of the branch: never latest
    ],
)
def test_a_detached_checkout_takes_its_branch_from_the_configuration(
    checkout: Path, environ: dict[str, str], branch: str | None, latest: bool
) -> None:
    detach(checkout)
    cfg = config.load(checkout, environ=environ)
    info = git.info(checkout, ".", cfg.image.branch)
    assert info.branch == branch and not info.dirty
    tags = _images.resolve_tags(cfg, info, "x")
    assert tags == ([info.sha, "latest"] if latest else [info.sha])
    (command,) = BuildStage().plan(cfg)  # the build stage asks git the same way
    assert re.findall(r" -t \S+:(\S+)", command) == tags


def test_an_attached_branch_wins_over_the_environment(checkout: Path) -> None:
    subprocess.run(["git", "checkout", "-q", "-b", "feature"], cwd=checkout, check=True)
    cfg = config.load(checkout, environ={"GIT_BRANCH": "origin/main"})
    info = git.info(checkout, ".", cfg.image.branch)
    assert info.branch == "feature"
    assert _images.resolve_tags(cfg, info, "x") == [info.sha]


def test_outside_a_checkout_the_tag_is_the_start_of_the_context_hash(tmp_path: Path) -> None:
    """The one fallback for ``{git_sha}``: the run's build, its cache hit and the dry run's placeholder."""
    (tmp_path / "pipeline.toml").write_text("", encoding="utf-8")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    cfg = config.load(tmp_path, environ={})
    info = git.info(tmp_path)
    assert info.sha is None and info.branch is None
    hashed = "0123456789abcdef" * 4
    assert _images.no_commit_sha(hashed) == hashed[: _images.NO_COMMIT_DIGITS] == "0123456789ab"
    assert _images.resolve_tags(cfg, info, _images.no_commit_sha(hashed)) == ["0123456789ab"]
    (command,) = BuildStage().plan(cfg)
    assert re.findall(r" -t \S+:(\S+)", command) == [_images.NO_COMMIT_PLACEHOLDER]
