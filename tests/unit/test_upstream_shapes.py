"""The programmed plane on NB contents as OVN-Kubernetes itself writes them, in the shapes of 4.14 (upstream
2023-08) and of current OVN-K (owner-based port group ids, 4.16+), for a layer2 and a localnet network with
selector peers, and for a VM on an IPAM-less localnet whose port holds its MAC only.

The NB rows here are written out by hand from upstream's code (base_network_controller_policy.go,
gress_policy.go, pod_selector_address_set.go, libovsdb/ops/db_object_types.go, multipolicy_test.go), not
produced by segcheck's own writer, so the reader is checked against the real shapes.
"""

from __future__ import annotations

import ipaddress

import pytest

from segcheck.agent.core.enforcement import enforced_policies
from segcheck.agent.core.findings import FindingKind
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Attachment, AttachmentKind, Protocol, Ref, Verdict
from segcheck.agent.core.northbound import Acl, LogicalPort, LogicalSwitch, NbSnapshot, PortGroup
from segcheck.agent.core.ovnk.versions import NbShapes
from segcheck.agent.core.programmed import ProgrammedPlane, detect_ovnk
from tests.builders import inventory, mnp, nad, namespace, pod

A, D, U = Verdict.ALLOWED, Verdict.DENIED, Verdict.UNKNOWN
TCP = Protocol.TCP


def fnv(text: str) -> str:
    h = 14695981039346656037
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) % 2**64
    return f"a{h}"


