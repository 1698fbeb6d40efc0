"""The pure core type-checks under `mypy --strict` (its small id and verdict types are only worth it if checked)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_core_passes_mypy_strict(tmp_path: Path) -> None:
    if shutil.which("mypy") is None and subprocess.run([sys.executable, "-m", "mypy", "--version"],
                                                       capture_output=True).returncode != 0:
        pytest.fail("mypy is part of the test extra: pip install -e .[test]")
    # agent/ imports as segcheck.agent: give mypy that layout without installing anything.
    (tmp_path / "segcheck").mkdir()
    (tmp_path / "segcheck" / "agent").symlink_to(ROOT / "agent")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--namespace-packages",
         "--explicit-package-bases", "--no-incremental", "segcheck/agent/core"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
