"""The Containerfile installs the package from the directories pyproject.toml maps, and starts the agent."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_containerfile_copies_every_mapped_package_dir_and_runs_the_agent() -> None:
    text = (ROOT / "Containerfile").read_text()
    package_dirs = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values())
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.MULTILINE))
    assert package_dirs <= copied
    assert re.search(r"^FROM \S*python:3\.11-slim", text, re.MULTILINE)
    assert 'ENTRYPOINT ["segcheck", "agent"]' in text
    assert "USER 0" in text
