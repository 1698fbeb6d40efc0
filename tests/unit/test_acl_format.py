"""The NB objects the lab controller writes, pinned string for string against OVN-Kubernetes' formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core import ovnk_names
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import PortRange, Protocol, Ref
from segcheck.agent.lab.acl_format import (AclSpec, DesiredState, PortGroupSpec, default_deny_port_group,
                                           desired_state, hash_for_ovn, l4_matches)
from segcheck.agent.lab.topology import seed_topology, topology_from_inventory
from tests.builders import inventory, mnp, nad, namespace, pod

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
NET = Ref("default", "tenantblue")
CTRL = "tenantblue-network-controller"
LSPS = {"default/podclient": "default.tenantblue_default_podclient",
        "default/vm-server": "default.tenantblue_default_virt-launcher-vm-server-8z2cx"}


def lsps_of(inv: Inventory) -> dict[str, str]:
    return {a.key: ovnk_names.pod_port(NET, a.ref) for a in inv.attachments_on(NET)}


def policy_pg(state: DesiredState, policy: str, ns: str = "default") -> PortGroupSpec:
    return next(pg for pg in state.port_groups if pg.ids.get("k8s.ovn.org/name") == f"{ns}:{policy}"
                and pg.ids["k8s.ovn.org/owner-type"] == "NetworkPolicy")


def matches(acls: tuple[AclSpec, ...]) -> list[str]:
    return [a.match for a in acls]


def one_rule(rule: dict[str, Any], direction: str = "egress", profile: str = "4.14",
             subnets: str | None = None, extra: tuple[dict[str, Any], ...] = ()) -> tuple[PortGroupSpec, DesiredState]:
    types = ["Egress"] if direction == "egress" else ["Ingress"]
    inv = inventory(nad(subnets=subnets), pod("client", "192.168.200.10", labels={"app": "client"}),
                    mnp("p", {"podSelector": {}, "policyTypes": types, direction: [rule]}), *extra)
    state = desired_state(inv, NET, lsps_of(inv), PROFILES[profile])
    return policy_pg(state, "p"), state


# ----------------------------------------------------------------------------- the seed

@pytest.fixture(scope="module")
def seed_state() -> DesiredState:
    inv, errors = load_inventory([SEED])
    assert not errors
    return desired_state(inv, NET, LSPS)


def test_seed_allow_db_egress(seed_state: DesiredState) -> None:
    pg = policy_pg(seed_state, "allow-db-egress")
    assert pg.name == ovnk_names.port_group("tenantblue", Ref("default", "allow-db-egress"))
    assert pg.ports == tuple(sorted(LSPS.values()))
    assert pg.ids == {
        "k8s.ovn.org/owner-type": "NetworkPolicy", "k8s.ovn.org/owner-controller": CTRL,
        "k8s.ovn.org/name": "default:allow-db-egress", "k8s.ovn.org/network": "tenantblue",
        "k8s.ovn.org/id": f"{CTRL}:NetworkPolicy:default:allow-db-egress",
    }
    [acl] = pg.acls
    assert acl.match == f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{pg.name}"
    assert (acl.direction, acl.priority, acl.action, acl.tier) == ("from-lport", 1001, "allow-related", 2)
    assert acl.options == (("apply-after-lb", "true"),)
    assert acl.name == "NP:default:allow-db-egress:Egress:0"
    assert acl.ids == {
        "k8s.ovn.org/owner-type": "NetworkPolicy", "k8s.ovn.org/owner-controller": CTRL,
        "k8s.ovn.org/name": "default:allow-db-egress", "direction": "Egress", "gress-index": "0",
        "ip-block-index": "0", "port-policy-protocol": "tcp",
        "k8s.ovn.org/id": f"{CTRL}:NetworkPolicy:default:allow-db-egress:Egress:0:tcp:0",
    }


def test_seed_default_deny(seed_state: DesiredState) -> None:
    assert policy_pg(seed_state, "default-deny").acls == ()  # a policy without rules only isolates
    by_name = {pg.name: pg for pg in seed_state.port_groups}
    ing = by_name[default_deny_port_group("tenantblue", "default", _dir("ingress"))]
    egr = by_name[default_deny_port_group("tenantblue", "default", _dir("egress"))]
    prefix = hash_for_ovn("tenantblue_default")
    assert (ing.name, egr.name) == (f"{prefix}_ingressDefaultDeny", f"{prefix}_egressDefaultDeny")
    assert ing.ports == egr.ports == tuple(sorted(LSPS.values()))
    assert ing.ids == {"k8s.ovn.org/owner-type": "NetpolNamespace", "k8s.ovn.org/owner-controller": CTRL,
                       "k8s.ovn.org/name": "default", "direction": "Ingress", "k8s.ovn.org/network": "tenantblue",
                       "k8s.ovn.org/id": f"{CTRL}:NetpolNamespace:default:Ingress"}
    drop, arp = ing.acls
    assert (drop.direction, drop.priority, drop.action, drop.match) == (
        "to-lport", 1000, "drop", f"outport == @{ing.name}")
    assert (arp.direction, arp.priority, arp.action, arp.match) == (
        "to-lport", 1001, "allow", f"outport == @{ing.name} && (arp || nd)")
    assert drop.options == arp.options == ()
    assert drop.ids == {"k8s.ovn.org/owner-type": "NetpolNamespace", "k8s.ovn.org/owner-controller": CTRL,
                        "k8s.ovn.org/name": "default", "direction": "Ingress", "type": "defaultDeny",
                        "k8s.ovn.org/id": f"{CTRL}:NetpolNamespace:default:Ingress:defaultDeny"}
    assert arp.ids["type"] == "arpAllow" and arp.name == drop.name == "NP:default:Ingress"
    drop, arp = egr.acls
    assert (drop.direction, drop.match, arp.match) == (
        "from-lport", f"inport == @{egr.name}", f"inport == @{egr.name} && (arp || nd)")
    assert drop.options == arp.options == (("apply-after-lb", "true"),)
    assert len(seed_state.acls) == 5 and seed_state.address_sets == () and seed_state.unplaced == ()


def test_hash_for_ovn_is_fnv1a_64() -> None:
    assert hash_for_ovn("") == "a14695981039346656037"  # the FNV-1a 64 offset basis
    assert hash_for_ovn("a") == "a12638187200555641996"


def test_seed_topology_is_the_seed_manifests() -> None:
    inv, errors = load_inventory([SEED])
    assert not errors
    assert topology_from_inventory(inv, NET) == seed_topology()


def _dir(text: str) -> Any:
    from segcheck.agent.core.policy import Direction

    return Direction(text)


# ----------------------------------------------------------------------------- shapes of rules

def test_except_blocks() -> None:
    pg, _ = one_rule({"to": [{"ipBlock": {"cidr": "192.168.200.0/24",
                                          "except": ["192.168.200.16/28", "192.168.200.32/28"]}}],
                      "ports": [{"protocol": "TCP", "port": 443}]})
    assert matches(pg.acls) == [
        "ip4.dst == 192.168.200.0/24 && ip4.dst != {192.168.200.16/28, 192.168.200.32/28} && tcp && tcp.dst==443"
        f" && inport == @{pg.name}"]


def test_several_ipblocks_are_indexed_among_ipblocks() -> None:
    pg, _ = one_rule({"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "172.16.0.0/12"}}],
                      "ports": [{"protocol": "UDP", "port": 53}]})
    assert [(a.ids["ip-block-index"], a.ids["port-policy-protocol"]) for a in pg.acls] == [("0", "udp"), ("1", "udp")]
    assert matches(pg.acls) == [f"ip4.dst == 10.0.0.0/8 && udp && udp.dst==53 && inport == @{pg.name}",
                                f"ip4.dst == 172.16.0.0/12 && udp && udp.dst==53 && inport == @{pg.name}"]


def test_multiple_ports_one_acl_per_protocol() -> None:
    pg, _ = one_rule({"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}],
                      "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "UDP", "port": 53},
                                {"protocol": "TCP", "port": 443}]})
    assert matches(pg.acls) == [
        f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst=={{80,443}} && inport == @{pg.name}",
        f"ip4.dst == 192.168.200.5/32 && udp && udp.dst==53 && inport == @{pg.name}"]
    assert [a.ids["port-policy-protocol"] for a in pg.acls] == ["tcp", "udp"]
    assert pg.acls[0].ids["k8s.ovn.org/id"] == f"{CTRL}:NetworkPolicy:default:p:Egress:0:tcp:0"


def test_ranges_with_profile_2025_and_4_14() -> None:
    rule = {"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}],
            "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443},
                      {"protocol": "TCP", "port": 8000, "endPort": 8100}]}
    pg, _ = one_rule(rule, profile="2025")
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && (tcp.dst=={{80,443}} || 8000<=tcp.dst<=8100)"
                                f" && inport == @{pg.name}"]
    pg, _ = one_rule({**rule, "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}, profile="2025")
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && 8000<=tcp.dst<=8100 && inport == @{pg.name}"]
    pg, _ = one_rule(rule, profile="4.14")  # endPort dropped: the range is its first port
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst=={{80,443,8000}} && inport == @{pg.name}"]


def test_named_port_per_profile() -> None:
    rule = {"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}], "ports": [{"protocol": "TCP", "port": "postgres"}]}
    pg, _ = one_rule(rule, profile="4.14")  # widened to the whole protocol
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && inport == @{pg.name}"]
    pg, _ = one_rule(rule, profile="2025")  # matches nothing: no ACL at all
    assert pg.acls == ()


def test_all_ports_and_all_peers() -> None:
    pg, _ = one_rule({"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}]})
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && inport == @{pg.name}"]
    assert pg.acls[0].ids["port-policy-protocol"] == "None"
    pg, _ = one_rule({"ports": [{"protocol": "TCP", "port": 22}]})  # no `to`: every peer
    assert matches(pg.acls) == [f"ip4 && tcp && tcp.dst==22 && inport == @{pg.name}"]
    assert pg.acls[0].ids["ip-block-index"] == "-1"
    pg, _ = one_rule({})  # everything
    assert matches(pg.acls) == [f"ip4 && inport == @{pg.name}"]
    pg, _ = one_rule({"ports": [{"protocol": "UDP"}]})  # every port of one protocol
    assert matches(pg.acls) == [f"ip4 && udp && inport == @{pg.name}"]


def test_ingress_uses_src_outport_and_no_after_lb() -> None:
    pg, state = one_rule({"from": [{"ipBlock": {"cidr": "192.168.200.5/32"}}],
                          "ports": [{"protocol": "TCP", "port": 8080}]}, direction="ingress")
    [acl] = pg.acls
    assert acl.match == f"ip4.src == 192.168.200.5/32 && tcp && tcp.dst==8080 && outport == @{pg.name}"
    assert (acl.direction, acl.options, acl.ids["direction"]) == ("to-lport", (), "Ingress")
    assert acl.name == "NP:default:p:Ingress:0"
    deny = {pg.ids["direction"]: pg for pg in state.port_groups if pg.ids["k8s.ovn.org/owner-type"] == "NetpolNamespace"}
    assert deny["Ingress"].ports == ("default.tenantblue_default_client",)
    assert deny["Egress"].ports == ()  # both exist, only the isolated direction holds ports


def test_ipv6_blocks() -> None:
    pg, _ = one_rule({"to": [{"ipBlock": {"cidr": "fd00:200::/64", "except": ["fd00:200::/120"]}}],
                      "ports": [{"protocol": "SCTP", "port": 3868}]})
    assert matches(pg.acls) == [
        f"ip6.dst == fd00:200::/64 && ip6.dst != {{fd00:200::/120}} && sctp && sctp.dst==3868 && inport == @{pg.name}"]
    assert pg.acls[0].ids["port-policy-protocol"] == "sctp"


def test_l4_matches_directly() -> None:
    tcp, udp = Protocol.TCP, Protocol.UDP
    assert l4_matches([]) == []
    assert l4_matches([PortRange(p) for p in Protocol]) == [("None", None)]
    assert l4_matches([PortRange(tcp, 80, 80), PortRange(tcp), PortRange(udp, 1, 2)]) == [
        ("tcp", "tcp"), ("udp", "udp && 1<=udp.dst<=2")]


# ----------------------------------------------------------------------------- selector peers (IPAM network)

def test_selector_peers_on_an_ipam_network_use_address_sets() -> None:
    extra = (namespace("other", {"team": "blue"}),
             pod("db1", "192.168.200.31", labels={"role": "db"}),
             pod("db2", "192.168.200.32", namespace="other", labels={"role": "db"}, network="default/tenantblue"),
             pod("web", "192.168.200.33", labels={"role": "web"}))
    rule = {"to": [{"podSelector": {"matchLabels": {"role": "db"}}},
                   {"namespaceSelector": {"matchLabels": {"team": "blue"}}, "podSelector": {}},
                   {"ipBlock": {"cidr": "192.168.200.5/32"}}],
            "ports": [{"protocol": "TCP", "port": 5432}]}
    pg, state = one_rule(rule, subnets="192.168.200.0/24", extra=extra)
    [aset] = state.address_sets
    assert aset.addresses == ("192.168.200.31", "192.168.200.32")  # db1 (same ns, role=db) + every pod of `other`
    assert aset.ids == {"k8s.ovn.org/owner-type": "NetworkPolicy", "k8s.ovn.org/owner-controller": CTRL,
                        "k8s.ovn.org/name": "default:p", "direction": "Egress", "gress-index": "0",
                        "ip-family": "v4", "k8s.ovn.org/network": "tenantblue",
                        "k8s.ovn.org/id": f"{CTRL}:NetworkPolicy:default:p:Egress:0:v4"}
    assert aset.name.startswith("a") and aset.name[1:].isdigit()
    assert matches(pg.acls) == [
        f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{pg.name}",
        f"ip4.dst == {{${aset.name}}} && tcp && tcp.dst==5432 && inport == @{pg.name}"]
    assert [a.ids["ip-block-index"] for a in pg.acls] == ["0", "-1"]
    # podSelector {} selects every workload of the policy's namespace, whatever the rule
    assert set(pg.ports) == {"default.tenantblue_default_client", "default.tenantblue_default_db1",
                             "default.tenantblue_default_web"}


def test_selector_peers_dual_stack_and_ingress() -> None:
    inv = inventory(nad(subnets="192.168.200.0/24,fd00:200::/64"), pod("client", "192.168.200.10"),
                    pod("srv", "192.168.200.20", labels={"app": "srv"}),
                    mnp("p", {"podSelector": {"matchLabels": {"app": "srv"}}, "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"podSelector": {}}]}]}))
    state = desired_state(inv, NET, lsps_of(inv), families=(4, 6))
    v4, v6 = state.address_sets
    assert (v4.ids["ip-family"], v6.ids["ip-family"]) == ("v4", "v6")
    assert v4.addresses == ("192.168.200.10", "192.168.200.20") and v6.addresses == ()
    pg = policy_pg(state, "p")
    assert pg.ports == ("default.tenantblue_default_srv",)
    assert matches(pg.acls) == [f"(ip4.src == {{${v4.name}}} || ip6.src == {{${v6.name}}}) && outport == @{pg.name}"]


def test_selector_policy_on_ipam_less_network_is_refused_entirely() -> None:
    inv = inventory(nad(), pod("client", "192.168.200.10"),
                    mnp("p", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                              "egress": [{"to": [{"podSelector": {}}]}]}))
    state = desired_state(inv, NET, lsps_of(inv))
    assert state.port_groups == () and state.address_sets == ()  # not even its default deny


def test_unplaced_attachments_are_reported() -> None:
    inv = inventory(nad(), pod("client", "192.168.200.10"),
                    mnp("p", {"podSelector": {}, "policyTypes": ["Egress"]}))
    state = desired_state(inv, NET, {})
    assert state.unplaced == ("default/client",)
    assert all(pg.ports == () for pg in state.port_groups)
