"""OVN interconnect between a lab cluster's zones, as OVN-Kubernetes sets it up in 4.14: every node is an
interconnect chassis (`ovn-is-interconn=true`) with a geneve encap IP, and each zone's SB knows the other nodes
as remote chassis (`is-remote`, with the node's name as its hostname, which a pod port's `requested-chassis`
names), so layer2 traffic to a `type=remote` port is tunnelled to its node.

Verified on the userspace datapath: the encap IP sits on br-ex's internal port (in the node's namespace, on the
physical segment; never in the root namespace), ovs-vswitchd routes and resolves the tunnel's next hop itself.
A remote port's SB binding names its chassis (what ovn-ic writes: OVN 23.03's northd does not derive it from
`requested-chassis`), see `bind_remote_port`.
"""

from __future__ import annotations

import ipaddress

from . import netns
from .lab import Lab

TRANSIT_CIDR = ipaddress.ip_network("100.64.0.0/24")  # the nodes' encap addresses, on the physical segment
ENCAP_TYPE = "geneve"


def chassis_name(lab: Lab) -> str:
    """The chassis of a node lab: its OVS system-id."""
    return lab.run_vsctl("get", "Open_vSwitch", ".", "external_ids:system-id").strip().strip('"')


def encap_ip(index: int) -> str:
    return str(TRANSIT_CIDR.network_address + index + 1)


def connect_zones(nodes: list[Lab]) -> None:
    """Make every node an interconnect chassis with an encap IP on br-ex, and register each node in every
    other zone's SB as a remote chassis."""
    for i, lab in enumerate(nodes):
        bridge = lab.topology.network.bridge
        netns.add_address(lab.ovs_netns, bridge, f"{encap_ip(i)}/{TRANSIT_CIDR.prefixlen}")
        netns.set_up(lab.ovs_netns, bridge)
        lab.run_vsctl("set", "Open_vSwitch", ".", f"external_ids:ovn-encap-ip={encap_ip(i)}",
                      "external_ids:ovn-is-interconn=true")
    # Userspace tunnels resolve their next hop in ovs-vswitchd's own neighbour cache and drop what they send until
    # it answers: the first packets between two zones would be lost (as false "denied" probes, or unconfirmed
    # ones). Each node's cache is seeded with the other nodes' encap MACs (`tnl/neigh/set`).
    macs = [lab.run_vsctl("get", "Interface", lab.topology.network.bridge, "mac_in_use").strip().strip('"')
            for lab in nodes]
    for i, lab in enumerate(nodes):
        for j, mac in enumerate(macs):
            if i != j:
                lab.run_appctl("ovs-vswitchd", "tnl/neigh/set", lab.topology.network.bridge, encap_ip(j), mac)
    names = [chassis_name(lab) for lab in nodes]
    for i, lab in enumerate(nodes):
        for j, name in enumerate(names):
            if i != j:
                lab.run_sbctl("--may-exist", "chassis-add", name, ENCAP_TYPE, encap_ip(j), "--",
                              "set", "Chassis", name, "other_config:is-remote=true", f"hostname={nodes[j].node_name}")


def bind_remote_ports(nodes: list[Lab]) -> int:
    """Bind every `remote` port of every zone to the chassis of the node its workload runs on; how many."""
    by_node = {lab.node_name: lab for lab in nodes}
    bound = 0
    for lab in nodes:
        for remote in lab.topology.remotes:
            bind_remote_port(lab, lab.port_name(remote.attachment), by_node[remote.node])
            bound += 1
    return bound


def bind_remote_port(lab: Lab, port: str, node: Lab) -> None:
    """Bind a `type=remote` port of `lab`'s zone to the chassis of the node it runs on."""
    uuid = lab.run_sbctl("--bare", "--columns=_uuid", "find", "Chassis", f"name={chassis_name(node)}").strip()
    lab.run_sbctl("set", "Port_Binding", port, f"chassis={uuid}")
