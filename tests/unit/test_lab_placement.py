"""Where the lab cluster runs each workload: the node the manifests name, else round robin (pods first)."""

from __future__ import annotations

import pytest

from segcheck.agent.core.model import Ref
from segcheck.agent.lab.cluster import node_names, place
from segcheck.agent.lab.topology import PodAttachment, VmAttachment, seed_topology


def test_the_seed_puts_podclient_on_worker_0_and_vm_server_on_worker_1():
    assert place(seed_topology(), node_names(2), {}) == {"podclient": "worker-0", "vm-server": "worker-1"}


def test_one_node_holds_everything():
    assert set(place(seed_topology(), node_names(1), {}).values()) == {"worker-0"}


def test_the_manifests_node_wins_and_the_others_are_dealt_round_robin():
    topo = seed_topology()
    pods = (*topo.pods, PodAttachment(name="pod-b", address="192.168.200.11/24", mac="0a:58:c0:a8:c8:0b"))
    vms = (*topo.vms, VmAttachment(name="vm-b", launcher_pod="virt-launcher-vm-b-abcde", address="192.168.200.21/24",
                                   mac="02:5e:c0:a8:c8:15"))
    world = type(topo)(topo.network, pods, vms, topo.hosts)
    placed = place(world, node_names(3), {Ref("default", "vm-server"): "worker-0"})
    # Unplaced, by kind then namespace/name: pod-b, podclient, vm-b.
    assert placed == {"vm-server": "worker-0", "pod-b": "worker-0", "podclient": "worker-1", "vm-b": "worker-2"}


def test_a_node_the_lab_does_not_have_is_refused():
    with pytest.raises(ValueError, match="worker-7"):
        place(seed_topology(), node_names(2), {Ref("default", "podclient"): "worker-7"})
