"""The always-on agent: keeps the three planes of every network current on one node and compares them.

One loop thread owns the plan and the published state. Sources only signal changes (kube watch, OVSDB monitor,
file mtimes); the loop re-plans at once (no probing needed to see controller drift) and publishes. Probing runs
on a worker thread, one batch at a time, so a batch waiting for silent probes never delays that reaction.
Each planned cell sits in a schedule by due time (O(due cells) per tick): cells never observed or whose
planes changed first, allowed cells (sentinels) every `sentinel_interval`, denied cells rotated within
`leak_budget` probes per second (each at most every `LEAK_SAMPLE_FLOOR`), every cell at least every `interval`, at
most `max_probes` per batch.
Readers (metrics, HTTP) only ever see whole states.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from typing import Any, Callable

from ..adapters.liveness import LivenessMonitor
from ..adapters.ovsdb import NorthboundReader, OvsReader
from ..core.drift import CheckedCell
from ..core.enforcement import DEFAULT_PROFILE, OvnkProfile
from ..core.model import Endpoint, Protocol, Ref, Verdict
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import Evidence, ProbeResult, Prober
from ..core.state import AgentState, SourceHealth
from .cell_records import NOT_SCHEDULED, CellRecord, Observation, Plan, PlanChange
from .checker import Locator, single_cell
from .database_watch import DatabaseWatch
from .declared import DeclaredSource
from .planner import Planner
from .probe_worker import ProbeWorker
from .publisher import StatePublisher
from .schedule import Lane, ProbeSchedule

LOG = logging.getLogger("segcheck.agent")
HEALTH_REFRESH_SECONDS = 5.0
SOURCE_RETRY_SECONDS = 2.0  # an OVSDB source that is down is re-tried this often even without a signal
REPROBE_TIMEOUT = 0.3  # wait of a batch of re-probes (see `_execute`)
LEAK_SAMPLE_FLOOR = 3.0  # a denied cell is re-probed at most this often (each costs confirmed silence)
BATCH_SLACK = 0.25  # cells due this soon join the batch being sent: fewer, fuller batches

Outcome = tuple[CellRecord, "Judgement | None", float]  # record as sent, what was observed (None: not probed), when


class Agent:
    def __init__(self, declared: DeclaredSource, nb: NorthboundReader | None, ovs: OvsReader | None,
                 prober: Prober | None, locator: Locator | None, node: str, *, profile: OvnkProfile = DEFAULT_PROFILE,
                 interval: float = 30.0, jitter: float = 0.2, max_probes: int = 5000, probe_rate: float = 2000.0,
                 probe_timeout: float = 1.0, version: str = "dev", clock: Callable[[], float] = time.time,
                 only_local: bool = True, sentinel_interval: float = 1.0, max_sentinels: int = 200,
                 leak_budget: float = 100.0, liveness: LivenessMonitor | None = None):
        self.declared, self.prober, self.locator, self.node, self.profile = declared, prober, locator, node, profile
        self.interval, self.jitter, self.max_probes, self.probe_timeout = interval, jitter, max_probes, probe_timeout
        self.sentinel_interval, self.leak_budget, self.version, self.clock = sentinel_interval, leak_budget, version, clock
        self.planner = Planner(prober, locator, node, profile, only_local=only_local, probe_timeout=probe_timeout,
                               probe_rate=probe_rate, max_sentinels=max_sentinels)
        self.publisher = StatePublisher(node, profile.name, version, clock)
        self.schedule = ProbeSchedule()
        self.liveness = liveness  # daemons and external services answering (ovs-vswitchd, ovn-controller, ext:*)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.nb: DatabaseWatch[NbSnapshot] = DatabaseWatch("ovn_nb", nb, self.poke, clock)
        self.ovs: DatabaseWatch[OvsSnapshot] = DatabaseWatch("ovs", ovs, self.poke, clock)
        self._prober_health = SourceHealth("prober", prober is not None, 0.0, "" if prober else "no prober",
                                           configured=prober is not None)
        self._plan: Plan | None = None
        self._generation: int | None = None
        self._denied_period = interval
        self._not_before = 0.0
        self._last_publish = 0.0
        self._collected_at = 0.0
        self._collect_due = False
        self._rng = random.Random()
        self._worker: ProbeWorker[list[CellRecord], list[Outcome]] = ProbeWorker(self._execute, self.poke)
        self._probe_lock = threading.Lock()  # on-demand probes share the prober with batches
        self._thread: threading.Thread | None = None
        self.loop_heartbeat = 0.0

    @property
    def state(self) -> AgentState | None:
        return self.publisher.state

    @property
    def plan(self) -> Plan | None:
        """The cells this node checks now, with their last observations (the loop thread's; read only)."""
        return self._plan

    @property
    def denied_period(self) -> float:
        """How often a denied cell is re-probed now (the leak budget shared by the plan's denied cells)."""
        return self._denied_period

    def poke(self) -> None:
        self._wake.set()

    # -- lifecycle --

    def start(self) -> None:
        self.declared.start(self.poke)
        if self.liveness is not None:
            self.liveness.start(self.poke)
        # DaemonSet pods started together must not probe in step.
        self._not_before = self.clock() + self._rng.uniform(0, min(self.interval, 5.0) * self.jitter)
        self._worker.start()
        self._thread = threading.Thread(target=self._loop, name="segcheck-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._worker.signal_stop()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
        self._worker.join(max(0.0, deadline - time.monotonic()))
        self.declared.stop()
        if self.liveness is not None:
            self.liveness.stop()
        self.nb.close()
        self.ovs.close()

    def wait_for(self, predicate: Callable[[AgentState], bool], timeout: float) -> AgentState | None:
        """Block until a published state satisfies `predicate` (woken by each publication), or time out."""
        return self.publisher.wait_for(predicate, timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.loop_heartbeat = self.clock()
            self._wake.clear()  # before the turn: a signal during the turn wakes the next wait at once
            try:
                self._turn(inline=False)
            except Exception:  # noqa: BLE001 - the agent must outlive any one bad turn
                LOG.exception("evaluation failed; retrying")
            self._wake.wait(self._idle_seconds())

    def _idle_seconds(self) -> float:
        wait = HEALTH_REFRESH_SECONDS
        if self.nb.down or self.ovs.down:
            wait = SOURCE_RETRY_SECONDS
        due = self.schedule.next_due() if self._probing and not self._worker.busy else None
        if due is not None:
            wait = min(wait, max(due, self._not_before) - self.clock())
        return max(0.0, wait)

    @property
    def _probing(self) -> bool:
        return self.prober is not None and self.locator is not None and self.max_probes > 0

    # -- one turn --

    def step(self) -> AgentState:
        """One synchronous turn: re-plan if a source changed, probe what is due (on this thread), publish."""
        return self._turn(inline=True)

    def _turn(self, inline: bool) -> AgentState:
        replan = self.nb.refresh() | self.ovs.refresh()  # both read: `|`, not `or`
        if not self.declared.synced():
            # Half a listing (workloads before the policies that isolate them) would raise false alarms.
            if self._plan is not None or self.state is None:
                self._set_plan(None)
            return self._publish()
        generation = self.declared.generation()
        dirty = False
        if replan or self._plan is None or generation != self._generation:
            self._generation = generation
            self._set_plan(self._make_plan())
            dirty = True
        if inline:
            if self._dispatchable():
                dirty |= self._apply(self._execute(self._take()))
        else:
            for batch, outcomes in self._worker.collect():
                dirty |= self._apply(outcomes) if outcomes is not None else self._requeue(batch)
            if self._dispatchable() and not self._worker.busy and self.clock() >= self._not_before:
                batch = self._take()
                if batch:
                    self._worker.submit(batch)
        if dirty or self.state is None:
            state = self._publish()
            self._keep_heap()  # after the publication: readers never wait for the collector
            return state
        if self.clock() - self._last_publish >= HEALTH_REFRESH_SECONDS:
            self._last_publish = self.clock()
            self.publisher.refresh(self._sources())
        assert self.state is not None
        return self.state

    def _dispatchable(self) -> bool:
        due = self.schedule.next_due() if self._probing else None
        return due is not None and due <= self.clock()

    def _take(self) -> list[CellRecord]:
        return self.schedule.take(self.clock() + BATCH_SLACK, self.max_probes)

    def _make_plan(self) -> Plan:
        inventory, _ = self.declared.inventory()
        return self.planner.plan(inventory, self.declared.declared_errors(), self.nb.snapshot, self.ovs.snapshot,
                                 self._plan)

    def _set_plan(self, plan: Plan | None) -> None:
        if plan is not None and plan is self._plan and plan.change is not None:
            self._update_plan(plan, plan.change)
            return
        self._plan = plan
        self.schedule.clear()
        self.publisher.replanned(plan)
        self._collect_due = True
        if plan is None:
            return
        self._denied_period = self._denied_period_of(plan)
        self._schedule_all(plan)

    def _denied_period_of(self, plan: Plan) -> float:
        # Denied cells rotate within the leak budget, so a dataplane leak shows well before a full round.
        return min(self.interval, max(LEAK_SAMPLE_FLOOR, plan.denied_probed / self.leak_budget
                                      if self.leak_budget > 0 else self.interval))

    def _schedule_all(self, plan: Plan) -> None:
        now, stretch = self.clock(), self._stretch()
        for record in plan.by_id.values():
            if record.probed:
                self._schedule_new(record, now, stretch)

    def _schedule_new(self, record: CellRecord, now: float, stretch: float) -> None:
        if record.observation is None:
            self.schedule.put(record, Lane.URGENT, 0.0)
        else:
            self._reschedule(record, min(record.observation.at, now), stretch)

    def _update_plan(self, plan: Plan, change: PlanChange) -> None:
        """The plan was updated in place: unschedule the records it dropped, schedule those it built, move the
        kept ones whose sentinel flag flipped; the rest keep their schedule entries. Dropped records hold no
        cycles (reference counting frees them), so no full collection is due now; whatever else the old checker
        leaves goes at the collection due once per interval."""
        self.publisher.replaced(change.removed, change.added)
        for record in change.removed:
            record.ticket = NOT_SCHEDULED  # its heap entry is skipped when it surfaces
        period = self._denied_period_of(plan)
        if period != self._denied_period:  # every denied cell's period changes: schedule everything again
            self._denied_period = period
            self.schedule.clear()
            self._schedule_all(plan)
            return
        now, stretch = self.clock(), self._stretch()
        for record in change.added:
            if record.probed:
                self._schedule_new(record, now, stretch)
        for record in change.resentineled:
            if record.probed and record.ticket != NOT_SCHEDULED:  # in flight: rescheduled when it lands
                self._schedule_new(record, now, stretch)

    def _keep_heap(self) -> None:
        """The plan and its observations are the bulk of the heap and long-lived: keep them out of the garbage
        collector's full scans (gc.freeze), or a tick's few thousand allocations would trigger O(heap)
        collections (35 of a 45 ms sentinel tick at 282k cells). Cyclic garbage is collected after each re-plan
        and at least once per interval."""
        if self._collect_due:
            gc.unfreeze()
            gc.collect()
            self._collected_at, self._collect_due = self.clock(), False
        gc.freeze()

    def _stretch(self) -> float:
        """One jitter draw per batch: cells probed together stay together (one batch, not one per cell), and
        batches of different nodes drift apart."""
        return 1 + self._rng.uniform(-self.jitter, self.jitter)

    def _reschedule(self, record: CellRecord, since: float, stretch: float) -> None:
        if record.sentinel and self.sentinel_interval > 0:
            lane, period = Lane.SENTINEL, self.sentinel_interval
        elif record.cell.expected.verdict is Verdict.DENIED:
            lane, period = Lane.ROUTINE, self._denied_period
        else:
            lane, period = Lane.ROUTINE, self.interval
        self.schedule.put(record, lane, since + period * stretch)

    # -- probing --

    def _execute(self, batch: list[CellRecord]) -> list[Outcome]:
        """Probe a batch (any thread): one prober run per network. Never raises."""
        started = self.clock()
        by_network: dict[int, list[CellRecord]] = {}
        for record in batch:
            by_network.setdefault(id(record.network), []).append(record)
        # Re-probes (cells observed before) wait briefly: on the same L2 answers come in milliseconds, and the
        # prober re-probes silence (fresh 5-tuples, canaries) before it calls anything denied.
        timeout = (min(self.probe_timeout, REPROBE_TIMEOUT) if all(r.observation is not None for r in batch)
                   else None)
        outcomes: list[Outcome] = []
        results: list[ProbeResult] = []
        failed = 0
        with self._probe_lock:
            for records in by_network.values():
                checker = records[0].network.checker
                try:
                    observed, probes = checker.observe([r.cell for r in records], timeout)
                except Exception as exc:  # noqa: BLE001 - a failed run leaves its cells unobserved
                    LOG.warning("probe run failed", extra={"network": str(checker.network), "error": str(exc)})
                    observed, probes, failed = [r.cell for r in records], [], failed + len(records)
                at = self.clock()
                results += probes
                outcomes += [(r, cell.observed, at) for r, cell in zip(records, observed)]
        self.publisher.count(results)
        errors = failed + sum(1 for r in results if r.evidence is Evidence.ERROR)
        total = failed + len(results)
        self._prober_health = SourceHealth("prober", not total or errors < total, 0.0,
                                           f"{errors}/{total} probes failed" if errors else "")
        self.publisher.round_done(self.clock() - started)
        return outcomes

    def _apply(self, outcomes: list[Outcome]) -> bool:
        """Land observations on the current plan's records; an observation taken under other planes is dropped."""
        plan = self._plan
        if plan is None:
            return False
        stretch = self._stretch()
        for sent, judgement, at in outcomes:
            record = plan.by_id.get(sent.id)
            if record is None or not record.probed:
                continue
            if judgement is not None and record.planes == sent.planes:
                self.publisher.observed(record, record.observe(Observation(judgement, at, sent.planes)))
                self._reschedule(record, at, stretch)
            elif record.ticket < 0:
                self._reschedule(record, at, stretch)  # not probed (no send point): try again a period later
        self._collect_due |= self.clock() - self._collected_at >= self.interval
        return True

    def _requeue(self, batch: list[CellRecord]) -> bool:
        plan, now, stretch = self._plan, self.clock(), self._stretch()
        for sent in batch:
            record = plan.by_id.get(sent.id) if plan is not None else None
            if record is not None and record.probed and record.ticket < 0:
                self._reschedule(record, now, stretch)
        return False

    # -- publication --

    def _sources(self) -> tuple[SourceHealth, ...]:
        declared = SourceHealth(self.declared.name, self.declared.up(), self.declared.staleness())
        return (declared, self.nb.aged_health(), self.ovs.aged_health(), self._prober_health,
                *(self.liveness.health() if self.liveness is not None else ()))

    def _publish(self) -> AgentState:
        self._last_publish = self.clock()
        return self.publisher.publish(self._plan, self._sources())

    # -- on-demand --

    def probe_now(self, network: Ref, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol,
                  inventory: Any, family: int | None = None) -> CheckedCell:
        """One cell probed now (dual-stack: in `family`, default the pair's first)."""
        checker = self.planner.checker(inventory, network, self.nb.snapshot, self.ovs.snapshot,
                                       extra=(source, destination))
        cell = single_cell(checker, source, destination, port, protocol, family)
        with self._probe_lock:
            observed, results = checker.observe([cell], protocols=frozenset({Protocol.TCP, Protocol.UDP}))
        self.publisher.count(results)
        return observed[0]
