"""What a lab contains, as plain data: one localnet network, its pod and VM attachments, physical hosts.

Data only (no I/O): the seed is built here, later code builds the same shapes from parsed manifests.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from segcheck.agent.core.model import Ref


@dataclass(frozen=True)
class ServiceListener:
    """A port something listens on, so that "allowed" traffic towards the host is observable."""

    port: int
    protocol: str = "TCP"  # TCP (answers with a one-line banner) or UDP (echo)


@dataclass(frozen=True)
class LabNetwork:
    nad: Ref = Ref("default", "tenantblue")
    localnet_name: str = "tenantblue"  # the NAD's `name` (or physicalNetworkName), matched by the bridge mapping
    bridge: str = "br-ex"
    cidr: str = "192.168.200.0/24"
    gateway: str | None = "192.168.200.1"  # nothing answers there; guests are configured with it as in the seed

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
class LabTopology:
    network: LabNetwork = field(default_factory=LabNetwork)
    pods: tuple[PodAttachment, ...] = ()
    vms: tuple[VmAttachment, ...] = ()
    hosts: tuple[PhysicalHost, ...] = ()

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


def seed_topology() -> LabTopology:
    """The seed scenario: podclient and vm-server on `default/tenantblue`, PostgreSQL `db` on the physical side."""
    return LabTopology(
        network=LabNetwork(),
        pods=(PodAttachment(name="podclient", namespace="default", address="192.168.200.10/24",
                            mac="0a:58:c0:a8:c8:0a", labels=(("app", "podclient"),),
                            listeners=(ServiceListener(8080),)),),
        vms=(VmAttachment(name="vm-server", namespace="default", launcher_pod="virt-launcher-vm-server-x7k2p",
                          address="192.168.200.20/24", mac="02:5e:c0:a8:c8:14",
                          labels=(("kubevirt.io/domain", "vm-server"), ("app", "vm-server")),
                          listeners=(ServiceListener(8080),)),),
        hosts=(PhysicalHost(name="db", address="192.168.200.5/24", mac="52:54:00:c8:00:05", postgres=True),),
    )
