"""The locator finds a workload by OVS identity, never by address: two namespaces hold 192.168.200.10 on `net1`
(overlapping secondary networks are normal), and only the one behind the br-int Interface bound to the pod's
logical switch port is chosen; anything not positively identified is None with a reason.

Throw-away namespaces stand for the node: `<p>-node` holds the host sides (`hv1`, `hv2`) as ovs-vswitchd's
namespace would, `<p>-a` and `<p>-b` the two pods; the OVS snapshot is given as data.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from dataclasses import replace
from typing import Iterator

import pytest

from segcheck.agent.adapters.ovs_locator import OvsLocator
from segcheck.agent.core.model import Attachment, AttachmentKind, Ref
from segcheck.agent.core.northbound import OvsSnapshot
from segcheck.agent.core.ovnk.names import pod_port

pytestmark = pytest.mark.lab

NAD = Ref("default", "tenantblue")
OVERLAPPING_IP = "192.168.200.10"
MAC_A, MAC_B = "0a:58:c0:a8:c8:0a", "0a:58:c0:a8:c8:0b"
POD = Attachment(AttachmentKind.POD, Ref("default", "podclient"), NAD, interface="net1",
                 ips=(ipaddress.ip_address(OVERLAPPING_IP),))
VM = Attachment(AttachmentKind.VM, Ref("default", "vm-server"), NAD, mac="02:5e:c0:a8:c8:14",
                ips=(ipaddress.ip_address("192.168.200.20"),))
LSP = pod_port(NAD, POD.ref)
LAUNCHER_LSP = pod_port(NAD, Ref("default", "virt-launcher-vm-server-8z2cx"))


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def node() -> Iterator[dict[str, str]]:
    """`node` (OVS side: hv1 -> a/net1, hv2 -> b/net1, hv3 -> launcher/pod1 in k6t-1), all torn down after."""
    prefix = f"scl{secrets.token_hex(3)}"
    names = {role: f"{prefix}-{role}" for role in ("node", "a", "b", "launcher")}
    made: list[str] = []
    try:
        for ns in names.values():
            _ip("netns", "add", ns)
            made.append(ns)
        for host, pod, ifname, mac in (("hv1", "a", "net1", MAC_A), ("hv2", "b", "net1", MAC_B),
                                       ("hv3", "launcher", "pod1", "0a:58:c0:a8:c8:99")):
            _ip("-n", names["node"], "link", "add", host, "type", "veth", "peer", "name", ifname, "netns", names[pod])
            _ip("-n", names[pod], "link", "set", ifname, "address", mac)
            if pod != "launcher":
                _ip("-n", names[pod], "addr", "add", f"{OVERLAPPING_IP}/24", "dev", ifname)
        _ip("-n", names["launcher"], "link", "add", "k6t-1", "type", "bridge")
        _ip("-n", names["launcher"], "link", "set", "pod1", "master", "k6t-1")
        yield names
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)


def locator(node: dict[str, str], iface_ids: dict[str, str], macs: dict[str, str] | None = None,
            cache_seconds: float = 0) -> OvsLocator:
    snapshot = OvsSnapshot(bridges={"br-int": ("hv1", "hv2", "hv3")}, iface_ids=iface_ids,
                           attached_macs=macs or {})
    return OvsLocator(lambda: snapshot, node["node"], cache_seconds=cache_seconds)


def same_namespace(a: str, b: str) -> bool:
    sa, sb = os.stat(a if "/" in a else f"/run/netns/{a}"), os.stat(b if "/" in b else f"/run/netns/{b}")
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


@pytest.mark.parametrize("bound, expected", [("hv1", "a"), ("hv2", "b")])
def test_the_namespace_behind_the_bound_interface_is_chosen_whatever_else_holds_the_address(node, bound, expected):
    point = locator(node, {bound: LSP}).send_point(POD)
    assert point is not None
    assert same_namespace(point.netns, node[expected])
    assert point.interface == "net1" and str(point.ip) == OVERLAPPING_IP
    assert point.mac == (MAC_A if expected == "a" else MAC_B)


def test_the_declared_mac_cross_checks_the_namespace(node):
    assert locator(node, {"hv2": LSP}).send_point(replace(POD, mac=MAC_B)) is not None
    found = locator(node, {"hv2": LSP}).locate(replace(POD, mac=MAC_A))
    assert found.point is None and "expected " + MAC_A in found.reason


def test_ovs_attached_mac_disagreeing_with_the_declared_one_is_refused(node):
    found = locator(node, {"hv2": LSP}, {"hv2": MAC_A}).locate(replace(POD, mac=MAC_B))
    assert found.point is None and "attached" in found.reason


@pytest.mark.parametrize("iface_ids, reason", [
    ({}, "no br-int interface"),
    ({"hv1": LSP, "hv2": LSP}, "ambiguous"),
    ({"hv9": LSP}, "no br-int interface"),  # bound, but not a port of br-int
])
def test_not_found_or_ambiguous_is_none_with_a_reason(node, iface_ids, reason):
    found = locator(node, iface_ids).locate(POD)
    assert found.point is None and reason in found.reason
    assert locator(node, iface_ids).application_netns(POD) is None


def test_an_interface_name_other_than_the_declared_one_is_refused(node):
    found = locator(node, {"hv1": LSP}).locate(replace(POD, interface="net2"))
    assert found.point is None and "not net2" in found.reason


def test_a_vm_is_found_through_its_launcher_pod_port_and_sends_from_the_kubevirt_bridge(node):
    vm_locator = locator(node, {"hv3": LAUNCHER_LSP})
    point = vm_locator.send_point(VM)
    assert point is not None and same_namespace(point.netns, node["launcher"])
    assert (point.interface, point.mac, str(point.ip)) == ("k6t-1", VM.mac, "192.168.200.20")
    assert vm_locator.application_netns(VM) is None, "a VM's own sockets are in the guest, out of the node's reach"
    # The pod's port is not the VM's, and a pod interface outside a k6t- bridge is no launcher.
    assert locator(node, {"hv3": LSP}).send_point(VM) is None
    found = locator(node, {"hv1": LAUNCHER_LSP}).locate(VM)
    assert found.point is None and "k6t-" in found.reason


def test_the_same_pod_on_another_network_is_its_own_identity_also_when_cached(node):
    cached = locator(node, {"hv1": LSP}, cache_seconds=60)
    assert cached.send_point(POD) is not None
    other_network = replace(POD, network=Ref("default", "tenantred"))
    assert cached.send_point(other_network) is None, "tenantred's port is not bound here"
