"""The agent's published state: probe counters, drift bookkeeping, and whole `AgentState`s for readers.

The loop publishes; metrics and HTTP read `state` (one assignment, never a half-built state) or block in
`wait_for` until a publication satisfies them. Drift is tracked per record as observations land, so a
publication copies each network's cell list once, never re-classifies every cell.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Callable, Sequence

from ..core.drift import DriftClass
from ..core.model import Verdict
from ..core.probe import ProbeResult
from ..core.state import PROBE_BUCKETS, ROUND_BUCKETS, AgentState, Histogram, NetworkState, SourceHealth
from .cell_records import CellId, CellRecord, Plan

LOG = logging.getLogger("segcheck.agent")


class StatePublisher:
    def __init__(self, node: str, profile: str, version: str, clock: Callable[[], float]) -> None:
        self.node, self.profile, self.version, self.clock = node, profile, version, clock
        self.state: AgentState | None = None
        self._published = threading.Condition()
        self._counts_lock = threading.Lock()  # rounds and on-demand probes count from other threads
        self._probes_by_result = {v.value: 0 for v in Verdict}
        self._probe_hist = Histogram(PROBE_BUCKETS)
        self._round_hist = Histogram(ROUND_BUCKETS)
        self._rounds = 0
        self._drifting: dict[CellId, tuple[DriftClass, ...]] = {}
        self._classes: Counter[DriftClass] = Counter()
        self._last_drift_change = 0.0
        self._networks: tuple[NetworkState, ...] | None = None  # None: rebuild at the next publication

    # -- counters --

    def count(self, results: Sequence[ProbeResult]) -> None:
        with self._counts_lock:
            for r in results:
                self._probes_by_result[r.verdict.value] += 1
                if r.rtt_seconds is not None:
                    self._probe_hist.observe(r.rtt_seconds)

    def round_done(self, seconds: float) -> None:
        with self._counts_lock:
            self._rounds += 1
            self._round_hist.observe(seconds)

    # -- drift --

    def replanned(self, plan: Plan | None) -> None:
        """A new plan: drift of every cell (planning is O(cells) anyway)."""
        drifting = {} if plan is None else {r.id: r.view.drift for r in plan.by_id.values() if r.view.drift}
        changed = drifting != self._drifting
        self._drifting = drifting
        self._classes = Counter(c for drift in drifting.values() for c in drift)
        self._networks = None
        if changed:
            self._drift_changed()

    def replaced(self, removed: Sequence[CellRecord], added: Sequence[CellRecord]) -> None:
        """The plan was updated in place: `removed` records left it, `added` ones joined (O(changed cells))."""
        self._networks = None
        before = {r.id: r.view.drift for r in removed if r.view.drift}
        after = {r.id: r.view.drift for r in added if r.view.drift}
        for record in removed:
            drift = self._drifting.pop(record.id, None)
            if drift:
                self._classes.subtract(drift)
        for cid, drift in after.items():
            self._drifting[cid] = drift
            self._classes.update(drift)
        if before != after:
            self._drift_changed()

    def observed(self, record: CellRecord, before: tuple[DriftClass, ...]) -> None:
        self._networks = None
        after = record.view.drift
        if after == before:
            return
        self._classes.subtract(before)
        self._classes.update(after)
        if after:
            self._drifting[record.id] = after
        else:
            self._drifting.pop(record.id, None)
        self._drift_changed()

    def _drift_changed(self) -> None:
        self._last_drift_change = self.clock()
        LOG.info("drift changed", extra={"drift_cells": len(self._drifting),
                                         "classes": {c.value: n for c, n in sorted(self._classes.items(),
                                                                                   key=lambda kv: kv[0].value) if n}})

    # -- publication --

    def publish(self, plan: Plan | None, sources: tuple[SourceHealth, ...]) -> AgentState:
        if self._networks is None:
            self._networks = () if plan is None else tuple(
                NetworkState(net.checker.network, net.cells(), net.findings, net.mapping) for net in plan.networks)
        with self._counts_lock:
            state = AgentState(
                node=self.node, profile=self.profile, version=self.version, evaluated_at=self.clock(),
                networks=self._networks, sources=sources, probes_by_result=dict(self._probes_by_result),
                probe_durations=self._probe_hist.copy(), round_durations=self._round_hist.copy(), rounds=self._rounds,
                last_drift_change=self._last_drift_change, declared_errors=plan.errors if plan is not None else (),
                unplaced_findings=plan.unplaced if plan is not None else ())
        self._swap(state)
        return state

    def refresh(self, sources: tuple[SourceHealth, ...]) -> None:
        """Sources' health and staleness only, between evaluations."""
        if self.state is not None:
            self._swap(replace(self.state, sources=sources))

    def _swap(self, state: AgentState) -> None:
        self.state = state
        with self._published:
            self._published.notify_all()

    def wait_for(self, predicate: Callable[[AgentState], bool], timeout: float) -> AgentState | None:
        deadline = time.monotonic() + timeout
        with self._published:
            while True:
                state = self.state
                if state is not None and predicate(state):
                    return state
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._published.wait(left)
