"""MultiNetworkPolicy semantics as OVN-Kubernetes enforces them, written as truth tables (default + exceptions)."""

from __future__ import annotations

import pytest

from segcheck.agent.core.findings import FindingKind
from segcheck.agent.core.enforcement import PROFILES, network_findings
from segcheck.agent.core.model import Protocol, Ref
from tests.builders import endpoints, inventory, mnp, nad, namespace, pod
from tests.truthtable import A, D, TruthTable, check

NET = Ref("default", "tenantblue")
DB = {"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"], "ports": [{"port": 5432}]}
C, S, O, X = "default/client", "default/server", "other/peer", "ext:db"


def world(*policies, subnets: str | None = "192.168.200.0/24", extra=()):
    return inventory(
        nad(subnets=subnets), namespace("default", {"team": "blue"}), namespace("other", {"team": "red"}),
        pod("client", "192.168.200.10", labels={"app": "client"}),
        pod("server", "192.168.200.20", labels={"app": "server", "tier": "db"}),
        pod("peer", "192.168.200.30", namespace="other", labels={"app": "client"}, network="default/tenantblue"),
        endpoints(DB), *extra, *policies)


def kinds(inv):
    return {f.kind for f in network_findings(inv, NET)}


def test_no_policy_allows_everything():
    check(world(), TruthTable(A), 8080)


def test_seed_policies_allow_only_the_db_port():
    inv = world(
        mnp("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        mnp("db", {"podSelector": {}, "policyTypes": ["Egress"],
                   "egress": [{"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}], "ports": [{"protocol": "TCP", "port": 5432}]}]}),
        subnets=None)
    # "other/peer" is in another namespace: not selected by default/ policies, so its own side is open.
    check(inv, TruthTable(D, {(C, X): A, (S, X): A, (O, X): A, (X, O): A}), 5432)
    check(inv, TruthTable(D, {(O, X): A, (X, O): A}), 5433)
    check(inv, TruthTable(D, {(O, X): A, (X, O): A}), 5432, Protocol.UDP)
    assert not kinds(inv)


def test_pod_selector_peer_stays_in_policy_namespace():
    inv = world(mnp("in", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}))
    check(inv, TruthTable(A, {(O, S): D, (X, S): D}), 80)


def test_namespace_selector_alone_and_with_pod_selector():
    only_ns = world(mnp("in", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "red"}}}]}]}))
    check(only_ns, TruthTable(A, {(C, S): D, (X, S): D}), 80)
    both = world(mnp("in", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                            "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "nope"}}}]}]}))
    check(both, TruthTable(A, {(C, S): D, (O, S): D, (X, S): D}), 80)
    all_ns = world(mnp("in", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"namespaceSelector": {}}]}]}))
    check(all_ns, TruthTable(A, {(X, S): D}), 80)


def test_match_expressions():
    inv = world(mnp("in", {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
                           "policyTypes": ["Ingress"],
                           "ingress": [{"from": [{"podSelector": {"matchExpressions": [
                               {"key": "app", "operator": "NotIn", "values": ["client"]}]}}]}]}))
    check(inv, TruthTable(A, {(C, S): D, (O, S): D, (X, S): D}), 80)


def test_ip_block_with_except():
    inv = world(mnp("out", {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
                            "egress": [{"to": [{"ipBlock": {"cidr": "192.168.200.0/24",
                                                            "except": ["192.168.200.20/30", "192.168.200.5/32"]}}]}]}))
    check(inv, TruthTable(A, {(C, S): D, (C, X): D}), 80)


def test_end_port_dropped_on_4_14_and_honoured_later():
    spec = {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}]}
    inv = world(mnp("range", spec))
    closed = {(C, S): D, (O, S): D, (X, S): D}
    check(inv, TruthTable(A), 8000)
    check(inv, TruthTable(A, closed), 8050)
    check(inv, TruthTable(A), 8050, profile="current")
    check(inv, TruthTable(A, closed), 8101, profile="current")
    assert FindingKind.END_PORT_IGNORED in kinds(inv)


def test_a_whole_protocol_entry_next_to_numbered_ports_allows_only_those():
    """gress_policy.go getProtocolPortsMap / getL4Match: an entry without a port adds no clause, so
    `[{TCP}, {TCP, 80}]` is programmed as `tcp && tcp.dst==80`; another protocol keeps all its ports."""
    inv = world(mnp("mixed", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                              "ingress": [{"ports": [{"protocol": "TCP"}, {"protocol": "TCP", "port": 80},
                                                     {"protocol": "UDP"}]}]}))
    closed = {(C, S): D, (O, S): D, (X, S): D}
    check(inv, TruthTable(A), 80)
    check(inv, TruthTable(A, closed), 81)
    check(inv, TruthTable(A), 81, Protocol.UDP)
    assert FindingKind.WHOLE_PROTOCOL_NARROWED in kinds(inv)


