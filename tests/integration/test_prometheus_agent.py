"""A real Prometheus scrapes the real agent running on the lab, while the lab is tampered with so that every
drift class the dashboards chart is present: every dashboard query returns data, the drift alerts hold, and every
rule evaluates without error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from segcheck.agent.adapters.auth import TokenFileAuth
from segcheck.agent.adapters.ovsdb import NorthboundReader, OvsReader
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.lab.locator import LabLocator
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.lab.seed import packaged_seed
from tests.deploy.contract import KSM_JOB
from tests.deploy.fake_exporter import KubeStateMetricsCollector, serving
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

from .planes import drop_flow, seeded

pytestmark = [pytest.mark.lab, pytest.mark.prometheus]
NODE = "lab-node"
TIMEOUT = 40.0
# Present while the lab is tampered with; the other alerts are about outages and a missing agent.
FIRING = {"SegcheckLeak", "SegcheckBlackhole", "SegcheckControllerDrift", "SegcheckDataplaneDrift",
          "SegcheckProgrammedFindings"}
# A policy with no policyTypes and no rules: it changes nothing, but it is a finding the dashboards show.
UNTYPED = {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
           "metadata": {"name": "untyped", "namespace": "default",
                        "annotations": {"k8s.v1.cni.cncf.io/policy-for": "default/tenantblue"}},
           "spec": {"podSelector": {}}}


@pytest.fixture(scope="module")
def tampered_lab(lab) -> Iterator[object]:
    with seeded(lab):
        pg = next(n for n in lab.run_nbctl("--bare", "--columns=name", "list", "Port_Group").split()
                  if n.endswith("_egressDefaultDeny"))
        match = f"inport == @{pg} && ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==22"
        lab.run_nbctl("--type=port-group", "--apply-after-lb", "acl-add", pg, "from-lport", "1001", match, "allow-related")
        try:
            with drop_flow(lab, "br-ex", "tcp,nw_dst=192.168.200.5,tp_dst=5432"):
                yield lab
        finally:
            lab.run_nbctl("--type=port-group", "acl-del", pg, "from-lport", "1001", match)


@pytest.fixture(scope="module")
def segcheck_target(tampered_lab, tmp_path_factory) -> Iterator[ScrapeTarget]:
    lab = tampered_lab
    folder = tmp_path_factory.mktemp("agent")
    (folder / "untyped.yaml").write_text(yaml.safe_dump(UNTYPED))
    (folder / "token").write_text("unused")
    agent = Agent(FilesSource([packaged_seed(), folder / "untyped.yaml"]), NorthboundReader(lab.nb_url),
                  OvsReader(lab.ovs_url), RawSocketProber(), LabLocator(lab), NODE, interval=1.0, jitter=0.1,
                  only_local=False)
    service = AgentService(agent, "127.0.0.1", 0, TokenFileAuth(folder / "token"))
    service.start()
    try:
        assert agent.wait_for(lambda s: s.rounds >= 1, timeout=15)
        yield ScrapeTarget(f"127.0.0.1:{service.port}", {"node": NODE, "pod": f"segcheck-agent-{NODE}"})
    finally:
        service.stop()


@pytest.fixture(scope="module")
def prometheus_other_targets() -> Iterator[list[ScrapeTarget]]:
    """kube-state-metrics, as far as the dashboards read it (the DaemonSet's desired count): not on the lab."""
    with serving(KubeStateMetricsCollector(desired=1)) as address:
        yield [ScrapeTarget(address, job=KSM_JOB)]


@pytest.fixture(scope="module")
def prometheus_rule_files() -> list[Path]:
    return [RULES]


@pytest.fixture(scope="module")
def scraped(prometheus: Prometheus) -> Prometheus:  # noqa: F811 - fixture from tests.prom
    prometheus.wait_for('up{job="segcheck"} == 1', timeout=TIMEOUT)
    prometheus.wait_for('count_over_time(segcheck_rounds_total{job="segcheck"}[5m]) >= 3', timeout=TIMEOUT)
    prometheus.wait_for('increase(segcheck_rounds_total{job="segcheck"}[5m]) > 0', timeout=TIMEOUT)
    return prometheus


@pytest.mark.parametrize("query", all_dashboard_queries(), ids=lambda q: q.where)
def test_every_dashboard_query_returns_data_from_the_agent(scraped: Prometheus, query: Query) -> None:
    assert scraped.wait_for(query.promql(), timeout=TIMEOUT), f"{query.where}: {query.promql()} returned nothing"


@pytest.mark.parametrize("query", console_table_queries(), ids=lambda q: q.where)
def test_console_tables_show_one_row_per_series_of_the_agent(scraped: Prometheus, query: Query) -> None:
    result = scraped.wait_for(query.promql(), timeout=TIMEOUT)
    assert rows_the_console_shows(result) == len(result), result


@pytest.mark.parametrize("query,fields", linked_queries(), ids=lambda v: v.where if isinstance(v, Query) else "")
def test_drift_links_find_their_fields_in_the_agents_rows(scraped: Prometheus, query: Query, fields: list[str]) -> None:
    result = scraped.wait_for(query.promql(), timeout=TIMEOUT)
    assert fields and all(s["metric"].get(f) for s in result for f in fields), (fields, result)


def test_worst_pairs_and_policy_drift_name_the_tampered_cells(scraped: Prometheus) -> None:
    pairs = scraped.wait_for('segcheck_drift_pair_info{job="segcheck", class="leak"}', timeout=TIMEOUT)
    assert {(p["metric"]["source"], p["metric"]["destination"], p["metric"]["port"]) for p in pairs} >= {
        ("default/podclient", "ext:db", "22/TCP")}
    # The leak at 22 breaks the policies that isolate the sources; the blackhole at 5432 the rule that allows it.
    leaks = scraped.wait_for('segcheck_policy_drift_cells{job="segcheck", class="leak"} > 0', timeout=TIMEOUT)
    assert {p["metric"]["policy"] for p in leaks} == {"default/default-deny", "default/allow-db-egress"}
    blocked = scraped.wait_for('segcheck_policy_drift_cells{job="segcheck", class="blackhole"} > 0', timeout=TIMEOUT)
    assert {p["metric"]["policy"] for p in blocked} == {"default/allow-db-egress"}


def test_drift_alert_expressions_hold_and_every_rule_evaluates(scraped: Prometheus) -> None:
    for rule in alert_rules():
        if rule["alert"] in FIRING:
            assert scraped.wait_for(rule["expr"], timeout=TIMEOUT), rule["alert"]

    def evaluated() -> list[dict] | None:
        rules = [r for g in scraped.rule_groups() for r in g["rules"]]
        return rules if all(r["health"] != "unknown" for r in rules) else None

    rules = scraped.wait_until(evaluated, "every rule evaluated once", TIMEOUT)
    assert [r["name"] for r in rules if r["health"] != "ok"] == []


def test_drift_classes_seen_by_prometheus(scraped: Prometheus) -> None:
    vector = scraped.wait_for('segcheck_drift_cells{job="segcheck", class="dataplane"} > 0', timeout=TIMEOUT)
    assert vector[0]["metric"]["network"] == "default/tenantblue"
    leak = scraped.wait_for('segcheck_drift_cells{job="segcheck", class="leak"} > 0', timeout=TIMEOUT)
    assert float(leak[0]["value"][1]) >= 1
    kinds = {v["metric"]["kind"] for v in scraped.wait_for('segcheck_policy_findings{job="segcheck"}', timeout=TIMEOUT)}
    assert kinds == {"no-policy-types"}
