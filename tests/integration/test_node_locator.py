"""Finding workloads' namespaces the way the DaemonSet does on a node, on the lab: by OVS identity (the br-int
Interface bound to the workload's logical switch port, followed through its veth), never by address."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from segcheck.agent.adapters.node_locator import NodeLocator
from segcheck.agent.adapters.ovsdb import OvsReader
from segcheck.agent.core.model import AttachmentKind

from .planes import seed_inventory

pytestmark = pytest.mark.lab


def same_namespace(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


@pytest.fixture
def node_locator(lab):
    reader = OvsReader(lab.ovs_url)
    try:
        yield NodeLocator(reader.snapshot, ovs_netns=lab.netns_path(lab.ovs_netns), cache_seconds=0)
    finally:
        reader.close()


def test_pod_is_found_by_its_ovs_port(lab, node_locator):
    pod = next(a for a in seed_inventory().attachments if a.ref.name == "podclient")
    point = node_locator.send_point(pod)
    assert point is not None, node_locator.why_not(pod)
    assert point.interface == "net1" and str(point.ip) == "192.168.200.10"
    assert same_namespace(point.netns, lab.netns_path(lab.netns("podclient")))
    assert point.mac == lab.send_point("podclient").mac


def test_vm_is_found_through_its_virt_launcher_pods_port(lab, node_locator):
    vm = next(a for a in seed_inventory().attachments if a.kind is AttachmentKind.VM)
    assert vm.mac is None, "the seed's VM declares no MAC: it comes from OVS's attached_mac, as the VMI reports it"
    expected = lab.send_point("vm-server")
    point = node_locator.send_point(vm)
    assert point is not None, node_locator.why_not(vm)
    assert point.interface == expected.interface and point.interface.startswith("k6t-")
    assert (str(point.ip), point.mac) == ("192.168.200.20", expected.mac)
    assert same_namespace(point.netns, lab.netns_path(lab.launcher_netns("vm-server")))


def test_a_namespace_with_the_same_address_interface_and_mac_is_never_taken(lab, node_locator):
    """The decoy sorts before the lab's namespaces and copies podclient's net1 exactly; only OVS tells them apart."""
    decoy, peer = f"sca{secrets.token_hex(3)}-decoy", f"sca{secrets.token_hex(3)}-peer"
    pod = next(a for a in seed_inventory().attachments if a.ref.name == "podclient")
    try:
        for ns in (decoy, peer):
            subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
        subprocess.run(["ip", "-n", peer, "link", "add", "hv0", "type", "veth", "peer", "name", "net1", "netns",
                        decoy], check=True, timeout=10)
        subprocess.run(["ip", "-n", decoy, "link", "set", "net1", "address", lab.send_point("podclient").mac],
                       check=True, timeout=10)
        subprocess.run(["ip", "-n", decoy, "addr", "add", "192.168.200.10/24", "dev", "net1"], check=True, timeout=10)
        point = node_locator.send_point(pod)
        assert point is not None
        assert same_namespace(point.netns, lab.netns_path(lab.netns("podclient")))
        assert not same_namespace(point.netns, lab.netns_path(decoy))
    finally:
        for ns in (decoy, peer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)
