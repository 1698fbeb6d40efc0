"""OVN-Kubernetes' own e2e allow/deny tables, as truth tables (default + exceptions).

Source: ovn-org/ovn-kubernetes `test/e2e/multihoming.go` (and the helpers in `multihoming_utils.go`), read at
commit 6c366bb49. Each test names the upstream `Describe`/`Context`/`DescribeTable` and `Entry` it ports. The
worlds are built the way the e2e builds them: the framework's namespace plus an extra namespace labelled
`role: trusted` (GenerateName `pepe`), a NAD `tenant-blue` in *both* namespaces whose CNI `name` is a random
prefix plus the NAD name (`uniqueNadName`), with every key `generateNAD` writes (`"vlanID": 0`, empty
`subnets`/`excludeSubnets`/`physicalNetworkName`/`role`, `mtu` 1300), pods attached by the bare NAD name (so
through their own namespace's NAD), IPAM-assigned addresses as multus reports them in `network-status`, and the
policy's `policy-for` naming the NAD without a namespace. The e2e asserts one allowed and one blocked cell per
entry on port 9000; these tables also pin every other pair of the same world, from the semantics the entries
rely on (an unselected or non-isolated side lets everything pass).

Where upstream marks an entry `XEntry` with `Label("BUG", "OCPBUGS-25928")` (a deny-all in one direction broke
the other direction on localnet), the table holds what the policy means, which is what the fixed versions do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from segcheck.agent.core.enforcement import network_findings
from segcheck.agent.core.model import Ref
from tests.builders import endpoints, inventory, namespace
from tests.truthtable import A, D, TruthTable, check

F_NS = "multi-homing-4127"  # the framework's generated namespace
EXTRA_NS = "pepe7xq2k"  # extraNamespace: GenerateName "pepe", labels role=trusted
NAD = "tenant-blue"  # secondaryNetworkName
PORT = 9000
NET = f"{F_NS}/{NAD}"

# multihoming.go's constants
FLAT_L2_CIDR = "10.128.0.0/24"  # secondaryFlatL2NetworkCIDR
ROUTED_CIDR = "10.128.0.0/16/24"  # netCIDR(secondaryNetworkCIDR, netPrefixLengthPerNode)
LOCALNET_CIDR = "60.128.0.0/24"  # secondaryLocalnetNetworkCIDR
IPV6_CIDR = "2010:100:200::0/60"  # secondaryIPv6CIDR
UNDERLAY_IP = "60.128.0.1"  # underlayServiceIP (also the localnet's excluded address)
LOCALNET_VLAN = 10

ALLOWED, BLOCKED, SERVER = "allowed-client-pod", "blocked-client-pod", "tinypod"


def e2e_nad(namespace_: str, topology: str, cidr: str = "", cni_name: str = f"k3x9z_{NAD}", vlan: int = 0,
            excludes: str = "", physical: str = "", name: str = NAD) -> dict[str, Any]:
    """A NAD with exactly the keys `generateNAD` writes."""
    config = {"cniVersion": "0.3.0", "name": cni_name, "type": "ovn-k8s-cni-overlay", "topology": topology,
              "subnets": cidr, "excludeSubnets": excludes, "mtu": 1300, "netAttachDefName": f"{namespace_}/{name}",
              "vlanID": vlan, "allowPersistentIPs": False, "physicalNetworkName": physical, "role": ""}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace_}, "spec": {"config": json.dumps(config)}}


def e2e_pod(name: str, namespace_: str, ip: str | None = None, labels: dict[str, str] | None = None,
            static: str | None = None) -> dict[str, Any]:
    """A pod attached by the bare NAD name; `ip` as multus reports it after IPAM, `static` as an IPRequest."""
    selection: dict[str, Any] = {"name": NAD}
    annotations = {}
    if static is not None:
        selection["ips"] = [static]
    annotations["k8s.v1.cni.cncf.io/networks"] = json.dumps([selection])
    if ip is not None:
        annotations["k8s.v1.cni.cncf.io/network-status"] = json.dumps([
            {"name": "ovn-kubernetes", "interface": "eth0", "ips": ["10.244.1.9"], "default": True},
            {"name": f"{namespace_}/{NAD}", "interface": "net1", "ips": [ip], "mac": "0a:58:0a:80:00:09"}])
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace_, "labels": labels or {}, "annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": "agnhost"}]}}


def e2e_mnp(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
            "metadata": {"name": name, "namespace": F_NS, "annotations": {"k8s.v1.cni.cncf.io/policy-for": NAD}},
            "spec": spec}


def namespaces() -> list[dict[str, Any]]:
    return [namespace(F_NS), namespace(EXTRA_NS, {"role": "trusted"})]


def key(namespace_: str, name: str) -> str:
    return f"{namespace_}/{name}"


def ingress_from(peer: dict[str, Any], name: str) -> dict[str, Any]:
    """multiNetIngressLimiting{,IPBlock}Policy / ...AllowFromNamespace: ingress on app=stuff-doer from one peer,
    TCP 9000 only."""
    return e2e_mnp(name, {"podSelector": {"matchLabels": {"app": "stuff-doer"}}, "policyTypes": ["Ingress"],
                          "ingress": [{"from": [peer], "ports": [{"protocol": "TCP", "port": PORT}]}]})


# --- "multiple pods connected to the same OVN-K secondary network" / "can communicate over the secondary network"

@pytest.mark.parametrize("topology, cidr", [
    # "can communicate over an L2 secondary network when the pods are scheduled in different nodes"
    ("layer2", "10.128.0.0/16"),
    # "can communicate over an L3 - routed - secondary network"
    ("layer3", ROUTED_CIDR),
    # "... L3 - routed - secondary network with a dual stack configuration"
    ("layer3", f"{ROUTED_CIDR},{IPV6_CIDR[:-3]}/60/64"),
    # "can communicate over an L2 - switched - secondary network without IPAM"
    ("layer2", ""),
    # "can communicate over a localnet secondary network with a dual stack configuration when pods are ..."
    ("localnet", f"{LOCALNET_CIDR},{IPV6_CIDR}"),
])
def test_pods_on_one_network_communicate_without_policies(topology, cidr):
    v4 = "10.128.1.4" if cidr else None
    inv = inventory(*namespaces(), e2e_nad(F_NS, topology, cidr), e2e_nad(EXTRA_NS, topology, cidr),
                    e2e_pod("client-pod", F_NS, v4), e2e_pod(SERVER, F_NS, "10.128.2.5" if cidr else None))
    check(inv, TruthTable(A), PORT, network=NET)
    assert not network_findings(inv, Ref.parse(NET, F_NS))


# --- "multi-network policies" / "multi-network policies configure traffic allow lists" -----------------------

TOPOLOGIES = {  # topology: (NAD subnets, the ipBlock cidr the e2e uses, addresses of allowed, blocked, server)
    "layer2": (FLAT_L2_CIDR, FLAT_L2_CIDR, ("10.128.0.4", "10.128.0.5", "10.128.0.6")),  # "for a pure L2 overlay ..."
    "layer3": (ROUTED_CIDR, "10.128.0.0/16", ("10.128.1.3", "10.128.2.3", "10.128.2.4")),  # "for a routed topology ..."
    "localnet": (LOCALNET_CIDR, LOCALNET_CIDR, ("60.128.0.4", "60.128.0.5", "60.128.0.6")),  # "for a localnet topology ..."
}


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_allow_list_using_pod_selectors(topology):
    """Entry "for a {pure L2 overlay,routed topology,localnet topology} when the multi-net policy describes the
    allow-list using pod selectors" (policy `allow-ports-via-pod-selector`)."""
    cidr, _, (a_ip, b_ip, s_ip) = TOPOLOGIES[topology]
    allowed, blocked, server = key(F_NS, ALLOWED), key(F_NS, BLOCKED), key(F_NS, SERVER)
    inv = inventory(
        *namespaces(), e2e_nad(F_NS, topology, cidr), e2e_nad(EXTRA_NS, topology, cidr),
        e2e_pod(ALLOWED, F_NS, a_ip, {"app": "client", "role": "trusted"}),
        e2e_pod(BLOCKED, F_NS, b_ip, {"app": "client"}),
        e2e_pod(SERVER, F_NS, s_ip, {"app": "stuff-doer"}),
        ingress_from({"podSelector": {"matchLabels": {"role": "trusted"}}}, "allow-ports-via-pod-selector"))
    check(inv, TruthTable(A, {(blocked, server): D}), PORT, network=NET)
    check(inv, TruthTable(A, {(blocked, server): D, (allowed, server): D}), PORT + 1, network=NET)


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_allow_list_using_ip_block(topology):
    """Entry "for a {pure L2 overlay,routed topology,localnet topology} when the multi-net policy describes the
    allow-list using IPBlock" (`allow-ports-ip-block`; the e2e puts the blocked client's bare IP in `except`)."""
    cidr, block, (a_ip, b_ip, s_ip) = TOPOLOGIES[topology]
    allowed, blocked, server = key(F_NS, ALLOWED), key(F_NS, BLOCKED), key(F_NS, SERVER)
    inv = inventory(
        *namespaces(), e2e_nad(F_NS, topology, cidr), e2e_nad(EXTRA_NS, topology, cidr),
        e2e_pod(ALLOWED, F_NS, a_ip), e2e_pod(BLOCKED, F_NS, b_ip), e2e_pod(SERVER, F_NS, s_ip, {"app": "stuff-doer"}),
        ingress_from({"ipBlock": {"cidr": block, "except": [b_ip]}}, "allow-ports-ip-block"))
    check(inv, TruthTable(A, {(blocked, server): D}), PORT, network=NET)
    check(inv, TruthTable(A, {(blocked, server): D, (allowed, server): D}), PORT + 1, network=NET)


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_allow_list_via_namespace_selectors(topology):
    """Entry "for a {pure L2 overlay,routed topology,localnet topology} when the multi-net policy describes the
    allow-list via namespace selectors" (`allow-ports-same-ns`): the allowed client lives in the extra namespace
    and attaches through *that* namespace's NAD; both NADs carry one CNI name
    (`uniqueNadName("spans-multiple-namespaces")`), so they are one network."""
    cidr, _, (a_ip, b_ip, s_ip) = TOPOLOGIES[topology]
    shared = "r8m2c_spans-multiple-namespaces"
    allowed, blocked, server = key(EXTRA_NS, ALLOWED), key(F_NS, BLOCKED), key(F_NS, SERVER)
    inv = inventory(
        *namespaces(), e2e_nad(F_NS, topology, cidr, shared), e2e_nad(EXTRA_NS, topology, cidr, shared),
        e2e_pod(ALLOWED, EXTRA_NS, a_ip), e2e_pod(BLOCKED, F_NS, b_ip), e2e_pod(SERVER, F_NS, s_ip, {"app": "stuff-doer"}),
        ingress_from({"namespaceSelector": {"matchLabels": {"role": "trusted"}}}, "allow-ports-same-ns"))
    check(inv, TruthTable(A, {(blocked, server): D}), PORT, network=NET)
    check(inv, TruthTable(A, {(blocked, server): D, (allowed, server): D}), PORT + 1, network=NET)


