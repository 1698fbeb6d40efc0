"""Two agents on the 2-node lab (one per node, each its own OVN zone) and one real Prometheus scraping both, each
with its node label: every dashboard query and alert rule answers on the two nodes' data; an ACL removed in
worker-1's NB changes worker-1's series only and makes the controller drift alert pending for worker-1 alone; and
the dashboards' sums count a cross-node cell once (a blackhole seen by worker-0's probe and programmed in
worker-1's zone is one blackhole cell), as the composed cluster view (`verify --cluster`) does.

One cluster, two agents and one Prometheus for the whole module; every wait is on a Prometheus query with a
deadline."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from segcheck.agent.adapters.agent_client import AgentClient
from segcheck.agent.adapters.auth import TokenFileAuth
from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.drift import DRIFT_CLASSES
from segcheck.agent.core.enforcement import DEFAULT_PROFILE
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Verdict
from segcheck.agent.lab.cluster import LabCluster
from segcheck.agent.lab.cluster_sources import LabNodeSources
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.runtime.agent_setup import make_agent
from segcheck.agent.runtime.cluster_view import ClusterReport, cluster_view
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.runtime.status import Status
from tests.deploy.contract import KSM_JOB
from tests.deploy.fake_exporter import KubeStateMetricsCollector, serving
from tests.deploy.queries import RULES, all_dashboard_queries, alert_rules
from tests.prom.fixtures import prometheus_available
from tests.prom.server import PROMETHEUS_BIN, Prometheus, ScrapeTarget, Vector, running_prometheus

from .planes import NET
from .test_lab_cluster import ALLOW_CLIENT_TO_SERVER, running_cluster

pytestmark = [pytest.mark.lab, pytest.mark.prometheus]
POD, VM = "default/podclient", "default/vm-server"
NODES = ("worker-0", "worker-1")
TIMEOUT = 40.0
JOB = 'job="segcheck"'


@pytest.fixture(scope="module")
def declared(tmp_path_factory) -> tuple[Path, Inventory]:
    """The seed plus podclient -> vm-server:8080 allowed: a cross-node service path, so a blackhole can cross."""
    folder = tmp_path_factory.mktemp("declared")
    (folder / "60-allow.yaml").write_text(ALLOW_CLIENT_TO_SERVER)
    inventory, errors = load_inventory([packaged_seed(), folder])
    assert not errors, errors
    return folder, inventory


@pytest.fixture(scope="module")
def cluster(declared) -> Iterator[LabCluster]:
    _, inventory = declared
    with running_cluster(inventory) as instance:
        yield instance


@pytest.fixture(scope="module")
def token() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="module")
def agents(cluster, declared, token, tmp_path_factory) -> Iterator[dict[str, AgentService]]:
    folder, _ = declared
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text(token)
    services: dict[str, AgentService] = {}
    try:
        for node in NODES:
            agent = make_agent(LabNodeSources(cluster, node), FilesSource([packaged_seed(), folder], poll_seconds=0.5),
                               node, DEFAULT_PROFILE, interval=1.0, jitter=0.1)
            services[node] = AgentService(agent, "127.0.0.1", 0, TokenFileAuth(path))
            services[node].start()
        for node, svc in services.items():
            assert svc.agent.wait_for(lambda s: s.rounds >= 1, timeout=30), f"no probe round on {node}"
        yield services
    finally:
        for svc in services.values():
            svc.stop()


@pytest.fixture(scope="module")
def prom(agents, tmp_path_factory) -> Iterator[Prometheus]:
    if not prometheus_available():
        pytest.fail(f"{PROMETHEUS_BIN} not installed (bash scripts/setup.sh installs prometheus)")
    targets = [ScrapeTarget(f"127.0.0.1:{svc.port}", {"node": node, "pod": f"segcheck-agent-{node}"})
               for node, svc in agents.items()]
    with serving(KubeStateMetricsCollector(desired=len(NODES))) as ksm:
        with running_prometheus(tmp_path_factory.mktemp("prometheus"), [*targets, ScrapeTarget(ksm, job=KSM_JOB)],
                                [RULES]) as prometheus:
            prometheus.wait_for(f"sum(up{{{JOB}}}) == {len(NODES)}", timeout=TIMEOUT)
            prometheus.wait_for(f"count(increase(segcheck_rounds_total{{{JOB}}}[1m]) > 0) == {len(NODES)}",
                                timeout=TIMEOUT)
            yield prometheus


@pytest.fixture(scope="module")
def clients(agents, token) -> list[AgentClient]:
    return [AgentClient(f"http://127.0.0.1:{svc.port}", token) for svc in agents.values()]


def value(vector: Vector) -> float:
    return float(vector[0]["value"][1]) if vector else 0.0


def per_node(prom: Prometheus, expr: str) -> dict[str, float]:
    """`expr` summed by node (the node label of the scrape target)."""
    return {v["metric"]["node"]: float(v["value"][1]) for v in prom.query(f"sum by (node) ({expr})")}


def worker0_series(prom: Prometheus) -> dict[tuple[str, tuple[tuple[str, str], ...]], str]:
    """Every drift and cell series of worker-0's agent with its value."""
    out = {}
    for name in ("segcheck_drift_cells", "segcheck_cells", "segcheck_drift_pairs", "segcheck_policy_drift_cells",
                 "segcheck_drift_pair_info", "segcheck_programmed_findings"):
        for v in prom.query(f'{name}{{{JOB}, node="worker-0"}}'):
            out[(name, tuple(sorted(v["metric"].items())))] = v["value"][1]
    return out