def test_named_port_widens_on_4_14():
    inv = world(mnp("named", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                              "ingress": [{"ports": [{"protocol": "TCP", "port": "postgres"}]}]}))
    check(inv, TruthTable(A), 1234)
    check(inv, TruthTable(A, {(C, S): D, (O, S): D, (X, S): D}), 1234, Protocol.UDP)
    check(inv, TruthTable(A, {(C, S): D, (O, S): D, (X, S): D}), 1234, profile="current")
    assert FindingKind.NAMED_PORT in kinds(inv)


def test_policy_types_isolation_and_allows_from_both_sections():
    no_types = world(mnp("untyped", {"podSelector": {}, "ingress": []}))
    check(no_types, TruthTable(A), 80)
    assert FindingKind.NO_POLICY_TYPES in kinds(no_types)
    # An ingress-only policy's egress rule still opens egress once another policy isolates egress.
    inv = world(
        mnp("iso-egress", {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}),
        mnp("ing", {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Ingress"],
                    "ingress": [{}], "egress": [{"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}]}]}))
    check(inv, TruthTable(A, {(C, S): D, (C, O): D}), 80)
    assert FindingKind.RULES_OUTSIDE_POLICY_TYPES in kinds(inv)


def test_union_of_policies_and_both_sides_required():
    inv = world(
        mnp("a", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"ports": [{"protocol": "TCP", "port": 80}]}]}),
        mnp("b", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"ports": [{"protocol": "TCP", "port": 443}]}]}),
        mnp("c", {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
                  "egress": [{"ports": [{"protocol": "TCP", "port": 443}]}]}))
    check(inv, TruthTable(A, {(C, S): D, (C, O): D, (C, X): D}), 80)
    check(inv, TruthTable(A), 443)
    check(inv, TruthTable(A, {(C, S): D, (O, S): D, (X, S): D, (C, O): D, (C, X): D}), 22)


def test_selector_peers_on_ipamless_network_refuse_the_whole_policy():
    inv = world(mnp("sel", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                            "ingress": [{"from": [{"podSelector": {}}]}]}), subnets=None)
    check(inv, TruthTable(A), 80)  # even the default deny is not programmed
    assert FindingKind.SELECTOR_PEER_WITHOUT_IPAM in kinds(inv)


@pytest.mark.parametrize("policy_for,applies", [
    ("tenantblue", True), ("default/tenantblue", True), ("other-net, default/tenantblue", True),
    ("other/tenantblue", False), (None, False)])
def test_policy_for_forms(policy_for, applies):
    inv = world(mnp("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}, policy_for=policy_for))
    closed = {(C, S): D, (S, C): D, (O, C): D, (O, S): D, (X, C): D, (X, S): D}
    check(inv, TruthTable(A, closed if applies else {}), 80)


def test_findings_for_unknown_network_missing_annotation_and_empty_selection():
    assert FindingKind.UNKNOWN_NETWORK in kinds(world(mnp("x", {"podSelector": {}, "policyTypes": ["Ingress"]},
                                                          policy_for="tenantblue,ghost")))
    assert FindingKind.NO_POLICY_FOR in kinds(world(mnp("x", {"podSelector": {}, "policyTypes": ["Ingress"]}, policy_for=None)))
    assert FindingKind.SELECTS_NOTHING in kinds(world(mnp("x", {"podSelector": {"matchLabels": {"app": "ghost"}},
                                                                "policyTypes": ["Ingress"]})))
    assert FindingKind.PROTOCOL_DEFAULTED in kinds(world(mnp("x", {"podSelector": {}, "policyTypes": ["Ingress"],
                                                                   "ingress": [{"ports": [{"port": 80}]}]})))
    inv = world(mnp("x", {"podSelector": {}, "policyTypes": ["Ingress"]}, api_version="k8s.cni.cncf.io/v1beta2"))
    assert FindingKind.API_VERSION_NOT_SERVED in kinds(inv)
    check(inv, TruthTable(A), 80)  # never admitted on 4.14


def test_truth_table_refuses_unknown_pairs():
    with pytest.raises(KeyError):
        check(world(), TruthTable(A, {("default/ghost", S): D}), 80)


def test_profiles_are_named_as_users_know_them():
    assert set(PROFILES) == {"4.14", "current", "4.16+"}
    assert PROFILES["4.16+"] is PROFILES["current"]
