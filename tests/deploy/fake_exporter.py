"""A stand-in for the agent's /metrics until the agent is ready: a prometheus_client Collector that yields the
contract's metrics from one state object, served over HTTP on 127.0.0.1.

The state is chosen so that every alert of deploy/prometheus/segcheck-rules.yaml has a series that satisfies
its expression (except the agent-absence alerts, which need a missing agent), and every dashboard panel has data.
Counters and histograms grow by one probe round per scrape, so rate() has something to show.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tests.deploy.contract import DRIFT_CLASSES, PROBE_RESULTS

NETWORKS = ("default/tenantblue", "default/tenantred")
PROBE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
ROUND_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class AgentState:
    """What one agent would know; the collector reads it, it does not own it."""

    node: str = "worker-a"
    drift: dict[tuple[str, str], int] = field(default_factory=lambda: {
        **{(NETWORKS[1], cls): 0 for cls in DRIFT_CLASSES},
        (NETWORKS[0], "leak"): 2, (NETWORKS[0], "blackhole"): 1, (NETWORKS[0], "controller"): 1,
        (NETWORKS[0], "dataplane"): 1, (NETWORKS[0], "unknown"): 3})
    cells: dict[str, int] = field(default_factory=lambda: {NETWORKS[0]: 12, NETWORKS[1]: 6})
    policy_findings: dict[tuple[str, str], int] = field(default_factory=lambda: {
        (NETWORKS[0], "selector-peer-without-ipam"): 1,
        (NETWORKS[0], "end-port-ignored"): 0,
        (NETWORKS[1], "selects-nothing"): 2})
    programmed_findings: dict[tuple[str, str], int] = field(default_factory=lambda: {
        (NETWORKS[0], "policy-not-programmed"): 1,
        (NETWORKS[1], "unowned-acl"): 0})
    source_up: dict[str, int] = field(default_factory=lambda: {
        "kubernetes": 1, "ovn_nb": 1, "ovs": 0, "prober": 1})
    staleness: dict[str, float] = field(default_factory=lambda: {
        "kubernetes": 2.0, "ovn_nb": 1.0, "ovs": 420.0, "prober": 3.0})
    mapping_ok: dict[tuple[str, str], int] = field(default_factory=lambda: {
        (NETWORKS[0], "br-ex"): 1, (NETWORKS[1], "br-ex"): 0})
    policy_drift: dict[tuple[str, str, str], int] = field(default_factory=lambda: {
        (NETWORKS[0], "default/default-deny", "leak"): 2, (NETWORKS[0], "default/allow-db-egress", "blackhole"): 1})
    drift_pairs: dict[str, int] = field(default_factory=lambda: {NETWORKS[0]: 3, NETWORKS[1]: 0})
    worst_pairs: tuple[tuple[str, ...], ...] = (
        (NETWORKS[0], "default/podclient", "ext:db", "leak", "default/default-deny", "22/TCP"),
        (NETWORKS[0], "default/vm-server", "ext:db", "blackhole", "default/allow-db-egress", "5432/TCP"))
    last_drift_change: float = 1_700_000_000.0
    rounds: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def probe_round(self) -> None:
        with self.lock:
            self.rounds += 1


def _cumulative(observations: list[float], buckets: tuple[float, ...]) -> list[tuple[str, float]]:
    counts = [(str(le), float(sum(1 for o in observations if o <= le))) for le in buckets]
    return counts + [("+Inf", float(len(observations)))]


class AgentCollector(Collector):
    def __init__(self, state: AgentState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        self.state.probe_round()
        s = self.state
        with s.lock:
            drift = GaugeMetricFamily("segcheck_drift_cells", "Drift cells by network and class.", labels=["network", "class"])
            for (net, cls), value in sorted(s.drift.items()):
                drift.add_metric([net, cls], value)
            yield drift
            cells = GaugeMetricFamily("segcheck_cells", "Cells compared in the last evaluation.", labels=["network"])
            for net, value in sorted(s.cells.items()):
                cells.add_metric([net], value)
            yield cells
            for name, data in (("segcheck_policy_findings", s.policy_findings),
                               ("segcheck_programmed_findings", s.programmed_findings)):
                family = GaugeMetricFamily(name, "Findings by network and kind.", labels=["network", "kind"])
                for (net, kind), value in sorted(data.items()):
                    family.add_metric([net, kind], value)
                yield family
            probes = CounterMetricFamily("segcheck_probes", "Probes sent, by verdict.", labels=["result"])
            for i, result in enumerate(PROBE_RESULTS):
                probes.add_metric([result], float(s.rounds * (40 // (i + 1))))
            yield probes
            rtts = [0.0004, 0.0009, 0.002, 0.004, 0.02] * s.rounds
            yield HistogramMetricFamily("segcheck_probe_duration_seconds", "RTT of answered probes.",
                                        buckets=_cumulative(rtts, PROBE_BUCKETS), sum_value=sum(rtts))
            durations = [0.8] * s.rounds
            yield HistogramMetricFamily("segcheck_round_duration_seconds", "Duration of one probe round.",
                                        buckets=_cumulative(durations, ROUND_BUCKETS), sum_value=sum(durations))
            yield CounterMetricFamily("segcheck_rounds", "Probe rounds.", value=float(s.rounds))
            up = GaugeMetricFamily("segcheck_source_up", "Source health.", labels=["source"])
            stale = GaugeMetricFamily("segcheck_source_staleness_seconds", "Age of the last update.", labels=["source"])
            for source in sorted(s.source_up):
                up.add_metric([source], s.source_up[source])
                stale.add_metric([source], s.staleness[source])
            yield up
            yield stale
            mapping = GaugeMetricFamily("segcheck_localnet_mapping_ok", "Bridge mapping status.", labels=["network", "bridge"])
            for (net, bridge), value in sorted(s.mapping_ok.items()):
                mapping.add_metric([net, bridge], value)
            yield mapping
            by_policy = GaugeMetricFamily("segcheck_policy_drift_cells", "Drift cells per policy.",
                                          labels=["network", "policy", "class"])
            for key, value in sorted(s.policy_drift.items()):
                by_policy.add_metric(list(key), value)
            yield by_policy
            pairs = GaugeMetricFamily("segcheck_drift_pairs", "Drifting pairs.", labels=["network"])
            for net, value in sorted(s.drift_pairs.items()):
                pairs.add_metric([net], value)
            yield pairs
            worst = GaugeMetricFamily("segcheck_drift_pair_info", "Worst drifting pairs.",
                                      labels=["network", "source", "destination", "class", "policy", "port"])
            for labels in s.worst_pairs:
                worst.add_metric(list(labels), 1)
            yield worst
            yield GaugeMetricFamily("segcheck_last_drift_change_timestamp_seconds", "Last drift change.",
                                    value=s.last_drift_change)
            info = GaugeMetricFamily("segcheck_build_info", "Build information.", labels=["version", "node", "ovnk_profile"])
            info.add_metric(["0.1.0", s.node, "ocp-4.14"], 1)
            yield info


class KubeStateMetricsCollector(Collector):
    """The kube-state-metrics series the dashboards read: the agent DaemonSet's desired pod count."""

    def __init__(self, desired: int) -> None:
        self.desired = desired

    def collect(self) -> Iterator[Metric]:
        desired = GaugeMetricFamily("kube_daemonset_status_desired_number_scheduled",
                                    "Nodes that should run the DaemonSet's pod.", labels=["namespace", "daemonset"])
        desired.add_metric(["segcheck", "segcheck-agent"], self.desired)
        yield desired


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def serving(state: AgentState | Collector, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the state's (or a collector's) metrics at http://host:PORT/metrics; yields `host:port`; stops the
    server on exit."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(state) if isinstance(state, AgentState) else state)
    server: WSGIServer = make_server(host, 0, make_wsgi_app(registry), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="fake-agent", daemon=True)
    thread.start()
    try:
        yield f"{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