def composed_counts(report: ClusterReport) -> dict[str, int]:
    counts = {cls.value: sum(1 for c in report.checked if cls in c.drift) for cls in DRIFT_CLASSES}
    counts["pairs"] = len({(c.network, c.source, c.destination) for c in report.checked if c.drift})
    return counts


def summed_counts(prom: Prometheus) -> dict[str, int]:
    """What the dashboards' drift stats show: segcheck_drift_cells summed over the agents, per class, and the
    drifting pairs (segcheck_drift_pairs) summed over the agents."""
    counts = {cls.value: int(value(prom.query(f'sum(segcheck_drift_cells{{{JOB}, class="{cls.value}"}})')))
              for cls in DRIFT_CLASSES}
    counts["pairs"] = int(value(prom.query(f"sum(segcheck_drift_pairs{{{JOB}}})")))
    return counts


def settled(prom: Prometheus, clients: list[AgentClient], want: Callable[[ClusterReport], bool]) -> ClusterReport:
    """Wait until the composed view holds `want` and the dashboards' sums (cells per class, drifting pairs), from
    scrapes of both agents taken after the view was composed, equal its counts."""
    taken: list[tuple[ClusterReport, float]] = []
    last: list[object] = [None]

    def check() -> ClusterReport | None:
        if not taken:
            taken.append((cluster_view(clients), time.time()))
        report, at = taken[0]
        scraped = prom.query(f"min(timestamp(segcheck_rounds_total{{{JOB}}}))")
        if value(scraped) <= at:
            return None  # Prometheus has not scraped both agents since
        counts = (composed_counts(report), summed_counts(prom))
        last[0] = counts
        taken.clear()
        return report if want(report) and counts[0] == counts[1] else None

    try:
        return prom.wait_until(check, "composed view and dashboard sums agree", TIMEOUT)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: (composed, summed) = {last[0]}") from None


@contextmanager
def acl_removed(cluster: LabCluster, inventory: Inventory, node: str, *find: str) -> Iterator[None]:
    """The ACL `find` selects removed from its port group in `node`'s NB; the policies re-applied afterwards."""
    lab = cluster.nodes[node]
    (uuid,) = lab.run_nbctl("--bare", "--columns=_uuid", "find", "ACL", *find).split()
    group = lab.run_nbctl("--bare", "--columns=name", "find", "Port_Group", f"acls{{>=}}{uuid}").strip()
    lab.run_nbctl("remove", "Port_Group", group, "acls", uuid)
    try:
        yield
    finally:
        cluster.apply(inventory, NET)


def test_both_agents_are_scraped_and_the_untampered_cluster_agrees(prom, clients):
    assert value(prom.query(f"sum(up{{{JOB}}})")) == 2
    assert {v["metric"]["node"] for v in prom.query(f"segcheck_build_info{{{JOB}}}")} == set(NODES)
    report = settled(prom, clients, lambda r: r.status is Status.MATCH)
    assert sorted(report.nodes) == list(NODES)
    # Every cell of the cluster is counted once over the agents: the cross-node ones at their source's node.
    cells = per_node(prom, f"segcheck_cells{{{JOB}}}")
    assert set(cells) == set(NODES) and all(n > 0 for n in cells.values())
    assert sum(cells.values()) == len(report.checked), (cells, len(report.checked))
    assert value(prom.query(f'sum(segcheck_drift_cells{{{JOB}}})')) == 0