class UpstreamNb:
    """NB rows of one secondary network as one OVN-K version writes them."""

    def __init__(self, version: str, net: str, topology: str) -> None:
        self.version, self.net, self.topology = version, net, topology
        self.ctrl = f"{net}-network-controller"
        self.ports: dict[str, LogicalPort] = {}
        self.groups: dict[str, PortGroup] = {}
        self.acls: dict[str, Acl] = {}
        self.sets: dict[str, tuple[str, ...]] = {}
        if topology == "localnet":
            self.ports[f"{net}_ovn_localnet_port"] = LogicalPort(f"{net}_ovn_localnet_port", "localnet", ("unknown",),
                                                                 options=(("network_name", net),))

    def lsp(self, nad: str, ns: str, pod_name: str, addresses: str) -> str:
        name = f"{nad.replace('/', '.').replace('-', '.')}_{ns}_{pod_name}"
        ids = (("k8s.ovn.org/nad", nad), ("k8s.ovn.org/network", self.net), ("k8s.ovn.org/topology", self.topology),
               ("namespace", ns), ("pod", "true"))
        self.ports[name] = LogicalPort(name, "", (addresses,), ids)
        return name

    def _acl(self, uuid: str, gress: str, priority: int, action: str, match: str, ids: dict[str, str]) -> str:
        egress = gress == "Egress"
        self.acls[uuid] = Acl(uuid, "from-lport" if egress else "to-lport", priority, action, match, 2, egress,
                              tuple(sorted(ids.items())), ids.get("k8s.ovn.org/name", ""))
        return uuid

    def rule_acl(self, uuid: str, ns: str, policy: str, gress: str, idx: int, proto: str, ipb: int, match: str) -> str:
        key = f"{ns}:{policy}"
        return self._acl(uuid, gress, 1001, "allow-related", match, {
            "k8s.ovn.org/owner-controller": self.ctrl, "k8s.ovn.org/owner-type": "NetworkPolicy",
            "k8s.ovn.org/name": key, "direction": gress, "gress-index": str(idx), "port-policy-protocol": proto,
            "ip-block-index": str(ipb), "k8s.ovn.org/id": f"{self.ctrl}:NetworkPolicy:{key}:{gress}:{idx}:{proto}:{ipb}"})

    def policy_group(self, ns: str, policy: str, ports: tuple[str, ...], *acls: str) -> str:
        if self.version == "4.14":
            name = fnv(f"{self.net}_{ns}_{policy}")
            ids = {"name": f"{ns}_{policy}", "k8s.ovn.org/network": self.net}
        else:
            primary = f"{self.ctrl}:NetworkPolicy:{ns}:{policy}"
            name = fnv(primary)
            ids = {"k8s.ovn.org/owner-controller": self.ctrl, "k8s.ovn.org/owner-type": "NetworkPolicy",
                   "k8s.ovn.org/name": f"{ns}:{policy}", "k8s.ovn.org/id": primary}
        self.groups[name] = PortGroup(name, frozenset(ports), acls, tuple(sorted(ids.items())))
        return name

    def policy_pg_name(self, ns: str, policy: str) -> str:
        return fnv(f"{self.net}_{ns}_{policy}") if self.version == "4.14" else fnv(f"{self.ctrl}:NetworkPolicy:{ns}:{policy}")

    def default_deny(self, ns: str, ingress: tuple[str, ...], egress: tuple[str, ...]) -> None:
        for gress, ports in (("Ingress", ingress), ("Egress", egress)):
            if self.version == "4.14":
                name = fnv(f"{self.net}_{ns}") + f"_{gress.lower()}DefaultDeny"
                ids = {"name": name, "k8s.ovn.org/network": self.net}
            else:
                primary = f"{self.ctrl}:NetpolNamespace:{ns}:{gress}"
                name = fnv(primary)
                ids = {"k8s.ovn.org/owner-controller": self.ctrl, "k8s.ovn.org/owner-type": "NetpolNamespace",
                       "k8s.ovn.org/name": ns, "direction": gress, "k8s.ovn.org/id": primary}
            lport = f"{'outport' if gress == 'Ingress' else 'inport'} == @{name}"
            acl_ids = []
            for kind, priority, action, match in (("defaultDeny", 1000, "drop", lport),
                                                  ("arpAllow", 1001, "allow", f"{lport} && (arp || nd)")):
                acl_ids.append(self._acl(f"{name[:12]}-{gress}-{kind}", gress, priority, action, match, {
                    "k8s.ovn.org/owner-controller": self.ctrl, "k8s.ovn.org/owner-type": "NetpolNamespace",
                    "k8s.ovn.org/name": ns, "direction": gress, "type": kind,
                    "k8s.ovn.org/id": f"{self.ctrl}:NetpolNamespace:{ns}:{gress}:{kind}"}))
            self.groups[name] = PortGroup(name, frozenset(ports), tuple(acl_ids), tuple(sorted(ids.items())))

    def pod_selector_set(self, key: str, *ips: str) -> str:
        primary = f"{self.ctrl}:PodSelector:{key}:v4"
        self.sets[fnv(primary)] = ips
        return fnv(primary)

    def namespace_set(self, ns: str, *ips: str) -> str:
        self.sets[fnv(f"{self.ctrl}:Namespace:{ns}:v4")] = ips
        return fnv(f"{self.ctrl}:Namespace:{ns}:v4")

    def build(self) -> NbSnapshot:
        switch = f"{self.net}_ovn_{self.topology}_switch"
        return NbSnapshot({switch: LogicalSwitch(switch, tuple(sorted(self.ports)), (),
                                                 (("k8s.ovn.org/network", self.net),))},
                          dict(self.ports), dict(self.groups), dict(self.sets), dict(self.acls))


VERSIONS = ["4.14", "current"]


# ----------------------------------------------------------------------------- layer2, pod selector peers

def layer2_world() -> Inventory:
    return inventory(
        nad("l2net", "ns1", subnets="10.100.200.0/24", topology="layer2"),
        pod("client", "10.100.200.10", "ns1", {"app": "client"}, "l2net"),
        pod("server", "10.100.200.20", "ns1", {"app": "server"}, "l2net"),
        pod("stranger", "10.100.200.30", "ns1", {"app": "other"}, "l2net"),
        mnp("allow-client", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                          "ports": [{"protocol": "TCP", "port": 8080}]}]},
            namespace="ns1", policy_for="l2net"))


