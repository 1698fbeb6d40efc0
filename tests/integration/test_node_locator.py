"""Finding workloads' namespaces the way the DaemonSet does on a node (hostPID, /proc), on the lab's namespaces:
a pod by its interface and address, a VM by its virt-launcher process."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

import pytest

from segcheck.agent.adapters.node_locator import NodeLocator
from segcheck.agent.core.model import AttachmentKind

from .planes import seed_inventory

pytestmark = pytest.mark.lab


def same_namespace(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def test_pod_is_found_by_interface_and_address(lab):
    pod = next(a for a in seed_inventory().attachments if a.ref.name == "podclient")
    point = NodeLocator(cache_seconds=0).send_point(pod)
    assert point is not None, "podclient's namespace not found through /proc"
    assert point.interface == "net1" and str(point.ip) == "192.168.200.10"
    assert same_namespace(point.netns, lab.netns_path(lab.netns("podclient")))
    assert point.mac == lab.send_point("podclient").mac


def test_vm_is_found_through_its_virt_launcher_process(lab):
    vm = next(a for a in seed_inventory().attachments if a.kind is AttachmentKind.VM)
    expected = lab.send_point("vm-server")
    vm = dataclasses.replace(vm, mac=expected.mac)  # the MAC a VMI's status reports
    assert NodeLocator(cache_seconds=0).send_point(vm) is None, "no virt-launcher runs yet"
    # A process named like KubeVirt's launcher, with its --name/--namespace flags, inside the launcher namespace.
    launcher = subprocess.Popen(
        ["ip", "netns", "exec", lab.launcher_netns("vm-server"), "bash", "-c",
         'exec -a /usr/bin/virt-launcher "$0" -c "import sys; sys.stdin.read()" --name vm-server --namespace default',
         sys.executable], stdin=subprocess.PIPE)
    try:
        point = None
        for _ in range(50):  # the exec replaces bash within milliseconds; bounded retries, no sleep needed
            point = NodeLocator(cache_seconds=0).send_point(vm)
            if point is not None:
                break
        assert point is not None, "virt-launcher's namespace not found"
        assert point.interface == expected.interface and point.interface.startswith("k6t-")
        assert (str(point.ip), point.mac) == ("192.168.200.20", expected.mac)
        assert same_namespace(point.netns, lab.netns_path(lab.launcher_netns("vm-server")))
    finally:
        os.kill(launcher.pid, signal.SIGTERM)
        launcher.wait(timeout=10)
