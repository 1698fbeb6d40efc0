"""Rendering: the stable JSON contract of the expected matrix, and the rows and glyph grid a human scans."""

from __future__ import annotations

import pytest
from segcheck.agent.core.findings import Finding, FindingKind, Severity
from segcheck.agent.core.model import Judgement, PortRange, Protocol, Reason, Verdict
from segcheck.agent.core.reachability import Cell, NetworkReachability
from segcheck.agent.core.render import (
    cell_json,
    cell_row,
    grid,
    judgement_json,
    matrix_json,
    port_json,
    port_text,
)

from tests.builders import inventory, mnp, nad, pod
from tests.nb_builders import NET_REF, seed_inventory

TCP, UDP = Protocol.TCP, Protocol.UDP
POD, VM, DB = "default/podclient", "default/vm-server", "ext:db"
DENY_BOTH = ["default/allow-db-egress:egress", "default/default-deny:egress", "default/default-deny:ingress"]
DENY_EGRESS = ["default/allow-db-egress:egress", "default/default-deny:egress"]
DENY_INGRESS = ["default/default-deny:ingress"]
ALLOW_DB = ["default/allow-db-egress:egress[0]"]


@pytest.fixture(scope="module")
def seed() -> NetworkReachability:
    return NetworkReachability(seed_inventory(), NET_REF)


def test_seed_matrix_json_contract(seed):
    assert matrix_json(seed, seed.findings, pairs=True) == {
        "network": "default/tenantblue",
        "profile": "4.14",
        "form": "pairs",
        "cells": [
            {"from": POD, "to": VM, "port": None, "protocol": "TCP", "expected": "denied", "because": DENY_BOTH},
            {"from": POD, "to": DB, "port": None, "protocol": "TCP", "expected": "denied", "because": DENY_EGRESS},
            {"from": POD, "to": DB, "port": 5432, "protocol": "TCP", "expected": "allowed", "because": ALLOW_DB},
            {"from": VM, "to": POD, "port": None, "protocol": "TCP", "expected": "denied", "because": DENY_BOTH},
            {"from": VM, "to": DB, "port": None, "protocol": "TCP", "expected": "denied", "because": DENY_EGRESS},
            {"from": VM, "to": DB, "port": 5432, "protocol": "TCP", "expected": "allowed", "because": ALLOW_DB},
            {"from": DB, "to": POD, "port": None, "protocol": "TCP", "expected": "denied", "because": DENY_INGRESS},
            {"from": DB, "to": VM, "port": None, "protocol": "TCP", "expected": "denied", "because": DENY_INGRESS},
        ],
        "findings": [],
    }


def test_seed_grouped_json_contract(seed):
    """The two workloads are one class (same policies, same verdicts); the DB is another."""
    assert matrix_json(seed, seed.findings) == {
        "network": "default/tenantblue",
        "profile": "4.14",
        "form": "grouped",
        "classes": [
            {"id": 0, "members": [POD, VM], "policies": ["default/allow-db-egress", "default/default-deny"],
             "isolated": ["egress", "ingress"]},
            {"id": 1, "members": [DB], "policies": [], "isolated": []},
        ],
        "matrix": [{"from": 0, "to": [[0, 0], [1, 1]]}, {"from": 1, "to": [[0, 2]]}],
        "verdicts": [
            {"id": 0, "cells": [{"port": None, "protocol": "TCP", "expected": "denied", "because": DENY_BOTH}]},
            {"id": 1, "cells": [{"port": None, "protocol": "TCP", "expected": "denied", "because": DENY_EGRESS},
                                {"port": 5432, "protocol": "TCP", "expected": "allowed", "because": ALLOW_DB}]},
            {"id": 2, "cells": [{"port": None, "protocol": "TCP", "expected": "denied", "because": DENY_INGRESS}]},
        ],
        "findings": [],
    }


def test_matrix_json_findings():
    finding = Finding(FindingKind.END_PORT_IGNORED, "endPort 8100 is dropped", NET_REF, NET_REF, Severity.WARNING)
    m = NetworkReachability(seed_inventory(), NET_REF)
    assert matrix_json(m, [finding])["findings"] == [{
        "policy": "default/tenantblue", "network": "default/tenantblue", "kind": "end-port-ignored",
        "severity": "warning", "message": "endPort 8100 is dropped"}]