def layer2_nb(version: str) -> NbSnapshot:
    nb = UpstreamNb(version, "l2net", "layer2")
    client = nb.lsp("ns1/l2net", "ns1", "client", "0a:58:0a:64:c8:0a 10.100.200.10/24")
    server = nb.lsp("ns1/l2net", "ns1", "server", "0a:58:0a:64:c8:14 10.100.200.20/24")
    nb.lsp("ns1/l2net", "ns1", "stranger", "0a:58:0a:64:c8:1e 10.100.200.30/24")
    aset = nb.pod_selector_set("ns1_LS{ML:{app: client,},}", "10.100.200.10")
    pg = nb.policy_pg_name("ns1", "allow-client")
    nb.policy_group("ns1", "allow-client", (server,), nb.rule_acl(
        "l2-allow", "ns1", "allow-client", "Ingress", 0, "tcp", -1,
        f"ip4.src == {{${aset}}} && tcp && tcp.dst==8080 && outport == @{pg}"))
    nb.default_deny("ns1", ingress=(server,), egress=())
    assert client
    return nb.build()


@pytest.mark.parametrize("version", VERSIONS)
def test_layer2_selector_peers_in_both_shapes(version: str) -> None:
    inv = layer2_world()
    net = inv.networks[Ref("ns1", "l2net")]
    plane = ProgrammedPlane(layer2_nb(version), net)
    assert plane.findings == []
    assert plane.policy_findings(enforced_policies(inv, net.ref).policies) == []
    eps = {a.ref.name: a for a in inv.attachments_on(net.ref)}
    got = {(s, d, p): plane.judge(eps[s], eps[d], p, TCP).verdict
           for s in eps for d in eps if s != d for p in (8080, 9090)}
    allowed = {("client", "server", 8080)}
    to_server = {k for k in got if k[1] == "server"}
    assert {k for k, v in got.items() if v is A} == set(got) - to_server | allowed
    j = plane.judge(eps["client"], eps["server"], 8080, TCP)
    assert j.because == ["acl/l2-allow"] and "owner ns1:allow-client" in j.reasons[0].detail
    seen, findings = detect_ovnk(plane.nb, net, version, False, NbShapes(version))
    assert findings == [] and any(("4.14" if version == "4.14" else "4.16+") in s for s in seen)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_policy_is_not_programmed_only_when_neither_port_group_nor_acls_exist(version: str) -> None:
    inv = layer2_world()
    net = inv.networks[Ref("ns1", "l2net")]
    nb = layer2_nb(version)
    policies = enforced_policies(inv, net.ref).policies
    pg = next(n for n, g in nb.port_groups.items() if "l2-allow" in g.acls)
    without_pg = NbSnapshot(nb.switches, nb.ports, {n: g for n, g in nb.port_groups.items() if n != pg},
                            nb.address_sets, nb.acls)
    assert ProgrammedPlane(without_pg, net).policy_findings(policies) == []
    without_both = NbSnapshot(without_pg.switches, nb.ports, without_pg.port_groups, nb.address_sets,
                              {u: a for u, a in nb.acls.items() if u != "l2-allow"})
    assert [f.kind for f in ProgrammedPlane(without_both, net).policy_findings(policies)] == [
        FindingKind.POLICY_NOT_PROGRAMMED]


def test_a_look_alike_4_14_port_group_is_not_taken_for_the_policy() -> None:
    """4.14 ownership comes from the readable name only when the port group's name is its hash."""
    inv = layer2_world()
    net = inv.networks[Ref("ns1", "l2net")]
    nb = layer2_nb("4.14")
    pg = next(n for n, g in nb.port_groups.items() if "l2-allow" in g.acls)
    forged = {n: g for n, g in nb.port_groups.items() if n != pg}
    forged["a1"] = PortGroup("a1", frozenset(), (), (("k8s.ovn.org/network", "l2net"), ("name", "ns1_allow-client")))
    acls = {u: a for u, a in nb.acls.items() if u != "l2-allow"}
    found = ProgrammedPlane(NbSnapshot(nb.switches, nb.ports, forged, nb.address_sets, acls), net).policy_findings(
        enforced_policies(inv, net.ref).policies)
    assert [f.kind for f in found] == [FindingKind.POLICY_NOT_PROGRAMMED]


