"""The always-on agent: keeps the three planes of every network current on one node and compares them.

One loop thread owns all work. Sources only signal changes (kube watch, OVSDB monitor, file mtimes); the loop
re-evaluates at once (no probing needed to see controller drift), publishes an immutable `AgentState`, then
probes the cells that are due: those whose declared or programmed verdict changed first, then the oldest,
each at least every `interval` seconds, within `max_probes` per round. Readers (metrics, HTTP) only ever see
whole states.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from ..adapters.ovsdb import NorthboundReader, OvsReader, SourceDown
from ..core.drift import CheckedCell, summarize
from ..core.enforcement import DEFAULT_PROFILE, OvnkProfile
from ..core.model import Attachment, Endpoint, Protocol, Ref, Verdict
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import ProbeResult, Prober
from ..core.state import PROBE_BUCKETS, ROUND_BUCKETS, AgentState, Histogram, NetworkState, SourceHealth
from .checker import Checker, Locator, single_cell
from .declared import DeclaredSource

LOG = logging.getLogger("segcheck.agent")
HEALTH_REFRESH_SECONDS = 5.0
SENTINEL_TIMEOUT = 0.5  # an allowed path on the same L2 answers in milliseconds



@dataclass
class _Observation:
    judgement: Any
    at: float
    planes: tuple[str, str]  # (expected, programmed) verdicts when probed


@dataclass
class _Plan:
    """What only changes with the declared or programmed state: the cells to check and the findings."""

    key: tuple[int, int, int]
    checkers: list[Checker]
    cells: list[list[CheckedCell]]
    findings: list[tuple[Any, ...]]
    mappings: list[Any]
    local: dict[str, bool]
    errors: tuple[str, ...]


def _planes(cell: CheckedCell) -> tuple[str, str]:
    return (cell.expected.verdict.value, cell.programmed.verdict.value if cell.programmed else "none")


class Agent:
    def __init__(self, declared: DeclaredSource, nb: NorthboundReader | None, ovs: OvsReader | None,
                 prober: Prober | None, locator: Locator | None, node: str, *, profile: OvnkProfile = DEFAULT_PROFILE,
                 interval: float = 30.0, jitter: float = 0.2, max_probes: int = 5000, probe_rate: float = 2000.0,
                 probe_timeout: float = 1.0, version: str = "dev", clock: Callable[[], float] = time.time,
                 only_local: bool = True, sentinel_interval: float = 1.0, max_sentinels: int = 200):
        self.declared, self.nb_reader, self.ovs_reader = declared, nb, ovs
        self.prober, self.locator, self.node, self.profile = prober, locator, node, profile
        self.interval, self.jitter, self.max_probes = interval, jitter, max_probes
        self.probe_rate, self.probe_timeout, self.version, self.clock = probe_rate, probe_timeout, version, clock
        self.only_local = only_local
        # Allowed cells (the service paths: workloads -> DB) are re-probed every `sentinel_interval` so a
        # dataplane blackhole shows within about that long; the rest waits for the full round.
        self.sentinel_interval, self.max_sentinels = sentinel_interval, max_sentinels
        self._next_sentinel = 0.0
        self._plan: _Plan | None = None
        self._merged: dict[tuple[str, tuple[str, str, str, int]], tuple[CheckedCell, _Observation | None, CheckedCell]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._nb_dirty = self._ovs_dirty = True
        self._nb: NbSnapshot | None = None
        self._ovs: OvsSnapshot | None = None
        self._nb_health = SourceHealth("ovn_nb", False, float("inf"), "not read yet")
        self._ovs_health = SourceHealth("ovs", False, float("inf"), "not read yet")
        self._prober_health = SourceHealth("prober", prober is not None, 0.0, "" if prober else "no prober")
        self._observations: dict[tuple[str, tuple[str, str, str, int]], _Observation] = {}
        self._probes_by_result = {v.value: 0 for v in Verdict}
        self._probe_hist = Histogram(PROBE_BUCKETS)
        self._round_hist = Histogram(ROUND_BUCKETS)
        self._rounds = 0
        self._drift_signature: frozenset[Any] | None = None
        self._last_drift_change = 0.0
        self._next_round = 0.0
        self._rng = random.Random()
        self.state: AgentState | None = None
        self.loop_heartbeat = 0.0
        self._thread: threading.Thread | None = None
        self._probe_lock = threading.Lock()  # on-demand probes share the prober with rounds
        self._published = threading.Condition()
        if nb is not None:
            nb.on_change = self._on_nb
        if ovs is not None:
            ovs.on_change = self._on_ovs

    # -- signals from sources --

    def _on_nb(self) -> None:
        self._nb_dirty = True
        self._wake.set()

    def _on_ovs(self) -> None:
        self._ovs_dirty = True
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    # -- lifecycle --

    def start(self) -> None:
        self.declared.start(self.poke)
        self._next_round = self.clock() + self._rng.uniform(0, min(self.interval, 5.0) * self.jitter)
        self._next_sentinel = self._next_round
        self._thread = threading.Thread(target=self._loop, name="segcheck-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.declared.stop()
        for reader in (self.nb_reader, self.ovs_reader):
            if reader is not None:
                reader.close()

    def wait_for(self, predicate: Callable[[AgentState], bool], timeout: float) -> AgentState | None:
        """Block until a published state satisfies `predicate` (woken by each publication), or time out."""
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

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.loop_heartbeat = self.clock()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the agent must outlive any one bad round
                LOG.exception("evaluation failed; retrying next round")
            wait = max(0.0, min(self._next_round, self._next_sentinel if self.sentinel_interval > 0 else self._next_round)
                       - self.clock())
            # OVSDB sources that are down are re-tried every few seconds even without a signal.
            if (self.nb_reader and not self._nb_health.up) or (self.ovs_reader and not self._ovs_health.up):
                wait = min(wait, 2.0)
            # Between evaluations, staleness keeps growing: refresh it without re-evaluating the planes.
            while not self._wake.wait(timeout=min(wait, HEALTH_REFRESH_SECONDS)):
                wait -= HEALTH_REFRESH_SECONDS
                if wait <= 0:
                    break
                self._refresh_sources()
            self._wake.clear()

    # -- one step --

    def _read(self, reader: NorthboundReader | OvsReader | None, dirty: bool, current: Any, health: SourceHealth
              ) -> tuple[Any, SourceHealth, bool]:
        if reader is None:
            return None, SourceHealth(health.name, False, 0.0, "not configured"), False
        if not dirty and health.up and reader.connected:
            return current, SourceHealth(health.name, True, 0.0), False
        try:
            snap = reader.snapshot()
            return snap, SourceHealth(health.name, True, 0.0), False
        except SourceDown as exc:
            last = reader.last_success
            stale = self.clock() - last if last else float("inf")
            if health.up:
                LOG.warning("source down", extra={"source": health.name, "error": str(exc)})
            return None, SourceHealth(health.name, False, stale, str(exc)), True

    def _local(self, endpoint: Endpoint) -> bool:
        """Whether this node checks cells with this endpoint at one end: it runs here (as the API says), or
        this node can send as it. Sharding by node keeps the work per agent independent of the cluster's size."""
        if isinstance(endpoint, Attachment) and endpoint.node:
            if endpoint.node == self.node:
                return True
            if self.only_local:
                return False
        return self.locator is not None and self.locator.send_point(endpoint) is not None

    def step(self) -> AgentState:
        self._nb, self._nb_health, self._nb_dirty = self._read(self.nb_reader, self._nb_dirty, self._nb, self._nb_health)
        self._ovs, self._ovs_health, self._ovs_dirty = self._read(self.ovs_reader, self._ovs_dirty, self._ovs, self._ovs_health)
        if not self.declared.synced():
            # Half a listing (workloads before the policies that isolate them) would raise false alarms.
            self._plan = None
            self._publish()
            assert self.state is not None
            return self.state
        key = (self.declared.generation(), id(self._nb), id(self._ovs))
        if self._plan is None or self._plan.key != key:
            self._plan = self._make_plan(key)
            live = {(name, cell.key) for c, cells in zip(self._plan.checkers, self._plan.cells)
                    for name in (str(c.network),) for cell in cells}
            self._observations = {k: v for k, v in self._observations.items() if k in live}
            self._merged = {}
            self._publish()
        now = self.clock()
        full = now >= self._next_round
        sentinel = self.sentinel_interval > 0 and now >= self._next_sentinel
        if full or sentinel or self._changed_cells(self._plan):
            self._probe_round(self._plan, full)
            self._publish()
        assert self.state is not None
        return self.state

    def _make_plan(self, key: tuple[int, int, int]) -> _Plan:
        inventory, errors = self.declared.inventory()
        plan = _Plan(key, [], [], [], [], {}, tuple(str(e) for e in errors))
        for ref, net in sorted(inventory.networks.items()):
            if net.cni_type != "ovn-k8s-cni-overlay":
                continue
            checker = Checker(inventory, ref, self._nb, self._ovs, self.prober, self.locator, self.profile,
                              self.probe_timeout, self.probe_rate)
            for e in checker.expected.endpoints:
                if e.key not in plan.local:
                    plan.local[e.key] = self._local(e)
            endpoints = checker.expected.endpoints
            local = [e for e in endpoints if plan.local[e.key]]
            # Only pairs with a local end: from each local endpoint to all, and from the others to each local one.
            pairs = [(s, d) for s in local for d in endpoints
                     if s.key != d.key and (isinstance(s, Attachment) or isinstance(d, Attachment))]
            pairs += [(s, d) for d in local for s in endpoints
                      if not plan.local[s.key] and (isinstance(s, Attachment) or isinstance(d, Attachment))]
            mapping = checker.mapping()
            plan.checkers.append(checker)
            plan.cells.append(checker.plan(pairs))
            plan.mappings.append(mapping)
            plan.findings.append(tuple(checker.findings() + (list(mapping.findings) if mapping else [])))
        return plan

    def _changed_cells(self, plan: _Plan) -> bool:
        for checker, cells in zip(plan.checkers, plan.cells):
            for cell in cells:
                obs = self._observations.get((str(checker.network), cell.key))
                if obs is not None and obs.planes != _planes(cell):
                    return True
        return False

    def _probe_round(self, plan: _Plan, full: bool) -> None:
        """Probe what is due: changed or never-probed cells first, then (full round) everything older than the
        interval, or (sentinel tick) the allowed cells older than the sentinel interval."""
        if self.prober is None or self.locator is None:
            self._schedule_next(full)
            return
        now = self.clock()
        due: list[tuple[int, float, Checker, CheckedCell]] = []
        sentinels = 0
        for checker, cells in zip(plan.checkers, plan.cells):
            for cell in cells:
                if cell.protocol is not Protocol.TCP or not plan.local.get(cell.source, False):
                    continue
                obs = self._observations.get((str(checker.network), cell.key))
                if obs is None:
                    due.append((0, 0.0, checker, cell))
                elif obs.planes != _planes(cell):
                    due.append((0, obs.at, checker, cell))
                elif full and now - obs.at >= self.interval * 0.9:
                    due.append((2, obs.at, checker, cell))
                elif (cell.expected.verdict is Verdict.ALLOWED and sentinels < self.max_sentinels
                      and self.sentinel_interval > 0 and now - obs.at >= self.sentinel_interval * 0.9):
                    sentinels += 1
                    due.append((1, obs.at, checker, cell))
        due.sort(key=lambda d: (d[0], d[1]))
        due = due[: self.max_probes]
        # A sentinel tick only re-checks paths that answered before: a short wait keeps detection near a second.
        timeout = None if any(d[0] != 1 for d in due) else min(self.probe_timeout, SENTINEL_TIMEOUT)
        started = self.clock()
        by_checker: dict[int, list[CheckedCell]] = {}
        owners: dict[int, Checker] = {}
        for _, _, checker, cell in due:
            by_checker.setdefault(id(checker), []).append(cell)
            owners[id(checker)] = checker
        results: list[ProbeResult] = []
        with self._probe_lock:
            for key, cells in by_checker.items():
                checker = owners[key]
                observed, probes = checker.observe(cells, timeout)
                results += probes
                at = self.clock()
                for cell in observed:
                    if cell.observed is not None:
                        self._observations[(str(checker.network), cell.key)] = _Observation(cell.observed, at, _planes(cell))
            self._count(results)
        errors = sum(1 for r in results if r.evidence.value == "error")
        self._prober_health = SourceHealth("prober", not results or errors < len(results), 0.0,
                                           f"{errors}/{len(results)} probes failed" if errors else "")
        if due:
            self._rounds += 1
            self._round_hist.observe(self.clock() - started)
        self._schedule_next(full)

    def _source_health(self) -> tuple[SourceHealth, ...]:
        now = self.clock()

        def aged(h: SourceHealth, reader: NorthboundReader | OvsReader | None) -> SourceHealth:
            if h.up or reader is None or reader.last_success is None:
                return h
            return replace(h, staleness_seconds=now - reader.last_success)

        declared = SourceHealth(self.declared.name, self.declared.up(), self.declared.staleness())
        return (declared, aged(self._nb_health, self.nb_reader), aged(self._ovs_health, self.ovs_reader),
                self._prober_health)

    def _refresh_sources(self) -> None:
        state = self.state
        if state is not None:
            self.state = replace(state, sources=self._source_health())
            with self._published:
                self._published.notify_all()

    def _schedule_next(self, full: bool) -> None:
        now = self.clock()
        if full:
            self._next_round = now + self.interval * (1 + self._rng.uniform(-self.jitter, self.jitter))
        self._next_sentinel = now + self.sentinel_interval * (1 + self._rng.uniform(-self.jitter, self.jitter))

    def _publish(self) -> None:
        plan = self._plan
        networks = []
        if plan is not None:
            for checker, cells, findings, mapping in zip(plan.checkers, plan.cells, plan.findings, plan.mappings):
                name = str(checker.network)
                merged = []
                for cell in cells:
                    key = (name, cell.key)
                    obs = self._observations.get(key)
                    hit = self._merged.get(key)
                    if hit is None or hit[0] is not cell or hit[1] is not obs:
                        hit = (cell, obs, cell.with_observed(obs.judgement) if obs is not None else cell)
                        self._merged[key] = hit
                    merged.append(hit[2])
                networks.append(NetworkState(checker.network, tuple(merged), findings, mapping))
        signature = frozenset((n.network, c.key, c.drift) for n in networks for c in n.cells if c.drift)
        now = self.clock()
        if signature != self._drift_signature:
            if self._drift_signature is not None or signature:
                self._last_drift_change = now
                LOG.info("drift changed", extra={"drift_cells": len(signature),
                                                 "classes": {k: v for n in networks for k, v in summarize(n.cells).items() if v}})
            self._drift_signature = signature
        self.state = AgentState(
            node=self.node, profile=self.profile.name, version=self.version, evaluated_at=now,
            networks=tuple(networks),
            sources=self._source_health(),
            probes_by_result=dict(self._probes_by_result), probe_durations=self._probe_hist.copy(),
            round_durations=self._round_hist.copy(), rounds=self._rounds, last_drift_change=self._last_drift_change,
            declared_errors=plan.errors if plan is not None else (),
        )
        with self._published:
            self._published.notify_all()

    # -- on-demand --

    def probe_now(self, network: Ref, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol,
                  inventory: Any) -> CheckedCell:
        checker = Checker(inventory, network, self._nb, self._ovs, self.prober, self.locator, self.profile,
                          self.probe_timeout, self.probe_rate, extra=(source, destination))
        cell = single_cell(checker, source, destination, port, protocol)
        with self._probe_lock:
            observed, results = checker.observe([cell], protocols=frozenset({Protocol.TCP, Protocol.UDP}))
            self._count(results)
        return observed[0]

    def _count(self, results: Sequence[ProbeResult]) -> None:
        """Probe counters and RTTs (under the probe lock: rounds and on-demand probes both count)."""
        for r in results:
            self._probes_by_result[r.verdict.value] += 1
            if r.rtt_seconds is not None:
                self._probe_hist.observe(r.rtt_seconds)
