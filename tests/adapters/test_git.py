"""``adapters/git.py`` and the tags it decides: dirty means dirty, and a dirty tree never gets ``latest``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline import config
from pipeline.adapters import git
from pipeline.stages import _images


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
