"""Where the lab cluster runs each workload: the node the manifests name, else round robin (pods first)."""

from __future__ import annotations

import pytest

from segcheck.agent.core.model import Ref
from segcheck.agent.lab.cluster import node_names, place
from segcheck.agent.lab.topology import PhysicalHost, PodAttachment, VmAttachment, seed_topology


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


# ----------------------------------------------------------------------------- layer2 zones (no I/O: plain data)

def layer2_seed():
    from pathlib import Path

    from segcheck.agent.lab.sources import manifest_topology

    topology = manifest_topology([str(Path(__file__).resolve().parents[2] / "examples" / "seed-layer2")])
    assert topology is not None
    return topology


def test_the_layer2_seed_is_a_layer2_lab_with_a_tunnel_key_per_port_and_no_physical_side():
    topo = layer2_seed()
    assert topo.network.is_layer2 and topo.network.name == "tenantgreen" and not topo.network.ipam
    assert not topo.hosts and not topo.remotes
    assert sorted(a.tunnel_key for a in topo.attachments) == [1, 2]
    assert place(topo, node_names(2), {}) == {"podclient": "worker-0", "vm-server": "worker-1"}


def test_each_layer2_zone_holds_the_other_nodes_workloads_as_remote_ports_and_localnet_none():
    from segcheck.agent.lab.cluster import LabCluster

    cluster = LabCluster("/nonexistent/segcheck-cluster", "t-", layer2_seed(), 2)  # constructs, starts nothing
    for node, lab in cluster.nodes.items():
        assert [a.name for a in lab.topology.attachments] == [n for n, w in cluster.placement.items() if w == node]
        assert [(r.attachment.name, r.node) for r in lab.topology.remotes] == [
            (n, w) for n, w in cluster.placement.items() if w != node]
        assert lab.node_name == node
    localnet = LabCluster("/nonexistent/segcheck-cluster", "t-", seed_topology(), 2)
    assert all(not lab.topology.remotes for lab in localnet.nodes.values())


def test_a_layer2_topology_needs_distinct_tunnel_keys_and_no_physical_hosts():
    import dataclasses

    topo = layer2_seed()
    with pytest.raises(ValueError, match="tunnel keys"):
        dataclasses.replace(topo, pods=tuple(dataclasses.replace(p, tunnel_key=2) for p in topo.pods)).validate()
    with pytest.raises(ValueError, match="physical"):
        dataclasses.replace(topo, hosts=(PhysicalHost(name="db", address="10.100.0.5/24", mac="52:54:00:64:00:05"),
                                         )).validate()