def test_an_acl_removed_on_worker_1_is_worker_1s_drift_only(prom, clients, cluster, declared):
    _, inventory = declared
    before = worker0_series(prom)
    rounds = value(prom.query(f'segcheck_rounds_total{{{JOB}, node="worker-0"}}'))
    # vm-server's ingress default deny, as worker-1's zone holds it.
    with acl_removed(cluster, inventory, "worker-1", "action=drop", "direction=to-lport"):
        report = settled(prom, clients, lambda r: r.status is Status.DRIFT)
        controller = per_node(prom, f'segcheck_drift_cells{{{JOB}, class="controller"}}')
        assert controller["worker-1"] > 0 and controller["worker-0"] == 0
        # The rule's expression, and the alert Prometheus holds pending (it fires after its `for:`), name
        # worker-1 only.
        (rule,) = [r for r in alert_rules() if r["alert"] == "SegcheckControllerDrift"]
        assert {v["metric"]["node"] for v in prom.wait_for(rule["expr"], timeout=TIMEOUT)} == {"worker-1"}
        alerts = prom.wait_for('ALERTS{alertname="SegcheckControllerDrift"}', timeout=TIMEOUT)
        assert {(a["metric"]["node"], a["metric"]["alertstate"]) for a in alerts} == {("worker-1", "pending")}
        # worker-0's agent kept running and scraped, its series as they were.
        prom.wait_for(f'segcheck_rounds_total{{{JOB}, node="worker-0"}} > {rounds + 2}', timeout=TIMEOUT)
        prom.wait_for(f'segcheck_rounds_total{{{JOB}, node="worker-1"}} > 0', timeout=TIMEOUT)
        assert worker0_series(prom) == before
        # The composed view: vm-server's ingress half is wrong everywhere but the allowed port, and the DB's
        # traffic to vm-server (judged whole on worker-1) leaks by the programmed plane.
        drifting = {(c.source, c.destination, c.protocol.value, c.ports.first, c.ports.last): {d.value for d in c.drift}
                    for c in report.checked if c.drift}
        assert {k[:2] for k in drifting} == {(POD, VM), ("ext:db", VM)}
        assert all(d == {"controller"} for k, d in drifting.items() if k[:2] == (POD, VM))
        assert all(not (k[3] <= 8080 <= k[4]) for k in drifting if k[:3] == (POD, VM, "TCP"))
        assert all(d == {"leak", "controller"} for k, d in drifting.items() if k[0] == "ext:db")
        # ... and `verify --cluster`, through both agents' HTTP API, says the same.
        urls = [a for c in clients for a in ("--agent", c.url)]
        done = subprocess.run([sys.executable, "-m", "segcheck.cli", "verify", "--cluster", *urls, "--token",
                               clients[0].token, "-o", "json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        cli = {(c["from"], c["to"]) for c in json.loads(done.stdout)["cells"] if c["drift"]}
        assert cli == {(POD, VM), ("ext:db", VM)}
    settled(prom, clients, lambda r: r.status is Status.MATCH)


def test_a_blackhole_across_nodes_is_one_blackhole_cell_on_the_dashboards(prom, clients, cluster, declared):
    _, inventory = declared
    # vm-server's ingress allow of podclient:8080 in worker-1's zone: worker-0's probes see the blackhole, worker-1's
    # zone holds the wrong half. Summed over the agents that is one blackhole cell and one controller drift cell.
    with acl_removed(cluster, inventory, "worker-1", "action=allow-related", "direction=to-lport"):
        report = settled(prom, clients, lambda r: any(c.drift and c.observed is not None and
                                                      c.observed.verdict is Verdict.DENIED for c in r.checked))
        (whole,) = [c for c in report.checked if c.drift]
        assert (whole.source, whole.destination, whole.ports.first, whole.ports.last) == (POD, VM, 8080, 8080)
        assert {d.value for d in whole.drift} == {"blackhole", "controller"}
        assert per_node(prom, f'segcheck_drift_cells{{{JOB}, class="blackhole"}}') == {"worker-0": 1, "worker-1": 0}
        assert per_node(prom, f'segcheck_drift_cells{{{JOB}, class="controller"}}') == {"worker-0": 0, "worker-1": 1}
        # The worst-pairs tables show the pair at worker-0 (the blackhole) and its wrong half at worker-1.
        pairs = prom.wait_for(f"segcheck_drift_pair_info{{{JOB}}}", lambda v: len(v) == 2, timeout=TIMEOUT)
        assert {(p["metric"]["node"], p["metric"]["class"], p["metric"]["port"]) for p in pairs} == {
            ("worker-0", "blackhole", "8080/TCP"), ("worker-1", "controller", "8080/TCP")}
        blocked = prom.query(f'sum by (policy) (segcheck_policy_drift_cells{{{JOB}, class="blackhole"}})')
        assert {(v["metric"]["policy"], float(v["value"][1])) for v in blocked} == {
            ("default/allow-client-to-server", 1.0)}
        # Every dashboard query and every rule answers on the two nodes' data.
        for query in all_dashboard_queries():
            prom.query(query.promql())  # raises on an error
        for query in (q for q in all_dashboard_queries() if "Blackhole cells" in q.where):
            assert value(prom.query(query.promql())) == 1, query.where
        missing = [q for q in all_dashboard_queries() if "Agents missing" in q.where]
        assert missing and all(value(prom.query(q.promql())) == 0 for q in missing)

        def evaluated() -> list[dict] | None:
            rules = [r for g in prom.rule_groups() for r in g["rules"]]
            return rules if all(r["health"] != "unknown" for r in rules) else None

        rules = prom.wait_until(evaluated, "every rule evaluated once", TIMEOUT)
        assert [r["name"] for r in rules if r["health"] != "ok"] == []
    settled(prom, clients, lambda r: r.status is Status.MATCH)
