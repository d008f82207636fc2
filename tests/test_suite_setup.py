"""What `scripts/test.sh` assumes of its own tools, checked so that an upgrade cannot break it silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import write_tree


def test_loadgroup_keeps_an_xdist_group_on_one_process(tmp_path: Path) -> None:
    """``--dist loadgroup`` must keep a module marked ``xdist_group`` on one worker: the in-container test's
    fixture runs the whole pipeline once per worker that gets one of its tests. pytest 9.2 with pytest-xdist
    3.8 spreads them silently (pytest-dev/pytest-xdist#1386)."""
    write_tree(
        tmp_path,
        {
            "test_grouped.py": """
                import os

                import pytest

                pytestmark = pytest.mark.xdist_group("together")


                @pytest.mark.parametrize("i", range(8))
                def test_grouped(i):
                    with open("workers.txt", "a", encoding="utf-8") as out:
                        out.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
            """,
            "test_loose.py": """
                import pytest


                @pytest.mark.parametrize("i", range(8))
                def test_loose(i):
                    pass
            """,
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "3", "--dist", "loadgroup"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers = (tmp_path / "workers.txt").read_text(encoding="utf-8").split()
    assert len(workers) == 8
    assert len(set(workers)) == 1, f"one xdist_group ran on several processes: {sorted(set(workers))}"