# ----------------------------------------------------------------------------- localnet with IPAM, namespace peers

def localnet_world() -> Inventory:
    return inventory(
        nad("blue", "default", subnets="192.168.50.0/24"), namespace("team", {"team": "blue"}),
        pod("app", "192.168.50.10", "default", {"role": "app"}, "blue"),
        pod("peer", "192.168.50.20", "team", {"role": "peer"}, "default/blue"),
        pod("outsider", "192.168.50.30", "default", {"role": "x"}, "blue"),
        mnp("egress-team", {"podSelector": {"matchLabels": {"role": "app"}}, "policyTypes": ["Egress"],
                            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                                        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "UDP", "port": 53}]}]},
            policy_for="blue"))


def localnet_nb(version: str) -> NbSnapshot:
    nb = UpstreamNb(version, "blue", "localnet")
    app = nb.lsp("default/blue", "default", "app", "0a:58:c0:a8:32:0a 192.168.50.10/24")
    nb.lsp("default/blue", "team", "peer", "0a:58:c0:a8:32:14 192.168.50.20/24")
    nb.lsp("default/blue", "default", "outsider", "0a:58:c0:a8:32:1e 192.168.50.30/24")
    team = nb.namespace_set("team", "192.168.50.20")
    pg = nb.policy_pg_name("default", "egress-team")
    nb.policy_group("default", "egress-team", (app,),  # one ACL per protocol of the rule
                    nb.rule_acl("ln-tcp", "default", "egress-team", "Egress", 0, "tcp", -1,
                                f"ip4.dst == {{${team}}} && tcp && tcp.dst==443 && inport == @{pg}"),
                    nb.rule_acl("ln-udp", "default", "egress-team", "Egress", 0, "udp", -1,
                                f"ip4.dst == {{${team}}} && udp && udp.dst==53 && inport == @{pg}"))
    nb.default_deny("default", ingress=(), egress=(app,))
    return nb.build()


@pytest.mark.parametrize("version", VERSIONS)
def test_localnet_namespace_peers_one_acl_per_protocol(version: str) -> None:
    inv = localnet_world()
    net = inv.networks[Ref("default", "blue")]
    plane = ProgrammedPlane(localnet_nb(version), net)
    assert plane.findings == [] and plane.policy_findings(enforced_policies(inv, net.ref).policies) == []
    eps = {a.ref.name: a for a in inv.attachments_on(net.ref)}
    assert plane.judge(eps["app"], eps["peer"], 443, TCP).because == ["acl/ln-tcp"]
    assert plane.judge(eps["app"], eps["peer"], 53, Protocol.UDP).because == ["acl/ln-udp"]
    assert plane.judge(eps["app"], eps["peer"], 53, TCP).verdict is D
    assert plane.judge(eps["app"], eps["outsider"], 443, TCP).verdict is D
    assert plane.judge(eps["outsider"], eps["app"], 443, TCP).verdict is A  # not isolated for ingress
    assert plane.unattributed(eps.values()) == []


# ----------------------------------------------------------------------------- a VM on an IPAM-less localnet

VM_MAC = "02:ab:cd:00:00:14"


