"""Every dashboard query and every alert expression, run against a real Prometheus that scrapes an agent.

The target is the `segcheck_target` fixture. Until the agent is ready it is a fake exporter in this process
(tests/deploy/fake_exporter.py, the metric contract with data for every alert); to check the real agent on the
lab, override `segcheck_target` to return the agent's `host:port` (and its node label).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.contract import KSM_JOB
from tests.deploy.fake_exporter import AgentState, KubeStateMetricsCollector, serving
from tests.deploy.queries import (
    RULES,
    Query,
    alert_rules,
    all_dashboard_queries,
    console_table_queries,
    linked_queries,
    rows_the_console_shows,
)
from tests.prom.fixtures import prometheus  # noqa: F401 - fixture
from tests.prom.server import Prometheus, ScrapeTarget

pytestmark = pytest.mark.prometheus

NODE = "worker-a"
SCRAPE_TIMEOUT = 30.0
# Alerts whose expression is empty while the agent is scraped and kube-state-metrics is absent: they are about
# a missing agent. Each is still evaluated (it must parse and run) and must be empty here.
EXPECTED_EMPTY = {
    "SegcheckAgentDown": "the target is up",
    "SegcheckAgentAbsent": "a target is up",
    "SegcheckAgentMissingOnNode": "no kube_node_role series without kube-state-metrics",
}


@pytest.fixture(scope="module")
def segcheck_target() -> Iterator[ScrapeTarget]:
    with serving(AgentState(node=NODE)) as address:
        yield ScrapeTarget(address, {"node": NODE, "pod": f"segcheck-agent-{NODE}"})


@pytest.fixture(scope="module")
def prometheus_other_targets() -> Iterator[list[ScrapeTarget]]:
    """kube-state-metrics, as far as the dashboards read it: one desired agent pod."""
    with serving(KubeStateMetricsCollector(desired=1)) as address:
        yield [ScrapeTarget(address, job=KSM_JOB)]


@pytest.fixture(scope="module")
def prometheus_rule_files() -> list[Path]:
    return [RULES]


@pytest.fixture(scope="module")
def scraped(prometheus: Prometheus) -> Prometheus:  # noqa: F811 - fixture from tests.prom
    """Prometheus once it holds enough samples of the job for rate() over histograms and counters."""
    prometheus.wait_for('up{job="segcheck"} == 1', timeout=SCRAPE_TIMEOUT)
    prometheus.wait_for('count_over_time(segcheck_rounds_total{job="segcheck"}[5m]) >= 3', timeout=SCRAPE_TIMEOUT)
    return prometheus


def test_target_labels_as_the_servicemonitor_sets_them(scraped: Prometheus) -> None:
    [info] = scraped.query('segcheck_build_info{job="segcheck"}')
    assert info["metric"]["node"] == NODE
    # The agent's own `node` label is renamed by Prometheus, the target label wins (same value on the cluster).
    assert info["metric"].get("exported_node") == NODE


def test_no_created_series(scraped: Prometheus) -> None:
    assert scraped.query('{job="segcheck", __name__=~".*_created"}') == []


@pytest.mark.parametrize("query", all_dashboard_queries(), ids=lambda q: q.where)
def test_dashboard_query_returns_data(scraped: Prometheus, query: Query) -> None:
    result = scraped.wait_for(query.promql(), timeout=SCRAPE_TIMEOUT)
    assert result, f"{query.where}: {query.promql()} returned nothing"


@pytest.mark.parametrize("query", console_table_queries(), ids=lambda q: q.where)
def test_console_table_shows_one_row_per_series(scraped: Prometheus, query: Query) -> None:
    result = scraped.wait_for(query.promql(), timeout=SCRAPE_TIMEOUT)
    assert rows_the_console_shows(result) == len(result), result


@pytest.mark.parametrize("query,fields", linked_queries(), ids=lambda v: v.where if isinstance(v, Query) else "")
def test_drift_links_find_their_fields_in_every_row(scraped: Prometheus, query: Query, fields: list[str]) -> None:
    result = scraped.wait_for(query.promql(), timeout=SCRAPE_TIMEOUT)
    assert fields and all(s["metric"].get(f) for s in result for f in fields), (fields, result)


def test_agents_missing_is_expected_minus_up(scraped: Prometheus) -> None:
    [missing] = [q for q in all_dashboard_queries() if q.where == "segcheck-overview.json: panel 'Agents missing' A"]
    assert float(scraped.wait_for(missing.promql(), timeout=SCRAPE_TIMEOUT)[0]["value"][1]) == 0.0


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_expression_holds_or_is_expected_empty(scraped: Prometheus, rule: dict) -> None:
    if rule["alert"] in EXPECTED_EMPTY:
        assert scraped.query(rule["expr"]) == [], EXPECTED_EMPTY[rule["alert"]]
    else:
        assert scraped.wait_for(rule["expr"], timeout=SCRAPE_TIMEOUT)


def test_rules_load_and_evaluate_without_error(scraped: Prometheus) -> None:
    def evaluated() -> list[dict] | None:
        rules = [rule for group in scraped.rule_groups() for rule in group["rules"]]
        return rules if all(rule["health"] != "unknown" for rule in rules) else None

    rules = scraped.wait_until(evaluated, "every rule evaluated once", SCRAPE_TIMEOUT)
    assert len(rules) == len(alert_rules())
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
