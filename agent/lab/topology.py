"""What a lab contains, as plain data: one localnet or layer2 network, its pod and VM attachments, physical hosts
(localnet only: a layer2 network has no physical side), and on a cluster node the workloads of other nodes a
layer2 zone holds as `remote` ports.

Data only (no I/O): the seed is written out here, and `topology_from_inventory` builds the same shapes from
parsed manifests (`seed_topology() == topology_from_inventory(<examples/seed>, default/tenantblue)`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass, field

from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Attachment, AttachmentKind, ExternalEndpoint, Protocol, Ref
from segcheck.agent.core.ovnk.names import LAUNCHER_POD_PREFIX, LAUNCHER_SUFFIX_LENGTH, LAYER2

LOCALNET = "localnet"
TOPOLOGIES = (LOCALNET, LAYER2)


@dataclass(frozen=True)
class ServiceListener:
    """A port something listens on, so that "allowed" traffic towards the host is observable."""

    port: int
    protocol: str = "TCP"  # TCP (answers with a one-line banner) or UDP (echo)


@dataclass(frozen=True)
class LabNetwork:
    nad: Ref = Ref("default", "tenantblue")
    localnet_name: str = "tenantblue"  # the NAD's `name` (or physicalNetworkName), matched by the bridge mapping
    name: str = "tenantblue"  # the NAD's CNI `name`: OVN-K's network, naming its switch and ports
    bridge: str = "br-ex"
    cidr: str = "192.168.200.0/24"
    gateway: str | None = "192.168.200.1"  # nothing answers there; guests are configured with it as in the seed
    ipam: bool = False  # the NAD has subnets: OVN-K then knows every address (else a VM's port holds its MAC only)
    topology: str = LOCALNET  # or layer2: no localnet port, one switch per zone joined by tunnel keys
    subnets: tuple[str, ...] = ()  # the NAD's `subnets` (a layer2 switch carries them in other_config)
    network_id: int = 1  # the id OVN-K's cluster manager gives the network (its layer2 tunnel key derives from it)

    @property
    def is_layer2(self) -> bool:
        return self.topology == LAYER2

    @property
    def bridge_mapping(self) -> str:
        return f"{self.localnet_name}:{self.bridge}"


@dataclass(frozen=True)
class _Addressed:
    address: str  # IP with prefix length, e.g. 192.168.200.10/24
    mac: str

    @property
    def interface_address(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(self.address)

    @property
    def ip(self) -> str:
        return str(self.interface_address.ip)


@dataclass(frozen=True)
class PodAttachment(_Addressed):
    """A pod with a secondary interface on the network (multus `net1`)."""

    name: str = ""
    namespace: str = "default"
    interface: str = "net1"
    labels: tuple[tuple[str, str], ...] = ()
    listeners: tuple[ServiceListener, ...] = ()
    nad: Ref | None = None  # the NAD the pod's network selection names (None: the network's own)
    tunnel_key: int = 0  # layer2: the port's tunnel key, the same in every zone

    @property
    def ref(self) -> Ref:
        return Ref(self.namespace, self.name)

    @property
    def pod_ref(self) -> Ref:
        return self.ref


@dataclass(frozen=True)
class VmAttachment(_Addressed):
    """A KubeVirt VM with a bridge-bound interface: the guest owns the address, its virt-launcher pod the port."""

    name: str = ""  # the VM (and VMI) name
    namespace: str = "default"
    launcher_pod: str = ""  # virt-launcher-<vm>-<5 chars>; the logical switch port is named after it
    vm_network: str = "underlay"  # the VM spec's network/interface name; KubeVirt hashes it into device names
    labels: tuple[tuple[str, str], ...] = ()
    listeners: tuple[ServiceListener, ...] = ()
    nad: Ref | None = None
    tunnel_key: int = 0

    @property
    def ref(self) -> Ref:
        return Ref(self.namespace, self.name)

    @property
    def pod_ref(self) -> Ref:
        return Ref(self.namespace, self.launcher_pod)


@dataclass(frozen=True)
class PhysicalHost(_Addressed):
    """A machine on the physical network behind the bridge mapping (e.g. the seed's PostgreSQL server)."""

    name: str = ""
    postgres: bool = False  # run a real PostgreSQL on 5432 with role `app` and database `appdb`
    listeners: tuple[ServiceListener, ...] = ()

    @property
    def ports(self) -> tuple[int, ...]:
        return ((5432,) if self.postgres else ()) + tuple(l.port for l in self.listeners)


@dataclass(frozen=True)
class RemoteAttachment:
    """A workload of another node, as a layer2 zone holds it: a `remote` port bound to that node's chassis."""

    attachment: PodAttachment | VmAttachment
    node: str


@dataclass(frozen=True)
class LabTopology:
    network: LabNetwork = field(default_factory=LabNetwork)
    pods: tuple[PodAttachment, ...] = ()
    vms: tuple[VmAttachment, ...] = ()
    hosts: tuple[PhysicalHost, ...] = ()
    remotes: tuple[RemoteAttachment, ...] = ()  # layer2 cluster nodes only

    @property
    def attachments(self) -> tuple[PodAttachment | VmAttachment, ...]:
        return (*self.pods, *self.vms)

    def names(self) -> list[str]:
        """Every host name (pods, VMs, physical hosts); names are unique keys for the lab's accessors."""
        return [a.name for a in self.attachments] + [h.name for h in self.hosts]

    def validate(self) -> None:
        names = self.names()
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate host names in lab topology: {', '.join(dupes)}")
        net = ipaddress.ip_network(self.network.cidr)
        for item in (*self.attachments, *self.hosts):
            if item.interface_address.ip not in net:
                raise ValueError(f"{item.name}: {item.address} is outside {net}")
        for vm in self.vms:
            if not vm.launcher_pod:
                raise ValueError(f"VM {vm.name}: no virt-launcher pod name")
        if self.network.topology not in TOPOLOGIES:
            raise ValueError(f"the lab builds localnet and layer2 networks, not {self.network.topology!r}")
        if self.network.is_layer2:
            if self.hosts:
                raise ValueError("a layer2 network has no physical side: no physical hosts")
            keys = [a.tunnel_key for a in (*self.attachments, *(r.attachment for r in self.remotes))]
            if any(k <= 0 for k in keys) or len(set(keys)) != len(keys):
                raise ValueError(f"layer2 ports need distinct positive tunnel keys, have {keys}")
        elif self.remotes:
            raise ValueError("a localnet zone holds no ports of other nodes' workloads")


def seed_topology() -> LabTopology:
    """The seed scenario: podclient and vm-server on `default/tenantblue`, PostgreSQL `db` on the physical side."""
    return LabTopology(
        network=LabNetwork(),
        pods=(PodAttachment(name="podclient", namespace="default", address="192.168.200.10/24",
                            mac="0a:58:c0:a8:c8:0a", labels=(("app", "podclient"),),
                            listeners=(ServiceListener(8080),)),),
        vms=(VmAttachment(name="vm-server", namespace="default", launcher_pod="virt-launcher-vm-server-8z2cx",
                          address="192.168.200.20/24", mac="02:5e:c0:a8:c8:14",
                          labels=(("app", "vm-server"), ("kubevirt.io/domain", "vm-server")),
                          listeners=(ServiceListener(8080),)),),
        hosts=(PhysicalHost(name="db", address="192.168.200.5/24", mac="52:54:00:a8:c8:05", postgres=True),),
    )


# ----------------------------------------------------------------------------- from manifests

WORKLOAD_PORT = 8080  # every pod and VM listens here, so "allowed" towards a workload is observable
POSTGRES_PORT = 5432
DEFAULT_BRIDGE = "br-ex"
# KubeVirt names virt-launcher pods `virt-launcher-<vm>-<5 chars>` (Kubernetes' generateName alphabet).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def launcher_pod_name(vm: Ref) -> str:
    """A stable stand-in for the VM's virt-launcher pod (the real suffix is random; the lab needs a fixed one)."""
    digest = hashlib.sha256(str(vm).encode()).digest()
    return f"{LAUNCHER_POD_PREFIX}{vm.name}-" + "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:LAUNCHER_SUFFIX_LENGTH])


def pod_uid(pod: Ref) -> str:
    """A stable stand-in for a pod's UID (the API server's is random): OVN-K writes it as the port's
    `iface-id-ver`, the CNI on the OVS interface, and ovn-controller binds only when both agree."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"segcheck-lab:pod/{pod}"))


def _ip_bytes(ip: ipaddress.IPv4Address) -> list[str]:
    return [f"{b:02x}" for b in ip.packed]


def pod_mac(ip: ipaddress.IPv4Address) -> str:
    """OVN-Kubernetes derives a pod's MAC from its IP: 0a:58 + the four address bytes."""
    return ":".join(["0a", "58", *_ip_bytes(ip)])


def vm_mac(ip: ipaddress.IPv4Address) -> str:
    """A locally administered MAC for a guest without one in its spec (02:5e + the address bytes)."""
    return ":".join(["02", "5e", *_ip_bytes(ip)])


def physical_mac(ip: ipaddress.IPv4Address) -> str:
    """A QEMU-style MAC for a physical host (52:54:00 + the last three address bytes)."""
    return ":".join(["52", "54", "00", *_ip_bytes(ip)[1:]])


def _lab_cidr(subnets: tuple[str, ...], addresses: list[ipaddress.IPv4Address]) -> ipaddress.IPv4Network:
    """The network's first IPv4 subnet; IPAM-less networks carry no prefix, so take the /24 (or the smallest
    wider network) holding every static address."""
    for text in subnets:
        net = ipaddress.ip_network(text, strict=False)
        if isinstance(net, ipaddress.IPv4Network):
            return net
    if not addresses:
        raise ValueError("no IPv4 address on the network and no IPv4 subnet: cannot size the lab network")
    for prefix in range(24, -1, -1):
        net = ipaddress.IPv4Network(f"{addresses[0]}/{prefix}", strict=False)
        if all(a in net for a in addresses):
            return net
    raise AssertionError("unreachable: /0 holds every address")


def _v4(ips: tuple[object, ...]) -> ipaddress.IPv4Address | None:
    return next((ip for ip in ips if isinstance(ip, ipaddress.IPv4Address)), None)


def _host_of(ep: ExternalEndpoint, ip: ipaddress.IPv4Address, prefix: int) -> PhysicalHost:
    postgres = ep.name == "db" or any(p.port == POSTGRES_PORT and p.protocol is Protocol.TCP for p in ep.ports)
    listeners = tuple(ServiceListener(p.port, p.protocol.value) for p in ep.ports
                      if p.protocol in (Protocol.TCP, Protocol.UDP)
                      and not (postgres and p.port == POSTGRES_PORT and p.protocol is Protocol.TCP))
    return PhysicalHost(name=ep.name, address=f"{ip}/{prefix}", mac=physical_mac(ip), postgres=postgres,
                        listeners=listeners)


def topology_from_inventory(inventory: Inventory, network: Ref, bridge: str = DEFAULT_BRIDGE) -> LabTopology:
    """The lab for one localnet or layer2 network of parsed manifests: pods as pod namespaces, VMs as
    virt-launcher + guest, a localnet network's ExternalEndpoints as physical hosts (`db`, or whatever serves
    5432, gets PostgreSQL; a layer2 network has no physical side, so its endpoints are left out). Each port is
    named after the NAD its workload attached through. Workloads without a static IPv4 address get the next
    free one of the subnet. Raises ValueError when the manifests cannot make a lab (unknown network, another
    topology, clashing names)."""
    net = inventory.networks.get(network)
    if net is None:
        known = ", ".join(sorted(map(str, inventory.networks))) or "none"
        raise ValueError(f"no NetworkAttachmentDefinition {network} in the manifests (have: {known})")
    if net.topology not in TOPOLOGIES:
        raise ValueError(f"{network} has topology {net.topology!r}; the lab builds localnet and layer2 networks only")
    attachments: list[Attachment] = sorted(inventory.attachments_on(network), key=lambda a: (a.kind.value, a.ref))
    externals = inventory.externals_on(network) if net.topology == LOCALNET else ()
    static = [ip for ip in (*(_v4(a.ips) for a in attachments), *(_v4(e.ips) for e in externals)) if ip]
    cidr = _lab_cidr(net.subnets, static)
    used = set(static)
    first_host = next(cidr.hosts(), None)
    gateway = str(first_host) if first_host is not None and first_host not in used else None
    free = (ip for ip in cidr.hosts() if ip not in used and str(ip) != gateway)

    def address_of(ips: tuple[object, ...], what: str) -> ipaddress.IPv4Address:
        ip = _v4(ips)
        if ip is None:
            ip = next(free, None)
            if ip is None:
                raise ValueError(f"{what}: no free address left in {cidr}")
        elif ip not in cidr:
            raise ValueError(f"{what}: {ip} is outside the lab network {cidr}")
        return ip

    pods: list[PodAttachment] = []
    vms: list[VmAttachment] = []
    for index, att in enumerate(attachments):
        ip = address_of(att.ips, f"{att.kind.value} {att.ref}")
        address = f"{ip}/{cidr.prefixlen}"
        listeners = (ServiceListener(WORKLOAD_PORT),)
        # OVN-K's cluster manager hands every layer2 pod a tunnel key of its own (from 1); here: by order.
        tunnel_key = index + 1 if net.topology == LAYER2 else 0
        if att.kind is AttachmentKind.VM:
            vms.append(VmAttachment(name=att.ref.name, namespace=att.ref.namespace,
                                    launcher_pod=launcher_pod_name(att.ref), address=address,
                                    mac=att.mac or vm_mac(ip), vm_network=att.interface or "underlay",
                                    labels=att.labels, listeners=listeners, nad=att.nad, tunnel_key=tunnel_key))
        else:
            pods.append(PodAttachment(name=att.ref.name, namespace=att.ref.namespace, address=address,
                                      mac=att.mac or pod_mac(ip), interface=att.interface or "net1",
                                      labels=att.labels, listeners=listeners, nad=att.nad,
                                      tunnel_key=tunnel_key))
    hosts = [_host_of(ep, address_of(ep.ips, f"endpoint {ep.name}"), cidr.prefixlen) for ep in externals]
    topology = LabTopology(
        network=LabNetwork(nad=net.ref, localnet_name=net.localnet_name, name=net.cni_name, bridge=bridge,
                           cidr=str(cidr), gateway=gateway, ipam=net.has_ipam, topology=net.topology,
                           subnets=tuple(net.subnets)),
        pods=tuple(pods), vms=tuple(vms), hosts=tuple(hosts))
    topology.validate()
    return topology
