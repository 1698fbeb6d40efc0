"""The NB objects OVN-Kubernetes writes for MultiNetworkPolicies (`core.ovnk.desired`), pinned string for string
against upstream's code in the shapes of both versions: 4.14 (upstream 2023-08: port groups named
HashForOVN("<net>_<ns>_<policy>") with {name, k8s.ovn.org/network}) and current (owner-based ids)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import PortRange, Protocol, Ref
from segcheck.agent.core.ovnk import names as ovnk_names
from segcheck.agent.core.ovnk.desired import AclSpec, DesiredState, PortGroupSpec, desired_state
from segcheck.agent.core.ovnk.matches import all_ips_match, l4_matches
from segcheck.agent.core.ovnk.names import hash_for_ovn
from segcheck.agent.lab.topology import seed_topology, topology_from_inventory
from tests.builders import inventory, mnp, nad, namespace, pod

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
NET = Ref("default", "tenantblue")
CTRL = "tenantblue-network-controller"
LSPS = {"default/podclient": "default.tenantblue_default_podclient",
        "default/vm-server": "default.tenantblue_default_virt-launcher-vm-server-8z2cx"}


def fnv(text: str) -> str:
    """FNV-1a 64, written out again so the names below do not come from the code under test."""
    h = 14695981039346656037
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) % 2**64
    return f"a{h}"


def lsps_of(inv: Inventory) -> dict[str, str]:
    return {a.key: ovnk_names.pod_port(NET, a.ref) for a in inv.attachments_on(NET)}


def policy_pg(state: DesiredState, policy: str, ns: str = "default") -> PortGroupSpec:
    names = {fnv(f"tenantblue_{ns}_{policy}"), fnv(f"{CTRL}:NetworkPolicy:{ns}:{policy}")}
    return next(pg for pg in state.port_groups if pg.name in names)


def matches(acls: tuple[AclSpec, ...]) -> list[str]:
    return [a.match for a in acls]


def one_rule(rule: dict[str, Any], direction: str = "egress", profile: str = "4.14",
             subnets: str | None = None, extra: tuple[dict[str, Any], ...] = ()) -> tuple[PortGroupSpec, DesiredState]:
    types = ["Egress"] if direction == "egress" else ["Ingress"]
    inv = inventory(nad(subnets=subnets), pod("client", "192.168.200.10", labels={"app": "client"}),
                    mnp("p", {"podSelector": {}, "policyTypes": types, direction: [rule]}), *extra)
    state = desired_state(inv, NET, lsps_of(inv), PROFILES[profile])
    return policy_pg(state, "p"), state


# ----------------------------------------------------------------------------- the seed, both versions

def seed_state(profile: str) -> DesiredState:
    inv, errors = load_inventory([SEED])
    assert not errors
    return desired_state(inv, NET, LSPS, PROFILES[profile])


SEED_ACL_IDS = {
    "k8s.ovn.org/owner-type": "NetworkPolicy", "k8s.ovn.org/owner-controller": CTRL,
    "k8s.ovn.org/name": "default:allow-db-egress", "direction": "Egress", "gress-index": "0",
    "port-policy-protocol": "tcp", "ip-block-index": "0",
    "k8s.ovn.org/id": f"{CTRL}:NetworkPolicy:default:allow-db-egress:Egress:0:tcp:0",
}


@pytest.mark.parametrize("profile,pg_name,pg_ids", [
    ("4.14", fnv("tenantblue_default_allow-db-egress"),
     {"name": "default_allow-db-egress", "k8s.ovn.org/network": "tenantblue"}),
    ("current", fnv(f"{CTRL}:NetworkPolicy:default:allow-db-egress"),
     {"k8s.ovn.org/owner-type": "NetworkPolicy", "k8s.ovn.org/owner-controller": CTRL,
      "k8s.ovn.org/name": "default:allow-db-egress", "k8s.ovn.org/id": f"{CTRL}:NetworkPolicy:default:allow-db-egress"}),
])
def test_seed_allow_db_egress(profile: str, pg_name: str, pg_ids: dict[str, str]) -> None:
    state = seed_state(profile)
    [pg] = [pg for pg in state.port_groups if pg.name == pg_name]
    assert pg.ids == pg_ids
    assert pg.ports == tuple(sorted(LSPS.values()))
    [acl] = pg.acls
    assert acl.match == f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{pg.name}"
    assert (acl.direction, acl.priority, acl.action, acl.tier) == ("from-lport", 1001, "allow-related", 2)
    assert acl.options == (("apply-after-lb", "true"),)
    assert acl.name == "NP:default:allow-db-egress:Egress:0"
    assert acl.ids == SEED_ACL_IDS  # ACL ids did not change between the versions


@pytest.mark.parametrize("profile,ingress,egress", [
    ("4.14", fnv("tenantblue_default") + "_ingressDefaultDeny", fnv("tenantblue_default") + "_egressDefaultDeny"),
    ("current", fnv(f"{CTRL}:NetpolNamespace:default:Ingress"), fnv(f"{CTRL}:NetpolNamespace:default:Egress")),
])
def test_seed_default_deny(profile: str, ingress: str, egress: str) -> None:
    state = seed_state(profile)
    assert policy_pg(state, "default-deny").acls == ()  # a policy without rules only isolates
    by_name = {pg.name: pg for pg in state.port_groups}
    ing, egr = by_name[ingress], by_name[egress]
    assert ing.ports == egr.ports == tuple(sorted(LSPS.values()))
    if profile == "4.14":
        assert ing.ids == {"name": ingress, "k8s.ovn.org/network": "tenantblue"}
    else:
        assert ing.ids == {"k8s.ovn.org/owner-type": "NetpolNamespace", "k8s.ovn.org/owner-controller": CTRL,
                           "k8s.ovn.org/name": "default", "direction": "Ingress",
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
    assert len(state.acls) == 5 and state.address_sets == () and state.unplaced == ()


def test_hash_for_ovn_is_fnv1a_64() -> None:
    assert hash_for_ovn("") == "a14695981039346656037"  # the FNV-1a 64 offset basis
    assert hash_for_ovn("a") == "a12638187200555641996"
    assert hash_for_ovn("foobar") == "a9625390261332436968"  # 0x85944171f73967e8, a published test vector


def test_seed_topology_is_the_seed_manifests() -> None:
    inv, errors = load_inventory([SEED])
    assert not errors
    assert topology_from_inventory(inv, NET) == seed_topology()


SEED_IPV6 = SEED.with_name("seed-ipv6")


@pytest.mark.parametrize("profile", ["4.14", "current"])
def test_ipv6_seed_programs_ip6_matches_and_lets_neighbour_discovery_through(profile: str) -> None:
    """The IPv6 seed is the seed's shapes with ip6 matches; the default-deny port groups keep their 1001
    `(arp || nd)` allow (upstream's arpAllowPolicyMatch, in every version), so ND crosses the deny as ARP does."""
    inv, errors = load_inventory([SEED_IPV6])
    assert not errors
    v6, v4 = desired_state(inv, NET, LSPS, PROFILES[profile]), seed_state(profile)
    assert [pg.name for pg in v6.port_groups] == [pg.name for pg in v4.port_groups]
    [acl] = policy_pg(v6, "allow-db-egress").acls
    assert acl.match == f"ip6.dst == fd00:200::5/128 && tcp && tcp.dst==5432 && inport == @{acl.match.split('@')[1]}"
    assert acl.ids == SEED_ACL_IDS
    v6_rest = sorted((a.direction, a.priority, a.action, a.match) for a in v6.acls if a is not acl)
    v4_rest = sorted((a.direction, a.priority, a.action, a.match) for a in v4.acls if "ip4" not in a.match)
    assert v6_rest == v4_rest and sum("(arp || nd)" in m for *_, m in v6_rest) == 2


def test_ipv6_seed_topology() -> None:
    inv, errors = load_inventory([SEED_IPV6])
    assert not errors
    topo = topology_from_inventory(inv, NET)
    assert topo.network.ipv6 and (topo.network.cidr, topo.network.gateway) == ("fd00:200::/64", "fd00:200::1")
    assert [(a.name, a.address, a.mac) for a in (*topo.attachments, *topo.hosts)] == [
        ("podclient", "fd00:200::10/64", "0a:58:00:00:00:10"),  # OVN-K's MAC of an IPv6 pod: 0a:58 + last 4 bytes
        ("vm-server", "fd00:200::20/64", "02:5e:00:00:00:20"), ("db", "fd00:200::5/64", "52:54:00:00:00:05")]
    assert topo.hosts[0].postgres and not seed_topology().network.ipv6


def test_lab_topology_of_mixed_or_addressless_networks() -> None:
    """IPv4 is the primary family when there is any (addresses are allocated there); static IPv6 addresses are
    added beside (dual-stack); an IPv6-only network without a static address for some workload gives it the
    next free address of the /64."""
    both = pod("a", "192.168.200.10/24")
    both["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = json.dumps(
        [{"name": "tenantblue", "ips": ["192.168.200.10/24", "fd00:200::10/64"]}])
    topo = topology_from_inventory(inventory(nad(), both, pod("b", "fd00:200::11/64")), NET)
    assert topo.network.cidrs == ("192.168.200.0/24", "fd00:200::/64") and topo.network.ipv6
    assert [p.addresses for p in topo.pods] == [("192.168.200.10/24", "fd00:200::10/64"),
                                                ("192.168.200.2/24", "fd00:200::11/64")]
    assert topo.pods[0].ips == ("192.168.200.10", "fd00:200::10") and topo.pods[0].ip == "192.168.200.10"
    assert not topology_from_inventory(load_inventory([SEED])[0], NET).network.ipv6
    v6 = inventory(nad(), pod("a", "fd00:200::10/64"), pod("b", None))
    topo = topology_from_inventory(v6, NET)
    assert [p.address for p in topo.pods] == ["fd00:200::10/64", "fd00:200::2/64"]  # ::1 is the gateway


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


def test_ranges_per_profile() -> None:
    rule = {"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}],
            "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 443},
                      {"protocol": "TCP", "port": 8000, "endPort": 8100}]}
    pg, _ = one_rule(rule, profile="current")
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && (tcp.dst=={{80,443}} || 8000<=tcp.dst<=8100)"
                                f" && inport == @{pg.name}"]
    pg, _ = one_rule({**rule, "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}, profile="current")
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && 8000<=tcp.dst<=8100 && inport == @{pg.name}"]
    pg, _ = one_rule(rule, profile="4.14")  # endPort dropped: the range is its first port
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst=={{80,443,8000}} && inport == @{pg.name}"]


def test_named_port_per_profile() -> None:
    rule = {"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}], "ports": [{"protocol": "TCP", "port": "postgres"}]}
    pg, _ = one_rule(rule, profile="4.14")  # widened to the whole protocol
    assert matches(pg.acls) == [f"ip4.dst == 192.168.200.5/32 && tcp && inport == @{pg.name}"]
    pg, _ = one_rule(rule, profile="current")  # matches nothing: no ACL at all
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
    deny = {pg.name.rpartition("_")[2]: pg for pg in state.port_groups if pg.name.endswith("DefaultDeny")}
    deny = {"Ingress": deny["ingressDefaultDeny"], "Egress": deny["egressDefaultDeny"]}
    assert deny["Ingress"].ports == ("default.tenantblue_default_client",)
    assert deny["Egress"].ports == ()  # both exist, only the isolated direction holds ports


def test_ipv6_blocks() -> None:
    pg, _ = one_rule({"to": [{"ipBlock": {"cidr": "fd00:200::/64", "except": ["fd00:200::/120"]}}],
                      "ports": [{"protocol": "SCTP", "port": 3868}]})
    assert matches(pg.acls) == [
        f"ip6.dst == fd00:200::/64 && ip6.dst != {{fd00:200::/120}} && sctp && sctp.dst==3868 && inport == @{pg.name}"]
    assert pg.acls[0].ids["port-policy-protocol"] == "sctp"


def test_l4_matches_as_upstream_groups_them() -> None:
    tcp, udp = Protocol.TCP, Protocol.UDP
    assert l4_matches([]) == []  # ports listed, none left (named ports unresolved): no ACL
    assert l4_matches([], ports_listed=False) == [("None", None)]  # no ports at all: every protocol
    assert l4_matches([PortRange(p) for p in Protocol]) == [("tcp", "tcp"), ("udp", "udp"), ("sctp", "sctp")]
    # A whole-protocol entry adds no clause, so next to a port of the same protocol only that port is matched
    # (getProtocolPortsMap: port 0 lands in neither list).
    assert l4_matches([PortRange(tcp, 80, 80), PortRange(tcp), PortRange(udp, 1, 2)]) == [
        ("tcp", "tcp && tcp.dst==80"), ("udp", "udp && 1<=udp.dst<=2")]


def test_all_ips_follows_the_network_subnets() -> None:
    assert all_ips_match(()) == "ip4"  # IPAM-less
    assert all_ips_match((6,)) == "ip6"
    assert all_ips_match((4, 6)) == "(ip4 || ip6)"
    pg, _ = one_rule({}, subnets="fd00:200::/64")
    assert matches(pg.acls) == [f"ip6 && inport == @{pg.name}"]


# ----------------------------------------------------------------------------- selector peers (IPAM network)

SUBNET = "192.168.200.0/24"


def selector_world(*policies: dict[str, Any]) -> Inventory:
    return inventory(nad(subnets=SUBNET), namespace("other", {"team": "blue"}),
                     pod("client", "192.168.200.10", labels={"app": "client"}),
                     pod("db1", "192.168.200.31", labels={"role": "db"}),
                     pod("db2", "192.168.200.32", namespace="other", labels={"role": "db"}, network="default/tenantblue"),
                     pod("web", "192.168.200.33", labels={"role": "web"}), *policies)


def egress_to(name: str, *peers: dict[str, Any]) -> dict[str, Any]:
    return mnp(name, {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
                      "egress": [{"to": list(peers), "ports": [{"protocol": "TCP", "port": 5432}]}]})


def test_pod_selector_peers_share_one_address_set_per_selector() -> None:
    inv = selector_world(egress_to("p", {"podSelector": {"matchLabels": {"role": "db"}}}),
                         egress_to("q", {"podSelector": {"matchLabels": {"role": "db"}}}))
    state = desired_state(inv, NET, lsps_of(inv))
    key = "default_LS{ML:{role: db,},}"
    [aset] = state.address_sets  # one set for both policies
    assert aset.name == fnv(f"{CTRL}:PodSelector:{key}:v4")
    assert aset.ids == {"k8s.ovn.org/owner-type": "PodSelector", "k8s.ovn.org/owner-controller": CTRL,
                        "k8s.ovn.org/name": key, "ip-family": "v4", "k8s.ovn.org/id": f"{CTRL}:PodSelector:{key}:v4"}
    assert aset.addresses == ("192.168.200.31",)  # no namespaceSelector: the policy's namespace only
    for policy in ("p", "q"):
        pg = policy_pg(state, policy)
        assert matches(pg.acls) == [f"ip4.dst == {{${aset.name}}} && tcp && tcp.dst==5432 && inport == @{pg.name}"]
        assert pg.acls[0].ids["ip-block-index"] == "-1"


def test_namespace_selector_peers_use_the_namespaces_address_sets() -> None:
    inv = selector_world(egress_to("p", {"namespaceSelector": {"matchLabels": {"team": "blue"}}},
                                   {"podSelector": {}}, {"ipBlock": {"cidr": "192.168.200.5/32"}}))
    state = desired_state(inv, NET, lsps_of(inv))
    other, default = fnv(f"{CTRL}:Namespace:other:v4"), fnv(f"{CTRL}:Namespace:default:v4")
    sets = {s.name: s for s in state.address_sets}
    assert set(sets) == {other, default}
    assert sets[other].addresses == ("192.168.200.32",)
    assert sets[default].addresses == ("192.168.200.10", "192.168.200.31", "192.168.200.33")
    assert sets[other].ids == {"k8s.ovn.org/owner-type": "Namespace", "k8s.ovn.org/owner-controller": CTRL,
                               "k8s.ovn.org/name": "other", "ip-family": "v4",
                               "k8s.ovn.org/id": f"{CTRL}:Namespace:other:v4"}
    pg = policy_pg(state, "p")
    both = ", ".join(sorted(f"${n}" for n in (other, default)))
    assert matches(pg.acls) == [
        f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{pg.name}",
        f"ip4.dst == {{{both}}} && tcp && tcp.dst==5432 && inport == @{pg.name}"]
    assert [a.ids["ip-block-index"] for a in pg.acls] == ["0", "-1"]


def test_all_namespaces_selector_is_a_pod_selector_set_and_expressions_are_sorted() -> None:
    expr = {"matchExpressions": [{"key": "role", "operator": "In", "values": ["web", "db"]}]}
    inv = selector_world(egress_to("p", {"namespaceSelector": {}}, {"namespaceSelector": {}, "podSelector": expr}))
    state = desired_state(inv, NET, lsps_of(inv))
    keys = {s.ids["k8s.ovn.org/name"]: s for s in state.address_sets}
    assert set(keys) == {"LS{}_LS{}", "LS{}_LS{ME:{LSR{Key:role,Operator:In,Values:[db web],}},}"}
    assert keys["LS{}_LS{}"].addresses == ("192.168.200.10", "192.168.200.31", "192.168.200.32", "192.168.200.33")
    assert keys["LS{}_LS{ME:{LSR{Key:role,Operator:In,Values:[db web],}},}"].addresses == (
        "192.168.200.31", "192.168.200.32", "192.168.200.33")


def test_a_selector_selecting_no_namespace_writes_no_selector_acl() -> None:
    inv = selector_world(egress_to("p", {"namespaceSelector": {"matchLabels": {"team": "nobody"}}}))
    state = desired_state(inv, NET, lsps_of(inv))
    assert policy_pg(state, "p").acls == () and state.address_sets == ()


def test_selector_peers_dual_stack_and_ingress() -> None:
    inv = inventory(nad(subnets="192.168.200.0/24,fd00:200::/64"), pod("client", "192.168.200.10"),
                    pod("srv", "192.168.200.20", labels={"app": "srv"}),
                    mnp("p", {"podSelector": {"matchLabels": {"app": "srv"}}, "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"podSelector": {}}]}]}))
    state = desired_state(inv, NET, lsps_of(inv))
    v4, v6 = (next(s for s in state.address_sets if s.ids["ip-family"] == f) for f in ("v4", "v6"))
    assert v4.name == fnv(f"{CTRL}:Namespace:default:v4") and v6.name == fnv(f"{CTRL}:Namespace:default:v6")
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


def test_the_lab_names_its_switch_by_network_and_maps_the_physical_network(tmp_path: Path) -> None:
    from segcheck.agent.lab.lab import Lab

    inv = inventory(nad("tenantblue", physicalNetworkName="physnet-blue"), pod("client", "192.168.200.10"))
    topology = topology_from_inventory(inv, NET)
    lab = Lab(state_dir=tmp_path, prefix="sct-", topology=topology)
    assert (lab.switch_name, lab.localnet_port_name) == ("tenantblue_ovn_localnet_switch", "tenantblue_ovn_localnet_port")
    assert topology.network.bridge_mapping == "physnet-blue:br-ex"