def test_allow_list_using_ip_block_on_an_ipamless_layer2():
    """Entry "for an IPAMless pure L2 overlay when the multi-net policy describes the allow-list using IPBlock":
    static IPs requested in the network selection elements, `except` holding a bare address."""
    allowed, blocked, server = key(F_NS, ALLOWED), key(F_NS, BLOCKED), key(F_NS, SERVER)
    inv = inventory(
        *namespaces(), e2e_nad(F_NS, "layer2"), e2e_nad(EXTRA_NS, "layer2"),
        e2e_pod(ALLOWED, F_NS, static="192.168.200.10/24"),
        e2e_pod(BLOCKED, F_NS, static="192.168.200.30/24"),
        e2e_pod(SERVER, F_NS, static="192.168.200.20/24", labels={"app": "stuff-doer"}),
        ingress_from({"ipBlock": {"cidr": "192.168.200.0/24", "except": ["192.168.200.30"]}}, "allow-ports-ip-block"))
    check(inv, TruthTable(A, {(blocked, server): D}), PORT, network=NET)
    assert not network_findings(inv, Ref.parse(NET, F_NS))


# --- "multi-network ingress allow all" / "multi-network ingress deny all policies" (localnet) ---------------

CLIENT, TINYPOD = key(F_NS, ALLOWED), key(F_NS, SERVER)