def vm_nb(version: str, *launchers: tuple[str, str]) -> NbSnapshot:
    nb = UpstreamNb(version, "tenantblue", "localnet")
    for launcher, mac in launchers:  # OVN-K knows no IP for the VM: its port holds a random MAC only
        nb.lsp("default/tenantblue", "default", launcher, mac)
    pg = nb.policy_pg_name("default", "vm-db")
    ports = tuple(n for n in nb.ports if "virt-launcher" in n)
    nb.policy_group("default", "vm-db", ports, nb.rule_acl(
        "vm-allow", "default", "vm-db", "Egress", 0, "tcp", 0,
        f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{pg}"))
    nb.default_deny("default", ingress=(), egress=ports)
    return nb.build()


def vm(ip: str | None, mac: str | None = VM_MAC) -> Attachment:
    return Attachment(AttachmentKind.VM, Ref("default", "vm-server"), Ref("default", "tenantblue"), (("kubevirt.io/vm", "vm-server"),),
                      mac=mac, ips=(ipaddress.ip_address(ip),) if ip else ())


def db_endpoint():
    from segcheck.agent.core.model import ExternalEndpoint

    return ExternalEndpoint("db", (ipaddress.ip_address("192.168.200.5"),), Ref("default", "tenantblue"))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_mac_only_vm_port_is_found_by_its_launcher_pod_name_and_mac(version: str) -> None:
    from segcheck.agent.core.model import Network

    net = Network(Ref("default", "tenantblue"), "tenantblue", "localnet")
    plane = ProgrammedPlane(vm_nb(version, ("virt-launcher-vm-server-x7k2p", VM_MAC)), net)
    assert plane.locate(vm("192.168.200.20")) == ("default.tenantblue_default_virt-launcher-vm-server-x7k2p",
                                                  "the virt-launcher pod's port")
    assert plane.judge(vm("192.168.200.20"), db_endpoint(), 5432, TCP).verdict is A
    assert plane.judge(vm("192.168.200.20"), db_endpoint(), 5433, TCP).verdict is D
    j = plane.judge(vm(None), db_endpoint(), 5432, TCP)  # the guest's IP is known nowhere: unknown, with why
    assert j.verdict is U and j.because == ["nb/no-address"] and VM_MAC in j.reasons[0].detail


def test_two_launcher_ports_are_told_apart_by_mac_or_left_unknown() -> None:
    from segcheck.agent.core.model import Network

    net = Network(Ref("default", "tenantblue"), "tenantblue", "localnet")
    plane = ProgrammedPlane(vm_nb("4.14", ("virt-launcher-vm-server-aaaaa", "02:00:00:00:00:01"),
                                  ("virt-launcher-vm-server-bbbbb", VM_MAC)), net)
    assert plane.port_of(vm("192.168.200.20")) == "default.tenantblue_default_virt-launcher-vm-server-bbbbb"
    port, why = plane.locate(vm("192.168.200.20", mac=None))
    assert port is None and "2 virt-launcher ports" in why
    j = plane.judge(vm("192.168.200.20", mac=None), db_endpoint(), 5432, TCP)
    assert j.verdict is U and j.because == ["nb/port-missing"]
    assert [(u.kind, u.name) for u in plane.unattributed([vm("192.168.200.20", mac=None)])] == [
        ("endpoint", "default/vm-server"),
        ("port", "default.tenantblue_default_virt-launcher-vm-server-aaaaa"),
        ("port", "default.tenantblue_default_virt-launcher-vm-server-bbbbb")]


# ----------------------------------------------------------------------------- the lab's writer, against the same rows

def rows(nb: NbSnapshot) -> set[tuple[object, ...]]:
    """Port groups with their ports, ids and ACLs (UUIDs left out), and address sets."""
    out: set[tuple[object, ...]] = {("set", name, tuple(sorted(addrs))) for name, addrs in nb.address_sets.items()}
    for pg in nb.port_groups.values():
        acls = frozenset((a.direction, a.priority, a.action, a.match, a.tier, a.after_lb, a.external_ids)
                         for a in (nb.acls[u] for u in pg.acls))
        out.add(("pg", pg.name, tuple(sorted(pg.ports)), pg.external_ids, acls))
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("world,nb_of,net", [(layer2_world, layer2_nb, Ref("ns1", "l2net")),
                                             (localnet_world, localnet_nb, Ref("default", "blue"))])
def test_the_lab_writer_writes_exactly_these_rows(version, world, nb_of, net) -> None:
    from segcheck.agent.core.enforcement import PROFILES
    from segcheck.agent.core.ovnk.desired import desired_state
    from segcheck.agent.core.ovnk.names import pod_port
    from tests.nb_builders import from_desired

    inv = world()
    lsps = {a.key: pod_port(a.network, a.ref) for a in inv.attachments_on(net)}
    upstream = nb_of(version)
    written = from_desired(desired_state(inv, net, lsps, PROFILES[version]),
                           base=NbSnapshot(upstream.switches, upstream.ports))
    assert rows(written) == rows(upstream)


# ----------------------------------------------------------------------------- layer2 interconnect: one zone's NB

def zoned_layer2_nb(version: str, local: str) -> NbSnapshot:
    """One zone of a two-node layer2 network as OVN-K's interconnect writes it (zone_ic_handler.go,
    base_network_controller_pods.go): both pods have a port with their tunnel key, the other node's pod as a
    `remote` port requesting its node's chassis; port groups hold the local pod only."""
    nb = UpstreamNb(version, "l2net", "layer2")
    nodes = {"client": "worker-0", "server": "worker-1"}
    names_ = {}
    for key, (pod_name, addresses) in enumerate((("client", "0a:58:0a:64:c8:0a 10.100.200.10/24"),
                                                 ("server", "0a:58:0a:64:c8:14 10.100.200.20/24")), start=1):
        name = nb.lsp("ns1/l2net", "ns1", pod_name, addresses)
        row = nb.ports[name]
        options = (("iface-id-ver", f"uid-{pod_name}"), ("requested-chassis", nodes[pod_name]),
                   ("requested-tnl-key", str(key)))
        nb.ports[name] = LogicalPort(name, "" if pod_name == local else "remote", row.addresses, row.external_ids,
                                     options)
        names_[pod_name] = name
    aset = nb.pod_selector_set("ns1_LS{ML:{app: client,},}", "10.100.200.10")
    pg = nb.policy_pg_name("ns1", "allow-client")
    mine = (names_["server"],) if local == "server" else ()
    nb.policy_group("ns1", "allow-client", mine, nb.rule_acl(
        "l2-allow", "ns1", "allow-client", "Ingress", 0, "tcp", -1,
        f"ip4.src == {{${aset}}} && tcp && tcp.dst==8080 && outport == @{pg}"))
    nb.default_deny("ns1", ingress=mine, egress=())
    return nb.build()


def two_pod_layer2_world() -> Inventory:
    return inventory(
        nad("l2net", "ns1", subnets="10.100.200.0/24", topology="layer2"),
        pod("client", "10.100.200.10", "ns1", {"app": "client"}, "l2net"),
        pod("server", "10.100.200.20", "ns1", {"app": "server"}, "l2net"),
        mnp("allow-client", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                          "ports": [{"protocol": "TCP", "port": 8080}]}]},
            namespace="ns1", policy_for="l2net"))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_layer2_zone_judges_its_local_halves_and_names_the_remote_ports_node(version: str) -> None:
    inv = two_pod_layer2_world()
    net = inv.networks[Ref("ns1", "l2net")]
    eps = {a.ref.name: a for a in inv.attachments_on(net.ref)}
    assert all(a.node is None for a in eps.values())  # the manifests schedule nothing: the NB says where
    client_zone = ProgrammedPlane(zoned_layer2_nb(version, "client"), net, zone="worker-0")
    assert client_zone.findings == [] and client_zone.unattributed(eps.values()) == []
    assert client_zone.remote_node(eps["server"]) == (True, "worker-1")
    assert client_zone.remote_node(eps["client"]) == (False, None)
    # The server's ingress runs on worker-1: a port this zone allows is remote there, never a leak here.
    for port in (8080, 9090):
        j = client_zone.judge(eps["client"], eps["server"], port, TCP)
        assert j.verdict is Verdict.REMOTE, (port, j)
    server_zone = ProgrammedPlane(zoned_layer2_nb(version, "server"), net, zone="worker-1")
    assert server_zone.remote_node(eps["client"]) == (True, "worker-0")
    assert server_zone.judge(eps["client"], eps["server"], 9090, TCP).verdict is D  # the local ingress deny
    assert server_zone.judge(eps["client"], eps["server"], 8080, TCP).verdict is Verdict.REMOTE  # egress: worker-0


