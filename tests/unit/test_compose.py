"""The cluster's view composed from each node's halves (`verify --cluster`): the cells each agent publishes,
rendered to the JSON of /v1/matrix and composed back, on NB zones written as OVN-K's interconnect mode leaves
them (tests/unit/test_zones.py)."""

from __future__ import annotations

from dataclasses import dataclass

from segcheck.agent.adapters.agent_client import AgentUnreachable
from segcheck.agent.core.compose import compose, halves_from_agent
from segcheck.agent.core.drift import DriftClass
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.render import cell_json
from segcheck.agent.runtime.checker import Checker
from segcheck.agent.runtime.cluster_view import cluster_view
from segcheck.agent.runtime.status import Status
from tests.nb_builders import NET_REF, POD_LSP, VM_LSP
from tests.unit.test_zones import POD, TCP, VM, cell, inventory, zone  # noqa: F401 - the fixture

NET = str(NET_REF)


def agent_matrix(inventory, nb, node: str) -> dict:
    """What the agent on `node` serves at /v1/matrix: its local cells, judged in its own zone."""
    checker = Checker(inventory, NET_REF, nb.build(), profile=PROFILES["4.14"], zone=node, protocols=(TCP,))
    local = {"worker-0": POD, "worker-1": VM}[node]
    cells = [c for c in checker.plan() if local in (c.source, c.destination)]
    return {"node": node, "sources": [], "networks": [{"network": NET, "cells": [cell_json(c) for c in cells]}]}


def composed(*matrices: dict):
    halves = [h for m in matrices for n in m["networks"] for h in halves_from_agent(m["node"], n["network"], n["cells"])]
    return compose(halves)


def test_a_cross_node_cell_is_the_and_of_both_nodes_halves(inventory):
    view = composed(agent_matrix(inventory, zone(POD_LSP), "worker-0"), agent_matrix(inventory, zone(VM_LSP), "worker-1"))
    out = cell(view, POD, VM, 8080)
    assert out.programmed.verdict is Verdict.DENIED and out.drift == ()
    assert dict(out.judged_by) == {"egress": "worker-0", "ingress": "worker-1"}
    assert {r.detail.split(":")[0] for r in out.programmed.reasons} == {"on worker-0", "on worker-1"}
    assert all(c.programmed.verdict is not Verdict.REMOTE for c in view)


def test_a_leak_needs_both_halves_open_and_is_seen_once(inventory):
    open_0 = agent_matrix(inventory, zone(POD_LSP, egress_deny=False), "worker-0")
    open_1 = agent_matrix(inventory, zone(VM_LSP, ingress_deny=False), "worker-1")
    tight_1 = agent_matrix(inventory, zone(VM_LSP), "worker-1")
    # One node's half open: that node has controller drift, the cell is still denied by the other half.
    half = cell(composed(open_0, tight_1), POD, VM, 8080)
    assert half.programmed.verdict is Verdict.DENIED and half.drift == ()
    # Both open: the composed cell passes where policy denies it.
    both = cell(composed(open_0, open_1), POD, VM, 8080)
    assert both.programmed.verdict is Verdict.ALLOWED
    assert set(both.drift) == {DriftClass.LEAK, DriftClass.CONTROLLER}


def test_a_half_nobody_judged_is_unknown_never_allowed(inventory):
    only_0 = agent_matrix(inventory, zone(POD_LSP, egress_deny=False), "worker-0")
    out = cell(composed(only_0), POD, VM, 8080)
    assert out.programmed.verdict is Verdict.UNKNOWN
    assert [r.ref for r in out.programmed.reasons] == ["cluster/half-not-judged"]


@dataclass
class Agent:
    url: str
    answer: dict | None

    def matrix(self, network=None):
        if self.answer is None:
            raise AgentUnreachable(f"cannot reach the agent at {self.url}")
        return self.answer


def test_cluster_view_names_what_did_not_answer(inventory):
    both = [Agent("http://w0", agent_matrix(inventory, zone(POD_LSP), "worker-0")),
            Agent("http://w1", agent_matrix(inventory, zone(VM_LSP), "worker-1"))]
    clean = cluster_view(both)
    assert clean.nodes == ["worker-0", "worker-1"] and clean.status is Status.MATCH
    assert cluster_view(both, drift_only=True).cells == []
    partial = cluster_view([both[0], Agent("http://w1", None)])
    assert partial.unreachable == ["http://w1: cannot reach the agent at http://w1"]
    assert partial.status is Status.COULD_NOT_CHECK
