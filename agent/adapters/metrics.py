"""Prometheus exposition of the agent's state: a custom Collector reading one consistent AgentState per scrape.

Labels stay low-cardinality (network, class, kind, source, result, and policy: bounded by the policies); per-pair
detail lives at /v1/matrix, except the few worst drifting pairs, capped (`max_drift_pairs`), as an info metric.
Cells, their drift and drifting pairs are counted as `counted_drift` and `counts_its_pair` say, so that sums over a
cluster's agents count a cross-node cell once (at its source's node) and a half's controller drift at the node
whose zone programs it.
No `_created` series: families are built by hand, never from client-side counter objects.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterator

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest

from ..core.drift import DRIFT_CLASSES, CheckedCell, counted_drift, counted_here, counts_its_pair
from ..core.drift_attribution import drifting_pairs, policy_drift
from ..core.findings import FindingKind
from ..core.manifests import MODELLED_KINDS
from ..core.state import AgentState, Histogram

PROGRAMMED_KINDS = frozenset({
    FindingKind.UNOWNED_ACL, FindingKind.UNKNOWN_ACL, FindingKind.POLICY_NOT_PROGRAMMED, FindingKind.LOCALNET_UNMAPPED,
    FindingKind.PATCH_PORT_MISSING, FindingKind.LOCALNET_SWITCH_MISSING, FindingKind.ATTACHMENT_PORT_MISSING,
    FindingKind.PROFILE_MISMATCH})
DEFAULT_MAX_DRIFT_PAIRS = 20


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    buckets = [(repr(float(b)), float(c)) for b, c in zip(h.buckets, h.counts)] + [("+Inf", float(h.count))]
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=h.total)


def _drift_detail(state: AgentState, max_pairs: int) -> Iterator[Metric]:
    """Drift per policy, and the `max_pairs` worst drifting pairs (with how many pairs drift in all)."""
    by_policy = GaugeMetricFamily("segcheck_policy_drift_cells",
                                  "Drifting cells per class, by the policy deciding their expected verdict.",
                                  labels=["network", "policy", "class"])
    count = GaugeMetricFamily("segcheck_drift_pairs", "Pairs with at least one drifting cell.", labels=["network"])
    drifting: list[CheckedCell] = []
    for net in state.networks:
        name = str(net.network)
        # One pass over all cells; the rest sees only the drifting ones, each with the drift counted here.
        drifts = [c for c in net.cells if c.drift]
        cells = [c if counted_drift(c) == c.drift else replace(c, drift=counted_drift(c)) for c in drifts]
        cells = [c for c in cells if c.drift]
        for (policy, cls), n in sorted(policy_drift(cells).items(), key=lambda kv: (kv[0][0], kv[0][1].value)):
            by_policy.add_metric([name, policy, cls.value], n)
        count.add_metric([name], len({(c.source, c.destination) for c in drifts if counts_its_pair(c)}))
        drifting.extend(cells)
    pairs = GaugeMetricFamily("segcheck_drift_pair_info",
                              f"The worst drifting pairs (at most {max_pairs}), each by its worst cell.",
                              labels=["network", "source", "destination", "class", "policy", "port"])
    for pair in drifting_pairs(drifting)[:max_pairs]:
        pairs.add_metric([pair.network, pair.source, pair.destination, pair.worst.value, ",".join(pair.policies),
                          pair.port], 1.0)
    yield from (by_policy, count, pairs)


class StateCollector:
    def __init__(self, state: Callable[[], AgentState | None], max_drift_pairs: int = DEFAULT_MAX_DRIFT_PAIRS):
        self._state = state
        self._max_drift_pairs = max_drift_pairs

    def describe(self) -> list[Metric]:
        return []  # contents depend on the state; describing nothing keeps registration free of a scrape

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        if state is None:
            return
        drift = GaugeMetricFamily("segcheck_drift_cells", "Cells showing each drift class, per network.",
                                  labels=["network", "class"])
        cells = GaugeMetricFamily("segcheck_cells", "Cells compared in the last evaluation (a cross-node cell: at "
                                  "its source's node).", labels=["network"])
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
                for d in counted_drift(cell) if cell.drift else ():
                    counts[d.value] += 1
            for cls, n in counts.items():
                drift.add_metric([name, cls], n)
            cells.add_metric([name], sum(1 for cell in net.cells if counted_here(cell)))
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
        yield from _drift_detail(state, self._max_drift_pairs)

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


def registry_for(state: Callable[[], AgentState | None],
                 max_drift_pairs: int = DEFAULT_MAX_DRIFT_PAIRS) -> CollectorRegistry:
    """A registry of our own (not the global one), holding only the state collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(state, max_drift_pairs))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
