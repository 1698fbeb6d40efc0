"""A workload's identity on its node is the br-int Interface bound to its logical switch port (a VM's: any
virt-launcher pod's of that VM); addresses play no part."""

from __future__ import annotations

import ipaddress

from segcheck.agent.core.model import Attachment, AttachmentKind, Ref
from segcheck.agent.core.northbound import OvsSnapshot
from segcheck.agent.core.ovnk.names import pod_port
from segcheck.agent.core.ovs_identity import OvsPort, workload_ports

NAD = Ref("default", "tenantblue")
POD = Attachment(AttachmentKind.POD, Ref("default", "podclient"), NAD, ips=(ipaddress.ip_address("192.168.200.10"),))
VM = Attachment(AttachmentKind.VM, Ref("default", "vm-server"), NAD)
POD_LSP = pod_port(NAD, POD.ref)


def launcher(suffix: str, vm: str = "vm-server") -> str:
    return pod_port(NAD, Ref("default", f"virt-launcher-{vm}-{suffix}"))


def ovs(iface_ids: dict[str, str], on_br_int: tuple[str, ...] | None = None) -> OvsSnapshot:
    return OvsSnapshot(bridges={"br-int": tuple(iface_ids) if on_br_int is None else on_br_int, "br-ex": ("ph1",)},
                       iface_ids=iface_ids)


def test_a_pod_is_the_interface_bound_to_its_port():
    assert workload_ports(POD, ovs({"hv1": "other", "hv2": POD_LSP})) == [OvsPort("hv2", POD_LSP)]


def test_the_same_address_in_another_network_is_not_an_identity():
    other = Attachment(AttachmentKind.POD, POD.ref, Ref("default", "tenantred"), ips=POD.ips)
    assert workload_ports(other, ovs({"hv2": POD_LSP})) == []


def test_an_interface_outside_br_int_is_not_the_workload():
    assert workload_ports(POD, ovs({"ph1": POD_LSP}, on_br_int=())) == []


def test_a_vm_is_its_launcher_pods_port_and_two_launchers_are_both_reported():
    assert workload_ports(VM, ovs({"hv3": launcher("8z2cx")})) == [OvsPort("hv3", launcher("8z2cx"))]
    migrating = workload_ports(VM, ovs({"hv3": launcher("8z2cx"), "hv4": launcher("q7b2m")}))
    assert [p.interface for p in migrating] == ["hv3", "hv4"]


def test_another_vms_launcher_or_a_malformed_suffix_is_not_the_vm():
    assert workload_ports(VM, ovs({"hv3": launcher("8z2cx", vm="vm-server-2")})) == []
    assert workload_ports(VM, ovs({"hv3": launcher("8z2cx-extra")})) == []
    assert workload_ports(POD, ovs({"hv3": launcher("8z2cx")})) == []


def test_a_workload_attached_through_its_own_namespaces_nad_is_bound_to_that_nads_port():
    """One network, two NADs: the port is scoped by the NAD the workload named (issue 10), not the network's key."""
    own = Ref("tenant2", "tenantblue")
    pod = Attachment(AttachmentKind.POD, Ref("tenant2", "podclient"), NAD, ips=POD.ips, nad=own)
    vm = Attachment(AttachmentKind.VM, Ref("tenant2", "vm-server"), NAD, nad=own)
    pod_lsp, vm_lsp = pod_port(own, pod.ref), pod_port(own, Ref("tenant2", "virt-launcher-vm-server-8z2cx"))
    assert pod_lsp.startswith("tenant2.tenantblue_")
    assert workload_ports(pod, ovs({"hv1": pod_lsp})) == [OvsPort("hv1", pod_lsp)]
    assert workload_ports(pod, ovs({"hv1": pod_port(NAD, pod.ref)})) == []  # the key NAD's name is another port
    assert workload_ports(vm, ovs({"hv2": vm_lsp})) == [OvsPort("hv2", vm_lsp)]
