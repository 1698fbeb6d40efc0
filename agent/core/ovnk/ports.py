"""The logical switch and ports OVN-Kubernetes writes for a secondary network and its pods
(secondary_localnet_network_controller.go, base_network_controller_secondary.go, multipolicy_test.go), the
interconnect additions of a layer2 network (zone_interconnect/zone_ic_handler.go: every zone's switch and every
pod's port carry a cluster-wide tunnel key; a pod of another zone is a `remote` port), and what the CNI side
writes on the pod's OVS interface (cni/helper_linux.go).

The same in OpenShift 4.14 (upstream 2023-08) and current upstream (2024-12).
"""

from __future__ import annotations

import ipaddress
from typing import Sequence

from ..model import AttachmentKind, Ref
from . import ids, names
from .objects import ExternalIds, external_ids

LOCALNET_ADDRESSES = "unknown"  # the localnet port passes every address
NETWORK_NAME_OPTION = "network_name"  # the localnet port's physical network, matched by the bridge mappings

# Pod port options (base_network_controller_pods.go): the node it must bind on, and the pod's UID, which
# ovn-controller requires on the OVS interface too (so a stale interface of an old pod never binds).
REQUESTED_CHASSIS = "requested-chassis"
IFACE_ID_VER = "iface-id-ver"
# Interconnect: the tunnel keys that make one layer2 switch of every zone one datapath across nodes.
REQUESTED_TNL_KEY = "requested-tnl-key"
BASE_TRANSIT_SWITCH_TUNNEL_KEY = 16711683  # + the network's id (allocated by the cluster manager, from 1)
# OVS interface external_ids the CNI sets when it plugs a pod into br-int.
IFACE_ID = "iface-id"
ATTACHED_MAC = "attached_mac"
IP_ADDRESSES = "ip_addresses"
TRANSIENT_PORT = ("transient", "true")  # the port's other_config: not kept across an OVS restart


def switch_ids(network_name: str, topology: str) -> ExternalIds:
    return external_ids({ids.NETWORK: network_name, ids.TOPOLOGY: topology})


def pod_port_ids(nad: Ref, network_name: str, topology: str, namespace: str) -> ExternalIds:
    return external_ids({ids.NAD: str(nad), ids.NETWORK: network_name, ids.TOPOLOGY: topology,
                         "namespace": namespace, "pod": "true"})


def pod_port_addresses(kind: AttachmentKind, mac: str, ips: Sequence[str], ipam: bool) -> str:
    """A pod port's `addresses` (and port security): `MAC IP...` when OVN-K knows the IPs (the network has
    IPAM, or the pod's network selection lists static `ips`). A VM's guest sets its own address, so on an
    IPAM-less network OVN-K writes the launcher pod's port with the VM's MAC only."""
    if kind is AttachmentKind.VM and not ipam:
        return mac
    return " ".join([mac, *ips])


def switch_other_config(switch_name: str, topology: str, subnets: Sequence[str], network_id: int) -> ExternalIds:
    """A layer2 switch's other_config (`initializeLogicalSwitch` + `AddTransitSwitchConfig`): its subnet (the
    last one of the list wins, IPv6 as `ipv6_prefix`) and, as every zone writes it, the transit settings with
    the network's tunnel key. A localnet switch has none."""
    if topology != names.LAYER2:
        return ()
    config: dict[str, str] = {}
    for text in subnets:
        net = ipaddress.ip_network(text, strict=False)
        config = {"ipv6_prefix": str(net.network_address)} if net.version == 6 else {"subnet": str(net)}
    config.update({"interconn-ts": switch_name, REQUESTED_TNL_KEY: str(switch_tunnel_key(network_id)),
                   "mcast_snoop": "true", "mcast_querier": "false", "mcast_flood_unregistered": "true"})
    return external_ids(config)


def switch_tunnel_key(network_id: int) -> int:
    return BASE_TRANSIT_SWITCH_TUNNEL_KEY + network_id


def pod_port_options(node: str, pod_uid: str, topology: str, tunnel_key: int) -> ExternalIds:
    """A pod port's options: bound to its node's chassis, with the pod's UID; on layer2 the pod's tunnel key
    (the same in every zone, where the port is local or `remote`)."""
    options = {REQUESTED_CHASSIS: node, IFACE_ID_VER: pod_uid}
    if topology == names.LAYER2:
        if tunnel_key <= 0:
            raise ValueError(f"invalid tunnel key {tunnel_key} for a layer2 port")
        options[REQUESTED_TNL_KEY] = str(tunnel_key)
    return external_ids(options)


def remote_port_type(topology: str) -> str | None:
    """The port type of a pod of another zone: layer2 has one (`remote`); localnet has no port at all."""
    return names.REMOTE_PORT_TYPE if topology == names.LAYER2 else None


def cni_interface_ids(lsp: str, mac: str, pod_uid: str, addresses: Sequence[str], nad: Ref,
                      network_name: str) -> ExternalIds:
    """The OVS interface's external_ids as the CNI plugs a pod (`ConfigureOVS`): the logical port it binds, the
    pod's UID and MAC, the addresses OVN-K assigned (none on an IPAM-less network without static IPs), and the
    secondary network and NAD. (The sandbox ID it also writes has no stand-in here.)"""
    ids_ = {IFACE_ID: lsp, IFACE_ID_VER: pod_uid, ATTACHED_MAC: mac, ids.NETWORK: network_name, ids.NAD: str(nad)}
    if addresses:
        ids_[IP_ADDRESSES] = ",".join(addresses)
    return external_ids(ids_)
