"""Interconnect: every node is its own OVN zone and judges only the halves of a cell it runs. NB snapshots of
one zone written as OVN-K's interconnect mode leaves them (only local pods' ports; port groups with only local
members), checked for what each node may and may not claim."""

from __future__ import annotations

import dataclasses

import pytest

from segcheck.agent.core.drift import DriftClass
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Protocol, Verdict
from segcheck.agent.runtime.checker import Checker
from tests.nb_builders import NET_REF, POD_LSP, VM_LSP, Nb, acl, seed_inventory

TCP = Protocol.TCP
POD, VM, DB = "default/podclient", "default/vm-server", "ext:db"
NODES = {"podclient": "worker-0", "vm-server": "worker-1"}


@pytest.fixture(scope="module")
def inventory():
    """The seed with its workloads scheduled: podclient on worker-0, vm-server on worker-1."""
    inv = seed_inventory()
    inv.attachments = [dataclasses.replace(a, node=NODES[a.ref.name]) for a in inv.attachments]
    return inv


def zone(local: str, *, egress_deny: bool = True, ingress_deny: bool = True) -> Nb:
    """One node's NB for the seed policies (default deny both ways, DB egress allowed): the local pod's port only."""
    nb = Nb().without_port(VM_LSP if local == POD_LSP else POD_LSP)
    allow_db = acl("a11ow-db", "from-lport", 1001, "allow-related",
                   "ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @pg_allow")
    nb.group("pg_allow", (local,), allow_db, owner="default:allow-db-egress")
    if egress_deny:
        nb.group("pg_egress_deny", (local,), acl("dddd0001", "from-lport", 1000, "drop", "inport == @pg_egress_deny"),
                 owner="default:default-deny")
    if ingress_deny:
        nb.group("pg_ingress_deny", (local,), acl("dddd0002", "to-lport", 1000, "drop", "outport == @pg_ingress_deny"),
                 owner="default:default-deny")
    return nb


def cell(cells, source, destination, port):
    return next(c for c in cells if (c.source, c.destination, c.protocol) == (source, destination, TCP)
                and c.ports.first <= port <= c.ports.last)


def plan(inventory, nb: Nb, node: str):
    checker = Checker(inventory, NET_REF, nb.build(), profile=PROFILES["4.14"], zone=node, protocols=(TCP,))
    return checker.plan()


def test_a_local_deny_decides_and_matches(inventory):
    cells = plan(inventory, zone(POD_LSP), "worker-0")
    out = cell(cells, POD, VM, 8080)  # podclient's egress default deny runs here
    assert out.programmed.verdict is Verdict.DENIED and out.drift == ()
    back = cell(cells, VM, POD, 8080)  # podclient's ingress default deny runs here
    assert back.programmed.verdict is Verdict.DENIED and back.drift == ()


def test_the_service_path_is_judged_whole_where_both_halves_run(inventory):
    # An external destination is left through the source's node: that zone runs every stage.
    db = cell(plan(inventory, zone(POD_LSP), "worker-0"), POD, DB, 5432)
    assert db.programmed.verdict is Verdict.ALLOWED and db.drift == ()
    assert db.expected_here is None


def test_a_half_judged_elsewhere_is_remote_never_a_leak(inventory):
    # On worker-1, podclient -> vm-server: the egress half (podclient's default deny) runs on worker-0; here
    # vm-server's ingress default deny decides. Without it here, the local half allows: remote, not a leak.
    cells = plan(inventory, zone(VM_LSP, ingress_deny=False), "worker-1")
    out = cell(cells, POD, VM, 8080)
    assert out.programmed.verdict is Verdict.REMOTE
    assert DriftClass.LEAK not in out.drift
    judged_on = [r for r in out.programmed.reasons if r.ref.startswith("nb/judged-on/")]
    assert [r.ref for r in judged_on] == ["nb/judged-on/worker-0"] * 2  # both egress stages
    # ... but the local half is wrong (vm-server's ingress must deny): controller drift, on this node.
    assert out.drift == (DriftClass.CONTROLLER,) and out.expected_here is Verdict.DENIED


def test_a_cell_with_no_local_end_is_remote_with_both_nodes_named(inventory):
    cells = plan(inventory, zone(VM_LSP), "worker-1")
    out = cell(cells, POD, DB, 5432)  # podclient on worker-0 -> the DB: nothing of it runs on worker-1
    assert out.programmed.verdict is Verdict.REMOTE and out.drift == ()
    assert {e.node for e in out.programmed.effects} == {"worker-0"}


def test_a_local_workload_without_a_port_is_missing_not_remote(inventory):
    nb = zone(POD_LSP).without_port(POD_LSP)
    out = cell(plan(inventory, nb, "worker-0"), POD, DB, 5432)
    assert out.programmed.verdict is Verdict.UNKNOWN
    assert any(r.ref == "nb/port-missing" for r in out.programmed.reasons)


def test_without_a_zone_every_workload_must_have_a_port_here(inventory):
    checker = Checker(inventory, NET_REF, zone(POD_LSP).build(), profile=PROFILES["4.14"], protocols=(TCP,))
    out = cell(checker.plan(), POD, VM, 8080)
    assert out.programmed.verdict is Verdict.UNKNOWN  # single-zone reading: vm-server's port is missing
