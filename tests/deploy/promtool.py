"""Run promtool (shipped with the Debian `prometheus` package) from tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.prom.server import PROMTOOL_BIN


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if not os.access(PROMTOOL_BIN, os.X_OK):
        pytest.fail(f"{PROMTOOL_BIN} not installed (bash scripts/setup.sh installs prometheus)")
    return subprocess.run([PROMTOOL_BIN, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def check_exprs_parse(exprs: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """promtool parses PromQL offline through `check rules`: wrap each expression as a recording rule."""
    rules = [{"record": f"segcheck:check:{i}", "expr": expr} for i, expr in enumerate(exprs.values())]
    path = tmp_path / "exprs.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}, sort_keys=False))
    return promtool("check", "rules", str(path))
