"""Metrics of a cluster's agents, one per node and zone: each cross-node cell is planned by both its nodes, and
summed over the agents (as the dashboards and alerts sum them) it is counted once — at its source's node, which
probes it — while a half's controller drift is counted at the node whose zone programs that half."""

from __future__ import annotations

import dataclasses

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.drift import DriftClass, counted_drift, counted_here
from segcheck.agent.core.model import Judgement, Reason, Verdict
from tests.nb_builders import POD_LSP, SEED, VM_LSP, acl
from tests.unit.test_drift_attribution import samples, state_of
from tests.unit.test_zones import NODES, POD, VM, cell, plan, zone
from tests.builders import allow_client_to_server

ALLOW = allow_client_to_server()


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("allow") / "allow.yaml"
    path.write_text(ALLOW)
    inv, errors = load_inventory([SEED, path])
    assert not errors, [str(e) for e in errors]
    inv.attachments = [dataclasses.replace(a, node=NODES[a.ref.name]) for a in inv.attachments]
    return inv


def zones(*, ingress_allow: bool = True, ingress_deny: bool = True):
    """Both zones with the seed and the allow policy; `ingress_allow=False`: worker-1 lost its ingress ACL;
    `ingress_deny=False`: worker-1 lost vm-server's ingress default deny."""
    egress = acl("a110e001", "from-lport", 1001, "allow-related",
                 "ip4.dst == 192.168.200.20/32 && tcp && tcp.dst==8080 && inport == @pg_cs_egress")
    ingress = acl("a110e002", "to-lport", 1001, "allow-related",
                  "ip4.src == 192.168.200.10/32 && tcp && tcp.dst==8080 && outport == @pg_cs_ingress")
    w0 = zone(POD_LSP).group("pg_cs_egress", (POD_LSP,), egress, owner="default:allow-client-to-server")
    w1 = zone(VM_LSP, ingress_deny=ingress_deny)
    if ingress_allow:
        w1 = w1.group("pg_cs_ingress", (VM_LSP,), ingress, owner="default:allow-client-to-server")
    return w0, w1


def node_states(inventory, w0, w1, observed: Verdict | None):
    """Each node's cells as its agent publishes them; worker-0 probed podclient -> vm-server and saw `observed`
    (None: what policy expects, as the worker-0 half and the dataplane deliver it)."""
    def seen(c):
        return Judgement(observed or c.expected.verdict, (Reason("probe/test"),))
    cells0 = [c.with_observed(seen(c)) if (c.source, c.destination) == (POD, VM) else c
              for c in plan(inventory, w0, "worker-0")]
    cells1 = plan(inventory, w1, "worker-1")
    return {"worker-0": cells0, "worker-1": cells1}


def summed(states, name: str, **labels: str) -> float:
    return sum(float(s["value"]) for cells in states.values() for s in samples(state_of(cells)).get(name, [])
               if all(s.get(k) == v for k, v in labels.items()))


def test_a_cross_node_cell_counts_at_its_source_node_only(inventory):
    states = node_states(inventory, *zones(), observed=Verdict.ALLOWED)
    across0, across1 = (cell(states[n], POD, VM, 8080) for n in ("worker-0", "worker-1"))
    assert counted_here(across0) and not counted_here(across1)
    assert across0.drift == across1.drift == ()
    # Each node counts the cells of its workload but those whose egress half the other node judges (the unit
    # checker plans every pair; an agent plans only the pairs with a local end).
    for node, mine, theirs in (("worker-0", POD, VM), ("worker-1", VM, POD)):
        counted = float(samples(state_of(states[node]))["segcheck_cells"][0]["value"])
        assert counted == sum(1 for c in states[node] if mine in (c.source, c.destination) and c.source != theirs)

def test_a_blackhole_across_nodes_is_counted_once_and_the_wrong_half_where_it_is(inventory):
    # worker-1 lost the ingress allow: its half denies what policy allows (a blackhole by its programmed plane,
    # and controller drift), and worker-0's probe sees the blackhole too (its half lets the traffic pass).
    states = node_states(inventory, *zones(ingress_allow=False), observed=Verdict.DENIED)
    across0, across1 = (cell(states[n], POD, VM, 8080) for n in ("worker-0", "worker-1"))
    assert across0.drift == (DriftClass.BLACKHOLE,)
    assert set(across1.drift) == {DriftClass.BLACKHOLE, DriftClass.CONTROLLER}  # what /v1/matrix says
    assert counted_drift(across1) == (DriftClass.CONTROLLER,)  # what its metrics count
    assert summed(states, "segcheck_drift_cells", **{"class": "blackhole"}) == 1
    assert summed(states, "segcheck_drift_cells", **{"class": "controller"}) == 1
    assert summed(states, "segcheck_drift_pairs") == 1  # at worker-0, whose probe sees the blackhole
    assert summed(states, "segcheck_policy_drift_cells", **{"class": "blackhole"}) == 1
    pairs = {n: samples(state_of(c)).get("segcheck_drift_pair_info", []) for n, c in states.items()}
    assert [(p["source"], p["class"]) for p in pairs["worker-0"]] == [(POD, "blackhole")]
    assert [(p["source"], p["class"]) for p in pairs["worker-1"]] == [(POD, "controller")]


def test_a_cell_misprogrammed_in_both_zones_is_controller_drift_in_each(inventory):
    # Both halves of podclient -> vm-server (but 8080) open where policy denies it: a leak, seen by worker-0's probe (and
    # counted there only), and each zone's own controller drift (two controllers wrote a wrong half).
    w0, w1 = zone(POD_LSP, egress_deny=False), zone(VM_LSP, ingress_deny=False)
    states = node_states(inventory, w0, w1, observed=Verdict.ALLOWED)
    across = {n: [c for c in cells if (c.source, c.destination) == (POD, VM) and c.expected.verdict is Verdict.DENIED]
              for n, cells in states.items()}
    assert across["worker-0"] and across["worker-1"]
    assert all(DriftClass.LEAK in c.drift for c in across["worker-0"])
    assert [counted_drift(c) for c in across["worker-1"]] == [(DriftClass.CONTROLLER,)] * len(across["worker-1"])
    assert all(set(counted_drift(c)) == {DriftClass.LEAK, DriftClass.CONTROLLER} for c in across["worker-0"])


def test_a_wrong_half_alone_is_one_drifting_pair_at_its_node(inventory):
    # worker-1 lost vm-server's ingress default deny: worker-0's egress half still denies podclient -> vm-server,
    # so only worker-1 knows; it counts the pair (and the DB's traffic to vm-server, judged whole there).
    states = node_states(inventory, *zones(ingress_deny=False), observed=None)
    pairs = {n: float(samples(state_of(c))["segcheck_drift_pairs"][0]["value"]) for n, c in states.items()}
    drifting1 = {(c.source, c.destination) for c in states["worker-1"] if c.drift}
    assert (POD, VM) in drifting1 and pairs == {"worker-0": 0, "worker-1": len(drifting1)}
