"""Drift: the expected, programmed and observed planes compared cell by cell.

Classes (agent/core/drift.py): leak = passes (observed, else programmed) though denied by policy; blackhole =
blocked though allowed; controller = programmed != expected; dataplane = observed != programmed; unknown = a
probe gave no evidence. A plane that was not read or not probed is None.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from segcheck.agent.core.render import cell_json
from segcheck.agent.core.drift import (
    DRIFT_CLASSES,
    CheckedCell,
    DriftClass,
    check_points,
    classify,
    pairs,
    sample_port,
    summarize,
)
from segcheck.agent.core.model import (
    Judgement,
    PortRange,
    Protocol,
    Reason,
    ServicePort,
    Verdict,
)
from segcheck.agent.core.programmed import ProgrammedPlane
from segcheck.agent.core.reachability import NetworkReachability

from tests.nb_builders import NET_REF, NETWORK, seed_inventory, seed_nb

A, D, U = Verdict.ALLOWED, Verdict.DENIED, Verdict.UNKNOWN
TCP, UDP = Protocol.TCP, Protocol.UDP
LEAK, BLACKHOLE, CONTROLLER, DATAPLANE, UNKNOWN = (DriftClass.LEAK, DriftClass.BLACKHOLE, DriftClass.CONTROLLER,
                                                   DriftClass.DATAPLANE, DriftClass.UNKNOWN)
POD, VM, DB = "default/podclient", "default/vm-server", "ext:db"

# ----------------------------------------------------------------------------- classify, as a truth table

# (expected, programmed, observed) -> drift; None = plane not read / not probed. Default: no drift.
CLASSIFY_EXCEPTIONS = {
    # Policy allows.
    (A, A, D): (BLACKHOLE, DATAPLANE),
    (A, A, U): (UNKNOWN,),
    (A, D, A): (CONTROLLER, DATAPLANE),  # traffic passes as declared, though OVN says it should not
    (A, D, D): (BLACKHOLE, CONTROLLER),
    (A, D, U): (BLACKHOLE, CONTROLLER, UNKNOWN),  # no evidence: the programmed verdict stands in
    (A, D, None): (BLACKHOLE, CONTROLLER),
    (A, U, D): (BLACKHOLE,),
    (A, U, U): (UNKNOWN,),
    (A, None, D): (BLACKHOLE,),
    (A, None, U): (UNKNOWN,),
    # Policy denies.
    (D, A, A): (LEAK, CONTROLLER),
    (D, A, D): (CONTROLLER, DATAPLANE),
    (D, A, U): (LEAK, CONTROLLER, UNKNOWN),
    (D, A, None): (LEAK, CONTROLLER),
    (D, D, A): (LEAK, DATAPLANE),
    (D, D, U): (UNKNOWN,),
    (D, U, A): (LEAK,),
    (D, U, U): (UNKNOWN,),
    (D, None, A): (LEAK,),
    (D, None, U): (UNKNOWN,),
    # Policy undecided (the expected plane does not produce this today): neither leak nor blackhole can be
    # claimed; any programmed verdict counts as differing from it.
    (U, A, A): (CONTROLLER,),
    (U, A, D): (CONTROLLER, DATAPLANE),
    (U, A, U): (CONTROLLER, UNKNOWN),
    (U, A, None): (CONTROLLER,),
    (U, D, A): (CONTROLLER, DATAPLANE),
    (U, D, D): (CONTROLLER,),
    (U, D, U): (CONTROLLER, UNKNOWN),
    (U, D, None): (CONTROLLER,),
    (U, U, U): (UNKNOWN,),
    (U, None, U): (UNKNOWN,),
}
COMBINATIONS = list(itertools.product((A, D, U), (A, D, U, None), (A, D, U, None)))


def test_classify_truth_table():
    assert set(CLASSIFY_EXCEPTIONS) <= set(COMBINATIONS), "the table names impossible combinations"
    want = {c: CLASSIFY_EXCEPTIONS.get(c, ()) for c in COMBINATIONS}
    got = {(e, p, o): classify(Judgement(e), None if p is None else Judgement(p), None if o is None else Judgement(o))
           for e, p, o in COMBINATIONS}
    wrong = {c: (want[c], got[c]) for c in COMBINATIONS if want[c] != got[c]}
    assert not wrong, "\n".join(f"{c}: want {w}, got {g}" for c, (w, g) in wrong.items())


def test_three_planes_agreeing_is_no_drift():
    for v in (A, D):
        assert classify(Judgement(v), Judgement(v), Judgement(v)) == ()
        assert classify(Judgement(v), Judgement(v), None) == ()
        assert classify(Judgement(v), None, None) == ()


def test_reasons_do_not_count_only_verdicts():
    assert classify(Judgement(A, (Reason("x"),)), Judgement(A, (Reason("acl/1"),)),
                    Judgement(A, (Reason("probe/syn-ack"),))) == ()


# ----------------------------------------------------------------------------- check points

@pytest.fixture(scope="module")
def seed():
    inv = seed_inventory()
    expected = NetworkReachability(inv, NET_REF)
    return expected, {e.key: e for e in expected.endpoints}


def programmed_with_db_range(last: int) -> ProgrammedPlane:
    """The seed, with the DB allow ACL widened from 5432 to 5432..last (a controller that got endPort wrong)."""
    nb = seed_nb()
    acls = {u: replace(a, match=a.match.replace("tcp.dst==5432", f"5432<=tcp.dst<={last}"))
            for u, a in nb.acls.items()}
    return ProgrammedPlane(replace(nb, acls=acls), NETWORK)


def rows(cells: list[CheckedCell]) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    return [(str(c.ports), c.expected.verdict.value, c.programmed.verdict.value if c.programmed else None,
             tuple(d.value for d in c.drift)) for c in cells]


def test_seed_check_points_agree(seed):
    expected, eps = seed
    cells = check_points(expected, ProgrammedPlane(seed_nb(), NETWORK), eps[POD], eps[DB])
    assert rows(cells) == [
        ("1-5431/TCP", "denied", "denied", ()), ("5432/TCP", "allowed", "allowed", ()),
        ("5433-65535/TCP", "denied", "denied", ()),
        ("*/UDP", "denied", "denied", ()), ("*/SCTP", "denied", "denied", ())]
    assert [c.sample_port for c in cells] == [1, 5432, 5433, 1, 1]
    assert {(c.network, c.source, c.destination) for c in cells} == {("default/tenantblue", POD, DB)}
    assert all(c.observed is None for c in cells)


def test_check_points_cut_where_either_plane_changes(seed):
    expected, eps = seed
    cells = check_points(expected, programmed_with_db_range(5440), eps[POD], eps[DB], protocols=(TCP,))
    assert rows(cells) == [
        ("1-5431/TCP", "denied", "denied", ()), ("5432/TCP", "allowed", "allowed", ()),
        ("5433-5440/TCP", "denied", "allowed", ("leak", "controller")),
        ("5441-65535/TCP", "denied", "denied", ())]


def test_check_points_without_programmed_plane_follow_the_expected_plane(seed):
    expected, eps = seed
    cells = check_points(expected, None, eps[VM], eps[DB], protocols=(TCP, UDP))
    assert rows(cells) == [("1-5431/TCP", "denied", None, ()), ("5432/TCP", "allowed", None, ()),
                           ("5433-65535/TCP", "denied", None, ()), ("*/UDP", "denied", None, ())]


class SplitPlane:
    """A programmed plane whose segments are cut where nothing changes (cuts alone must not make cells)."""

    def __init__(self, judgement: Judgement, cuts: tuple[int, ...]):
        self.judgement, self.cuts = judgement, cuts

    def segments(self, source, destination, protocol):
        bounds = [1, *self.cuts, 65536]
        return [(PortRange(protocol, lo, hi - 1), self.judgement) for lo, hi in itertools.pairwise(bounds)]


def test_check_points_merge_where_both_planes_are_equal(seed):
    expected, eps = seed
    deny = expected.judge(eps[DB], eps[VM], 1, TCP)
    cells = check_points(expected, SplitPlane(deny, (100, 5432, 5433)), eps[DB], eps[VM], protocols=(TCP,))
    assert rows(cells) == [("*/TCP", "denied", "denied", ())]


def test_check_points_never_leave_equal_neighbours(seed):
    expected, _ = seed
    plane = programmed_with_db_range(6000)
    for src, dst in pairs(expected):
        cells = check_points(expected, plane, src, dst)
        for a, b in itertools.pairwise(cells):
            if a.protocol is b.protocol:
                assert a.ports.last + 1 == b.ports.first
                assert (a.expected, a.programmed) != (b.expected, b.programmed)


def test_with_observed_reclassifies(seed):
    expected, eps = seed
    [cell] = [c for c in check_points(expected, ProgrammedPlane(seed_nb(), NETWORK), eps[POD], eps[DB], (TCP,))
              if c.ports.first == 5432]
    assert cell.drift == ()
    blocked = cell.with_observed(Judgement(D, (Reason("probe/timeout"),)))
    assert (blocked.observed.verdict, blocked.drift) == (D, (BLACKHOLE, DATAPLANE))
    assert cell.with_observed(None).drift == ()


# ----------------------------------------------------------------------------- sample port

@pytest.mark.parametrize("ports,rng,want", [
    ((ServicePort(5432),), PortRange(TCP, 5000, 6000), 5432),
    ((ServicePort(5432),), PortRange(TCP, 5432, 5432), 5432),
    ((ServicePort(5432),), PortRange(TCP, 1, 5431), 1),
    ((ServicePort(5432),), PortRange(TCP, 5433, 65535), 5433),
    ((ServicePort(5432),), PortRange(UDP), 1),  # a TCP service is no answer on UDP
    ((ServicePort(53, UDP),), PortRange(UDP, 1, 100), 53),
    ((ServicePort(8080), ServicePort(5432)), PortRange(TCP, 5000, 9000), 8080),  # the first declared
    ((), PortRange(TCP, 7, 9), 7),
])
def test_sample_port_prefers_a_declared_service_port(seed, ports, rng, want):
    _, eps = seed
    assert sample_port(rng, replace(eps[DB], ports=ports)) == want


def test_sample_port_of_a_workload_is_the_first_port(seed):
    _, eps = seed
    assert sample_port(PortRange(TCP, 5000, 6000), eps[VM]) == 5000


# ----------------------------------------------------------------------------- pairs, summaries, JSON

def test_pairs_have_a_workload_at_one_end(seed):
    expected, _ = seed
    assert [(s.key, d.key) for s, d in pairs(expected)] == [
        (POD, VM), (POD, DB), (VM, POD), (VM, DB), (DB, POD), (DB, VM)]
    assert [(s.key, d.key) for s, d in pairs(expected, local=[POD])] == [(POD, VM), (POD, DB), (VM, POD), (DB, POD)]
    assert pairs(expected, local=[]) == []


def cell(ports: PortRange, drift: tuple[DriftClass, ...] = (), programmed: Judgement | None = None,
         observed: Judgement | None = None) -> CheckedCell:
    return CheckedCell("default/tenantblue", POD, DB, ports.protocol, ports, ports.first,
                       Judgement(D, (Reason("default/default-deny:egress"),)), programmed, observed, drift)


def test_summarize_counts_every_class():
    cells = [cell(PortRange(TCP), (LEAK, CONTROLLER)), cell(PortRange(UDP), (LEAK,)), cell(PortRange(TCP, 1, 1))]
    assert summarize(cells) == {"leak": 2, "blackhole": 0, "controller": 1, "dataplane": 0, "unknown": 0}
    assert summarize([]) == {c.value: 0 for c in DRIFT_CLASSES}


def test_cell_json_for_all_ports():
    assert cell_json(cell(PortRange(TCP))) == {
        "from": POD, "to": DB, "port": None, "protocol": "TCP", "expected": "denied",
        "because": ["default/default-deny:egress"], "sample_port": 1, "programmed": None, "observed": None,
        "drift": []}


def test_cell_json_for_a_range_with_all_planes():
    out = cell_json(cell(PortRange(TCP, 5433, 5440), (LEAK, CONTROLLER),
                         Judgement(A, (Reason("acl/8340a7b2", "from-lport ... allow-related"),)),
                         Judgement(A, (Reason("probe/syn-ack", "SYN-ACK from 192.168.200.5"),))))
    assert (out["port"], out["end_port"], out["sample_port"]) == (5433, 5440, 5433)
    assert out["programmed"] == {"verdict": "allowed", "because": ["acl/8340a7b2"],
                                 "reasons": [{"ref": "acl/8340a7b2", "detail": "from-lport ... allow-related"}]}
    assert out["observed"]["because"] == ["probe/syn-ack"]
    assert out["drift"] == ["leak", "controller"]
    # One shape for every command: a matrix cell's keys first, then the planes a check adds.
    assert list(out) == ["from", "to", "port", "end_port", "protocol", "expected", "because", "sample_port",
                         "programmed", "observed", "drift"]


def test_cell_json_for_one_port_has_no_end_port():
    out = cell_json(cell(PortRange(TCP, 5432, 5432)))
    assert out["port"] == 5432 and "end_port" not in out