@pytest.mark.parametrize("ports,json_,text", [
    (None, {"port": None}, "*"),
    (PortRange(TCP, 5432, 5432), {"port": 5432}, "5432"),
    (PortRange(TCP, 8000, 8100), {"port": 8000, "end_port": 8100}, "8000-8100"),
    (PortRange(UDP, 1, 5431), {"port": 1, "end_port": 5431}, "1-5431"),
])
def test_ports(ports, json_, text):
    assert (port_json(ports), port_text(ports)) == (json_, text)


def test_cell_json_of_a_range():
    cell = Cell(POD, DB, UDP, PortRange(UDP, 8000, 8100), Judgement(Verdict.ALLOWED, (Reason("p:egress[0]"),)))
    assert cell_json(cell) == {"from": POD, "to": DB, "port": 8000, "end_port": 8100, "protocol": "UDP",
                               "expected": "allowed", "because": ["p:egress[0]"]}
    assert list(cell_json(cell)) == ["from", "to", "port", "end_port", "protocol", "expected", "because"]


def test_judgement_json():
    j = Judgement(Verdict.DENIED, (Reason("acl/8340a7b2", "from-lport tier 2 priority 1000 drop"), Reason("x")))
    assert judgement_json(j) == {"because": ["acl/8340a7b2", "x"], "reasons": [
        {"ref": "acl/8340a7b2", "detail": "from-lport tier 2 priority 1000 drop"}, {"ref": "x", "detail": ""}]}


def test_seed_rows(seed):
    assert [cell_row(c) for c in seed.cells()] == [
        [POD, VM, "*/TCP", "denied", ", ".join(DENY_BOTH)],
        [POD, DB, "*/TCP", "denied", ", ".join(DENY_EGRESS)],
        [POD, DB, "5432/TCP", "allowed", ", ".join(ALLOW_DB)],
        [VM, POD, "*/TCP", "denied", ", ".join(DENY_BOTH)],
        [VM, DB, "*/TCP", "denied", ", ".join(DENY_EGRESS)],
        [VM, DB, "5432/TCP", "allowed", ", ".join(ALLOW_DB)],
        [DB, POD, "*/TCP", "denied", ", ".join(DENY_INGRESS)],
        [DB, VM, "*/TCP", "denied", ", ".join(DENY_INGRESS)],
    ]


def test_seed_grid(seed):
    # Rows: sources; columns: destinations; glyph of the pair's all-ports TCP verdict, `+` where ports differ.
    assert grid(seed, seed.cells()) == [
        ["", "0", "1", "2"],
        [f"0 {POD}", "-", "X", "X+"],
        [f"1 {VM}", "X", "-", "X+"],
        [f"2 {DB}", "X", "X", "-"],
    ]


def test_grid_of_some_cells_only(seed):
    cells = [c for c in seed.cells() if c.source == DB]
    assert grid(seed, cells)[1:] == [[f"0 {POD}", "-", "-", "-"], [f"1 {VM}", "-", "-", "-"],
                                     [f"2 {DB}", "X", "X", "-"]]


def test_grid_marks_a_protocol_that_differs_and_shows_open_pairs():
    inv = inventory(nad(), pod("a", "192.168.200.10", labels={"app": "a"}), pod("b", "192.168.200.20"),
                    mnp("udp-only", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"],
                                     "ingress": [{"ports": [{"protocol": "UDP"}]}]}))
    m = NetworkReachability(inv, NET_REF)
    assert grid(m, m.cells())[1:] == [["0 default/a", "-", "."], ["1 default/b", "X+", "-"]]
    assert [cell_row(c) for c in m.cells() if c.source == "default/b"] == [
        ["default/b", "default/a", "*/TCP", "denied", "default/udp-only:ingress"],
        ["default/b", "default/a", "*/UDP", "allowed", "default/udp-only:ingress[0]"],
    ]
