"""The Prometheus fixture itself: it starts, answers, dies loudly, and is always stopped by PID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.prom.server import (
    PrometheusError,
    ScrapeTarget,
    free_port,
    running_prometheus,
)

pytestmark = [pytest.mark.prometheus]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ready_answers_and_is_stopped_by_pid_even_when_the_body_fails(tmp_path: Path) -> None:
    unreachable = ScrapeTarget(f"127.0.0.1:{free_port()}", {"node": "n1"})
    pid = None
    with pytest.raises(RuntimeError, match="the test body failed"), running_prometheus(tmp_path, [unreachable]) as prom:
        pid = prom.process.pid
        assert prom.query("vector(1)")[0]["value"][1] == "1"
        down = prom.wait_for('up{job="segcheck", node="n1"} == 0')
        assert down[0]["metric"]["instance"] == unreachable.address
        raise RuntimeError("the test body failed")
    assert pid is not None and not _alive(pid)


def test_a_prometheus_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "bad-rules.yaml"
    bad.write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum(('}]}]\n")
    with pytest.raises(PrometheusError, match="exited"), \
            running_prometheus(tmp_path / "p", [ScrapeTarget("127.0.0.1:1")], rule_files=[bad]):
        pass


def test_wait_for_times_out_with_the_last_result(tmp_path: Path) -> None:
    with running_prometheus(tmp_path, [ScrapeTarget(f"127.0.0.1:{free_port()}")]) as prom, \
            pytest.raises(TimeoutError, match="last result"):
        prom.wait_for("vector(1) == 2", timeout=0.3)