def test_the_layer2_switch_and_ports_are_written_as_upstream_writes_them() -> None:
    from segcheck.agent.core.ovnk import ports

    assert dict(ports.switch_other_config("l2net_ovn_layer2_switch", "layer2", ("10.100.200.0/24",), 1)) == {
        "subnet": "10.100.200.0/24", "interconn-ts": "l2net_ovn_layer2_switch", "requested-tnl-key": "16711684",
        "mcast_snoop": "true", "mcast_querier": "false", "mcast_flood_unregistered": "true"}
    assert "subnet" not in dict(ports.switch_other_config("s", "layer2", (), 1))  # IPAM-less
    assert dict(ports.switch_other_config("s", "layer2", ("fd00:10::/64",), 2))["ipv6_prefix"] == "fd00:10::"
    assert ports.switch_other_config("s", "localnet", ("10.0.0.0/24",), 1) == ()
    assert dict(ports.pod_port_options("worker-1", "uid-1", "layer2", 7)) == {
        "requested-chassis": "worker-1", "iface-id-ver": "uid-1", "requested-tnl-key": "7"}
    assert dict(ports.pod_port_options("worker-1", "uid-1", "localnet", 0)) == {
        "requested-chassis": "worker-1", "iface-id-ver": "uid-1"}
    with pytest.raises(ValueError):
        ports.pod_port_options("worker-1", "uid-1", "layer2", 0)  # OVN-K refuses a port without its tunnel id
    assert ports.remote_port_type("layer2") == "remote" and ports.remote_port_type("localnet") is None
    assert dict(ports.cni_interface_ids("lsp", "0a:58:0a:00:00:01", "uid-1", ["10.0.0.1/24"], Ref("ns", "n"), "n")) == {
        "iface-id": "lsp", "iface-id-ver": "uid-1", "attached_mac": "0a:58:0a:00:00:01",
        "ip_addresses": "10.0.0.1/24", "k8s.ovn.org/network": "n", "k8s.ovn.org/nad": "ns/n"}


