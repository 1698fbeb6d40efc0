"""The logical switch and ports OVN-Kubernetes writes for a secondary network and its pods
(secondary_localnet_network_controller.go, base_network_controller_secondary.go, multipolicy_test.go)."""

from __future__ import annotations

from typing import Sequence

from ..model import AttachmentKind, Ref
from . import ids
from .objects import ExternalIds, external_ids

LOCALNET_ADDRESSES = "unknown"  # the localnet port passes every address
NETWORK_NAME_OPTION = "network_name"  # the localnet port's physical network, matched by the bridge mappings


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
