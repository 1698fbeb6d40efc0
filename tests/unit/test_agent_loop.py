"""The agent loop on unit fakes: what is probed when (a schedule by due time), observations dropped when the
planes they were taken under change, and controller drift published while a probe batch is still in flight."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest

from segcheck.agent.adapters.probers.simulated import SimulatedProber
from segcheck.agent.core.model import Attachment, Endpoint, Verdict
from segcheck.agent.core.northbound import NbSnapshot
from segcheck.agent.core.probe import ProbeJob, ProbeResult, SendPoint
from segcheck.agent.core.state import AgentState
from segcheck.agent.runtime.agent import LEAK_SAMPLE_FLOOR, Agent
from segcheck.agent.runtime.schedule import Lane, ProbeSchedule

from ..memory_declared import StaticDeclared
from ..nb_builders import NET_REF, seed_inventory, seed_nb

DB = ipaddress.ip_address("192.168.200.5")
NET = str(NET_REF)


class FakeNb:
    """An OVSDB reader whose monitor fires when the test swaps the snapshot."""

    def __init__(self, snapshot: NbSnapshot) -> None:
        self.snap, self.on_change, self.last_success, self.connected = snapshot, None, 0.0, True

    def snapshot(self) -> NbSnapshot:
        return self.snap

    def set(self, snapshot: NbSnapshot) -> None:
        self.snap = snapshot
        assert self.on_change is not None
        self.on_change()

    def close(self) -> None:
        pass


class Workloads:
    """Sends as every workload (attachments), never as an external endpoint."""

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        if not isinstance(endpoint, Attachment) or endpoint.ip is None:
            return None
        return SendPoint("ns", "net1", endpoint.ip)

    def why_not(self, endpoint: Endpoint) -> str | None:
        return None if self.send_point(endpoint) is not None else "not a workload of this node"


def seed_truth(job: ProbeJob) -> Verdict:
    """The seed's dataplane when it matches its policies: only the DB port answers."""
    return Verdict.ALLOWED if (job.dst_ip, job.dst_port) == (DB, 5432) else Verdict.DENIED


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def without_db_allow(nb: NbSnapshot) -> NbSnapshot:
    """The seed's NB with the ACLs of allow-db-egress gone from their port group (as `ovn-nbctl remove`)."""
    owned = {u for u, a in nb.acls.items() if "allow-db-egress" in dict(a.external_ids).get("k8s.ovn.org/name", "")}
    assert owned
    groups = {n: replace(g, acls=tuple(u for u in g.acls if u not in owned)) for n, g in nb.port_groups.items()}
    return replace(nb, port_groups=groups, acls={u: a for u, a in nb.acls.items() if u not in owned})


def counts(state: AgentState) -> dict[str, int]:
    return state.drift_counts()[NET_REF]


def probed_ports(runs: Sequence[Sequence[ProbeJob]]) -> list[int | None]:
    return sorted(j.dst_port for run in runs for j in run)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_agent(clock: Clock, prober: object, nb: FakeNb | None = None, **kw: object) -> Agent:
    options = {"interval": 30.0, "jitter": 0.0, "sentinel_interval": 1.0, "leak_budget": 0.1, **kw}
    return Agent(StaticDeclared(seed_inventory()), nb or FakeNb(seed_nb()), None, prober, Workloads(),  # type: ignore[arg-type]
                 "node-a", clock=clock, only_local=False, **options)  # type: ignore[arg-type]


def test_first_step_probes_every_local_tcp_cell_then_only_what_is_due(clock: Clock) -> None:
    prober = SimulatedProber(seed_truth)
    agent = make_agent(clock, prober)
    state = agent.step()
    assert len(prober.runs) == 1 and not any(counts(state).values()), counts(state)
    first = probed_ports(prober.runs)
    assert 5432 in first and len(first) > 2
    assert agent.step() is state and len(prober.runs) == 1  # nothing due: no probe, no new publication
    clock.now += 1.0
    agent.step()
    assert probed_ports(prober.runs[1:]) == [5432, 5432]  # the two sentinels: podclient and vm-server -> db
    clock.now += 29.0
    agent.step()
    assert sorted(probed_ports(prober.runs[2:])) == first  # every cell once per interval


def test_denied_cells_rotate_within_the_leak_budget(clock: Clock) -> None:
    prober = SimulatedProber(seed_truth)
    agent = make_agent(clock, prober, leak_budget=1000.0)  # far above the seed's cells: the floor decides
    agent.step()
    assert agent.denied_period == LEAK_SAMPLE_FLOOR < agent.interval
    clock.now += LEAK_SAMPLE_FLOOR
    agent.step()
    assert len(prober.runs[-1]) == len(prober.runs[0])  # denied cells too, not only the sentinels