def localnet_pair(*policies: dict[str, Any]):
    return inventory(
        *namespaces(), e2e_nad(F_NS, "localnet", LOCALNET_CIDR), e2e_nad(EXTRA_NS, "localnet", LOCALNET_CIDR),
        e2e_pod(ALLOWED, F_NS, "60.128.0.4", {"app": "client", "role": "trusted"}),
        e2e_pod(SERVER, F_NS, "60.128.0.5", {"app": "stuff-doer"}), *policies)


STUFF_DOER = {"matchLabels": {"app": "stuff-doer"}}


@pytest.mark.parametrize("policy, table", [
    # Entry "for a localnet topology when the multi-net policy is ingress allow-all"
    (e2e_mnp("allow-all-ingress", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}), TruthTable(A)),
    # XEntry "for a localnet topology when the multi-net policy is egress deny-all, should not affect ingress"
    # (Label "BUG", "OCPBUGS-25928"): egress isolation of the server leaves its ingress open.
    (e2e_mnp("deny-all-egress", {"podSelector": STUFF_DOER, "policyTypes": ["Egress"]}),
     TruthTable(A, {(TINYPOD, CLIENT): D})),
    # Entry "for a localnet topology when the multi-net policy is egress deny-all, ingress allow-all"
    (e2e_mnp("deny-all-egress-allow-all-ingress", {"podSelector": STUFF_DOER, "policyTypes": ["Ingress", "Egress"],
                                                   "ingress": [{}]}),
     TruthTable(A, {(TINYPOD, CLIENT): D})),
    # DescribeTable "multi-network ingress deny all policies",
    # Entry "for a localnet topology when the multi-net policy is ingress deny-all"
    (e2e_mnp("deny-all-ingress", {"podSelector": STUFF_DOER, "policyTypes": ["Ingress"]}),
     TruthTable(A, {(CLIENT, TINYPOD): D})),
], ids=lambda x: x["metadata"]["name"] if isinstance(x, dict) else "")
def test_localnet_allow_all_and_deny_all(policy, table):
    check(localnet_pair(policy), table, PORT, network=NET)