def test_the_lab_names_a_port_after_the_workloads_own_nad() -> None:
    """Issue 10: a client attached through its own namespace's NAD of the network gets the port OVN-K gives it
    (scoped by that NAD, not the network's key NAD), in the lab's wiring, its controller and the reader."""
    from segcheck.agent.lab.controller import LabController
    from segcheck.agent.lab.lab import Lab
    from segcheck.agent.lab.topology import topology_from_inventory

    inv = inventory(
        nad("l2net", "ns1", topology="layer2"), nad("l2net", "ns2", topology="layer2"),
        pod("server", "10.100.200.20", "ns1", {"app": "server"}, "l2net"),
        pod("client", "10.100.200.10", "ns2", {"app": "client"}, "l2net"))
    key = inv.network_of(Ref("ns1", "l2net"))
    assert key is not None
    client = next(a for a in inv.attachments_on(key) if a.ref.name == "client")
    assert client.nad_ref != key  # one network, two NADs
    lab = Lab("/nonexistent/segcheck-lab", "t-", topology_from_inventory(inv, key))
    expected = f"{client.nad_ref.namespace}.l2net_ns2_client"
    assert lab.lsp_name("client") == expected and lab.lsp_name("server") == f"{key.namespace}.l2net_ns1_server"
    assert LabController(lab).lsp_names(inv, key)[client.key] == expected
    nb = UpstreamNb("4.14", "l2net", "layer2")
    nb.lsp(str(client.nad_ref), "ns2", "client", "0a:58:0a:64:c8:0a 10.100.200.10")
    plane = ProgrammedPlane(nb.build(), inv.networks[key])
    assert plane.locate(client) == (expected, "by name")
