"""What the pipeline asks of git: the commit, the branch, whether the tree is dirty, and its files.

Each answer is ``None`` outside a git checkout (a source tarball), never an error.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline import secret_env


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=secret_env.without_secrets(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def files(root: Path) -> list[str] | None:
    """The files git tracks or would track (``ls-files --cached --others --exclude-standard``), sorted;
    ``None`` outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            timeout=60,
            check=False,
            env=secret_env.without_secrets(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    names = {name for name in out.stdout.decode("utf-8", "surrogateescape").split("\0") if name}
    # A file deleted from the tree but not from the index is listed too: it is not an input.
    return sorted(name for name in names if (root / name).is_file())


def head_sha(root: Path, short: bool = True) -> str | None:
    return _git(root, "rev-parse", "--short=12" if short else "--verify", "HEAD")


@dataclass(frozen=True)
class GitInfo:
    sha: str | None
    full_sha: str | None
    branch: str | None
    dirty: bool


def info(root: Path, context: str = ".", detached_branch: str = "") -> GitInfo:
    """The checkout's commit and branch; ``dirty`` when a tracked file changed, or a file git would
    track (untracked, not ignored) sits in ``context``, the part of the tree that gets built.

    On a detached HEAD (``rev-parse --abbrev-ref HEAD`` says ``HEAD``), as Jenkins' git plugin checks
    out, the branch is ``detached_branch`` (the configuration's, from GIT_BRANCH), or None without one."""
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", context)
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if branch == "HEAD":
        branch = detached_branch or None
    return GitInfo(
        sha=head_sha(root),
        full_sha=head_sha(root, short=False),
        branch=branch,
        dirty=bool(status),
    )