# --- "localnet OVN-K secondary network" / "with a service running on the underlay" --------------------------

UNDERLAY = "ext:underlay-service"
POD = key(F_NS, "client-pod")


def underlay(labels: dict[str, str], *policies: dict[str, Any]):
    """The localnet with VLAN 10 whose excluded address 60.128.0.1 is the underlay bridge's, serving on 9000."""
    service = {"name": "underlay-service", "network": NET, "ips": [UNDERLAY_IP], "ports": [{"port": PORT}]}
    return inventory(
        *namespaces(),
        e2e_nad(F_NS, "localnet", LOCALNET_CIDR, vlan=LOCALNET_VLAN, excludes=f"{UNDERLAY_IP}/32"),
        e2e_pod("client-pod", F_NS, "60.128.0.2", labels), endpoints(service), *policies)


def test_pod_reaches_the_underlay_service():
    """It "can communicate over a localnet secondary network from pod to the underlay service"."""
    check(underlay({}), TruthTable(A), PORT, network=NET)


def test_egress_ip_block_policy_blocks_the_underlay_service():
    """Context "with multi network policy blocking the traffic", It "can not communicate over a localnet secondary
    network from pod to the underlay service" (`allow-egress-ipblock`: the localnet /24 except the service's
    bare address); the underlay itself is not policed, so its own connections to the pod still pass."""
    labels = {"name": "access-control"}
    policy = e2e_mnp("allow-egress-ipblock", {
        "podSelector": {"matchLabels": labels}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": LOCALNET_CIDR, "except": [UNDERLAY_IP]}}]}]})
    check(underlay(labels, policy), TruthTable(A, {(POD, UNDERLAY): D}), PORT, network=NET)
    # ... and after "deleting the multi-network policy" the pod reaches the service again.
    check(underlay(labels), TruthTable(A), PORT, network=NET)


@pytest.mark.parametrize("policy, table", [
    # XEntry "ingress denyall, ingress policy should have no impact on egress" (Label "BUG", "OCPBUGS-25928")
    (e2e_mnp("deny-all-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}),
     TruthTable(A, {(UNDERLAY, POD): D})),
    # Entry "ingress denyall, egress allow all, ingress policy should have no impact on egress"
    (e2e_mnp("deny-all-ingress", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]}),
     TruthTable(A, {(UNDERLAY, POD): D})),
    # Entry "egress allow all"
    (e2e_mnp("allow-all-egress", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]}), TruthTable(A)),
    # Entry "egress deny all"
    (e2e_mnp("deny-all-egress", {"podSelector": {}, "policyTypes": ["Egress"]}), TruthTable(A, {(POD, UNDERLAY): D})),
], ids=["ingress-deny-all", "ingress-deny-all-egress-allow-all", "egress-allow-all", "egress-deny-all"])
def test_pod_to_gateway_when_a_policy_is_provisioned(policy, table):
    """When "a policy is provisioned", DescribeTable "can communicate over a localnet secondary network from pod to
    gw" (the client pod has no labels; every policy selects all pods)."""
    check(underlay({}, policy), table, PORT, network=NET)


