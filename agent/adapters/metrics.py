"""Prometheus exposition of the agent's state: a custom Collector reading one consistent AgentState per scrape.

Labels stay low-cardinality (network, class, kind, source, result); per-pair detail lives at /v1/matrix.
No `_created` series: families are built by hand, never from client-side counter objects.
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest

from ..core.drift import DRIFT_CLASSES
from ..core.findings import FindingKind
from ..core.manifests import MODELLED_KINDS
from ..core.state import AgentState, Histogram

PROGRAMMED_KINDS = frozenset({
    FindingKind.UNOWNED_ACL, FindingKind.UNKNOWN_ACL, FindingKind.POLICY_NOT_PROGRAMMED, FindingKind.LOCALNET_UNMAPPED,
    FindingKind.PATCH_PORT_MISSING, FindingKind.LOCALNET_SWITCH_MISSING, FindingKind.ATTACHMENT_PORT_MISSING,
    FindingKind.PROFILE_MISMATCH})


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    buckets = [(repr(float(b)), float(c)) for b, c in zip(h.buckets, h.counts)] + [("+Inf", float(h.count))]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=h.total)


class StateCollector:
    def __init__(self, state: Callable[[], AgentState | None]):
        self._state = state

    def describe(self) -> list[Metric]:
        return []  # contents depend on the state; describing nothing keeps registration free of a scrape

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        if state is None:
            return
        drift = GaugeMetricFamily("segcheck_drift_cells", "Cells showing each drift class, per network.",
                                  labels=["network", "class"])
        cells = GaugeMetricFamily("segcheck_cells", "Cells compared in the last evaluation.", labels=["network"])
        policy = GaugeMetricFamily("segcheck_policy_findings", "Declared-plane findings (OVN-K policy quirks).",
                                   labels=["network", "kind"])
        programmed = GaugeMetricFamily("segcheck_programmed_findings",
                                       "Programmed-plane findings (OVN NB and OVS on this node).", labels=["network", "kind"])
        mapping = GaugeMetricFamily("segcheck_localnet_mapping_ok",
                                    "1 when the network's localnet is mapped to its bridge and patched to br-int.",
                                    labels=["network", "bridge"])
        for net in state.networks:
            name = str(net.network)
            counts = {c.value: 0 for c in DRIFT_CLASSES}
            for cell in net.cells:
                for d in cell.drift:
                    counts[d.value] += 1
            for cls, n in counts.items():
                drift.add_metric([name, cls], n)
            cells.add_metric([name], len(net.cells))
            by_kind: dict[tuple[bool, str], int] = {}
            for f in net.findings:
                key = (f.kind in PROGRAMMED_KINDS, f.kind.value)
                by_kind[key] = by_kind.get(key, 0) + 1
            for (is_prog, kind), n in sorted(by_kind.items()):
                (programmed if is_prog else policy).add_metric([name, kind], n)
            if net.mapping is not None:
                mapping.add_metric([name, net.mapping.bridge or ""], 1.0 if net.mapping.ok else 0.0)
        unplaced: dict[str, int] = {}
        for f in state.unplaced_findings:  # of no network: network=""
            unplaced[f.kind.value] = unplaced.get(f.kind.value, 0) + 1
        for kind, n in sorted(unplaced.items()):
            policy.add_metric(["", kind], n)
        yield from (drift, cells, policy, programmed, mapping)

        probes = CounterMetricFamily("segcheck_probes", "Probes sent, by observed result.", labels=["result"])
        for result, n in sorted(state.probes_by_result.items()):
            probes.add_metric([result], n)
        yield probes
        yield _histogram("segcheck_probe_duration_seconds", "Round-trip time of answered probes.", state.probe_durations)
        yield _histogram("segcheck_round_duration_seconds", "Duration of one probe round.", state.round_durations)
        rounds = CounterMetricFamily("segcheck_rounds", "Probe rounds run.")
        rounds.add_metric([], state.rounds)
        yield rounds
        up = GaugeMetricFamily("segcheck_source_up", "1 when the source can be read now.", labels=["source"])
        stale = GaugeMetricFamily("segcheck_source_staleness_seconds", "Seconds since the source was last read.",
                                  labels=["source"])
        for src in state.sources:
            up.add_metric([src.name], 1.0 if src.up else 0.0)
            stale.add_metric([src.name], src.staleness_seconds)
        yield up
        yield stale
        last = GaugeMetricFamily("segcheck_last_drift_change_timestamp_seconds",
                                 "When the set of drifting cells last changed (Unix time; 0: never).")
        last.add_metric([], state.last_drift_change)
        yield last
        errors = GaugeMetricFamily("segcheck_declared_errors",
                                   "Declared objects that do not parse now (by declared source and object kind).",
                                   labels=["source", "kind"])
        by_source_kind: dict[tuple[str, str], int] = {}
        for e in state.declared_errors:
            key = (e.source, e.kind if e.kind in MODELLED_KINDS or e.kind == "-" else "other")  # kinds are user input
            by_source_kind[key] = by_source_kind.get(key, 0) + 1
        for (source, kind), n in sorted(by_source_kind.items()):
            errors.add_metric([source, kind], n)
        yield errors
        info = GaugeMetricFamily("segcheck_build_info", "Version, node and OVN-K behaviour profile of this agent.",
                                 labels=["version", "node", "ovnk_profile"])
        info.add_metric([state.version, state.node, state.profile], 1.0)
        yield info


def registry_for(state: Callable[[], AgentState | None]) -> CollectorRegistry:
    """A registry of our own (not the global one), holding only the state collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
