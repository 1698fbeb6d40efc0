"""pytest fixtures around tests/prom/server.py. Import them into a conftest.py or test module:

    from tests.prom.fixtures import prometheus  # noqa: F401  (needs a `segcheck_target` fixture)

`prometheus` is module-scoped: one Prometheus per test module, scraping the `segcheck_target` fixture that the
module (or its conftest) provides and the `prometheus_other_targets` (default: none; other jobs, e.g. a stand-in
kube-state-metrics), with the `prometheus_rule_files` fixture (default: none) loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prom.server import (
    PROMETHEUS_BIN,
    Prometheus,
    ScrapeTarget,
    running_prometheus,
)


def prometheus_available() -> bool:
    return os.access(PROMETHEUS_BIN, os.X_OK)


@pytest.fixture(scope="module")
def prometheus_rule_files() -> list[Path]:
    return []


@pytest.fixture(scope="module")
def prometheus_other_targets() -> list[ScrapeTarget]:
    return []


@pytest.fixture(scope="module")
def prometheus(segcheck_target: ScrapeTarget, prometheus_other_targets: list[ScrapeTarget],
               prometheus_rule_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if not prometheus_available():
        pytest.fail(f"{PROMETHEUS_BIN} not installed (bash scripts/setup.sh installs prometheus)")
    targets = [segcheck_target, *prometheus_other_targets]
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), targets, prometheus_rule_files) as prom:
        yield prom