# --- regressions: what the port of these tables found ----------------------------------------------------------

def test_vlan_id_zero_means_no_vlan():
    """Every e2e NAD but the localnet ones carries `"vlanID": 0`; it used to be rejected (exit 2)."""
    inv = inventory(e2e_nad(F_NS, "layer2", FLAT_L2_CIDR), e2e_nad(EXTRA_NS, "localnet", vlan=LOCALNET_VLAN))
    assert inv.nads[Ref(F_NS, NAD)].vlan_id is None
    assert inv.nads[Ref(EXTRA_NS, NAD)].vlan_id == LOCALNET_VLAN


def test_nads_of_one_cni_name_are_one_network_and_policy_for_matches_by_network():
    """A network is the CNI config `name`: NADs of one name are one network whichever NAD a pod or a policy's
    `policy-for` names; a NAD of another name in the same namespace is another network."""
    a, b, other = "k3x9z_blue", "k3x9z_blue", "k3x9z_red"
    deny = {"podSelector": {}, "policyTypes": ["Ingress"]}
    inv = inventory(
        *namespaces(), e2e_nad(F_NS, "layer2", FLAT_L2_CIDR, a), e2e_nad(EXTRA_NS, "layer2", FLAT_L2_CIDR, b),
        e2e_nad(F_NS, "layer2", FLAT_L2_CIDR, other, name="red"),
        e2e_pod("here", F_NS, "10.128.0.4"), e2e_pod("there", EXTRA_NS, "10.128.0.5"),
        # policy-for names the *extra* namespace's NAD: it still applies to the pods of F_NS on this network.
        {**e2e_mnp("deny", deny), "metadata": {"name": "deny", "namespace": F_NS,
                                                "annotations": {"k8s.v1.cni.cncf.io/policy-for": f"{EXTRA_NS}/{NAD}"}}})
    here, there = key(F_NS, "here"), key(EXTRA_NS, "there")
    check(inv, TruthTable(A, {(there, here): D}), PORT, network=NET)
    check(inv, TruthTable(A, {(there, here): D}), PORT, network=f"{EXTRA_NS}/{NAD}")
    assert inv.attachments_on(Ref(F_NS, "red")) == []


def test_a_separate_vlan_shares_the_bridge_mapping_through_physical_network_name():
    """Context "with a trunked configuration", It "the same bridge mapping can be shared by a separate VLAN by
    using the physical network name attribute": `different-network` (VLAN 20) names tenant-blue's network as its
    `physicalNetworkName`; it is its own network (its own CNI name), mapped onto the same bridge."""
    other = "different-network"
    service = {"name": "underlay-service", "network": f"{F_NS}/{other}", "ips": [UNDERLAY_IP], "ports": [{"port": PORT}]}
    client = e2e_pod("client-pod", F_NS, "60.128.0.2")
    client["metadata"]["annotations"] = {
        "k8s.v1.cni.cncf.io/networks": json.dumps([{"name": other}]),
        "k8s.v1.cni.cncf.io/network-status": json.dumps([{"name": f"{F_NS}/{other}", "interface": "net1",
                                                          "ips": ["60.128.0.2"], "mac": "0a:58:3c:80:00:02"}])}
    trunk = e2e_nad(F_NS, "localnet", LOCALNET_CIDR, excludes=f"{UNDERLAY_IP}/32")
    inv = inventory(
        *namespaces(), trunk,
        e2e_nad(F_NS, "localnet", LOCALNET_CIDR, cni_name=other, vlan=20, excludes=f"{UNDERLAY_IP}/32",
                physical=f"k3x9z_{NAD}", name=other),
        client, endpoints(service))
    net = inv.nads[Ref(F_NS, other)]
    assert (net.vlan_id, net.localnet_name) == (20, f"k3x9z_{NAD}")
    assert inv.network_of(Ref(F_NS, other)) == Ref(F_NS, other) != inv.network_of(Ref(F_NS, NAD))
    check(inv, TruthTable(A), PORT, network=f"{F_NS}/{other}")