def test_the_leak_budget_stretches_the_rotation_of_many_denied_cells(clock: Clock) -> None:
    agent = make_agent(clock, SimulatedProber(seed_truth), leak_budget=2.0)
    agent.step()
    denied = sum(1 for r in agent.plan.by_id.values() if r.probed and r.cell.expected.verdict is Verdict.DENIED)
    assert agent.denied_period == min(agent.interval, max(LEAK_SAMPLE_FLOOR, denied / 2.0))


def test_leak_is_seen_by_the_denied_cell_rotation(clock: Clock) -> None:
    leaking = {False: seed_truth, True: lambda job: Verdict.ALLOWED if job.dst_ip == DB else seed_truth(job)}
    mode = {"leak": False}
    agent = make_agent(clock, SimulatedProber(lambda job: leaking[mode["leak"]](job)), leak_budget=1000.0)
    assert not any(counts(agent.step()).values())
    mode["leak"] = True
    clock.now += LEAK_SAMPLE_FLOOR
    assert counts(agent.step())["leak"] > 0


def test_changed_planes_drop_the_observation_and_reprobe_first(clock: Clock) -> None:
    prober = SimulatedProber(seed_truth)
    nb = FakeNb(seed_nb())
    agent = make_agent(clock, prober, nb)
    agent.step()
    nb.set(without_db_allow(nb.snap))
    clock.now += 0.1  # nothing is due by time
    state = agent.step()
    db = [c for n in state.networks for c in n.cells if c.destination == "ext:db" and c.sample_port == 5432
          and c.source.startswith("default/")]
    assert len(db) == 2
    assert probed_ports(prober.runs[1:]) == [5432, 5432]  # re-probed at once, under the new planes
    assert all(c.programmed is not None and c.programmed.verdict is Verdict.DENIED for c in db)
    assert counts(state)["controller"] == 2 and counts(state)["dataplane"] == 2  # the dataplane still passes


class GatedProber:
    """Blocks in `run` until released (bounded), so a test can act while a batch is in flight."""

    def __init__(self) -> None:
        self.name = "gated"
        self.inner = SimulatedProber(seed_truth)
        self.entered, self.release = threading.Event(), threading.Event()

    def run(self, jobs: Sequence[ProbeJob], *, timeout: float = 1.0, rate: float = 20000.0) -> list[ProbeResult]:
        self.entered.set()
        self.release.wait(10)
        return self.inner.run(jobs, timeout=timeout, rate=rate)


@pytest.fixture
def gated() -> Iterator[GatedProber]:
    prober = GatedProber()
    yield prober
    prober.release.set()


def test_controller_drift_is_published_while_a_probe_batch_is_in_flight(gated: GatedProber) -> None:
    nb = FakeNb(seed_nb())
    agent = Agent(StaticDeclared(seed_inventory()), nb, None, gated, Workloads(), "node-a",  # type: ignore[arg-type]
                  interval=30.0, jitter=0.0, only_local=False)
    agent.start()
    try:
        assert gated.entered.wait(10), "no probe batch started"
        nb.set(without_db_allow(nb.snap))
        state = agent.wait_for(lambda s: counts(s)["controller"] > 0, timeout=10)
        assert state is not None and not gated.release.is_set(), "controller drift waited for the probe batch"
        assert state.rounds == 0
        gated.release.set()
        assert agent.wait_for(lambda s: s.rounds >= 1, timeout=10) is not None
    finally:
        gated.release.set()
        agent.stop()


# -- the schedule ---------------------------------------------------------------------------------------------

class Rec:
    """Stands in for a CellRecord: the schedule only reads and writes `ticket`."""

    def __init__(self, name: str) -> None:
        self.name, self.ticket = name, -1


def names(records: Sequence[object]) -> list[str]:
    return [r.name for r in records]  # type: ignore[attr-defined]


def test_schedule_serves_lanes_in_order_earliest_first_within_horizon_and_budget() -> None:
    s = ProbeSchedule()
    a, b, c, d, e = (Rec(x) for x in "abcde")
    s.put(c, Lane.ROUTINE, 5.0)  # type: ignore[arg-type]
    s.put(b, Lane.SENTINEL, 9.0)  # type: ignore[arg-type]
    s.put(a, Lane.URGENT, 0.0)  # type: ignore[arg-type]
    s.put(d, Lane.ROUTINE, 3.0)  # type: ignore[arg-type]
    s.put(e, Lane.ROUTINE, 20.0)  # type: ignore[arg-type]
    assert s.next_due() == 0.0
    assert names(s.take(10.0, 3)) == ["a", "b", "d"]
    assert names(s.take(10.0, 10)) == ["c"]
    assert s.take(10.0, 10) == [] and s.next_due() == 20.0


def test_a_rescheduled_record_has_one_live_entry() -> None:
    s = ProbeSchedule()
    a = Rec("a")
    s.put(a, Lane.ROUTINE, 1.0)  # type: ignore[arg-type]
    s.put(a, Lane.SENTINEL, 7.0)  # type: ignore[arg-type]
    assert s.next_due() == 7.0
    assert names(s.take(100.0, 10)) == ["a"] and s.take(100.0, 10) == []
