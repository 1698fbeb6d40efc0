"""How OVN-Kubernetes names the objects it programs for a secondary (localnet) network.

Names are only used to find things and to build the lab; ownership is read from `external_ids`,
never parsed out of a name (port group names are hashes in current versions).
"""

from __future__ import annotations

import hashlib

from .model import Ref


def network_prefix(name: str) -> str:
    """`tenantblue` -> `tenantblue_`, `default/tenant-blue` -> `default.tenant.blue_`."""
    return name.replace("-", ".").replace("/", ".") + "_"


def localnet_switch(network_name: str) -> str:
    return network_prefix(network_name) + "ovn_localnet_switch"


def network_switch(network_name: str, topology: str) -> str:
    """The logical switch of a secondary network: one per network for localnet and layer2 topologies."""
    return network_prefix(network_name) + ("ovn_layer2_switch" if topology == "layer2" else "ovn_localnet_switch")


def localnet_port(network_name: str) -> str:
    return network_prefix(network_name) + "ovn_localnet_port"


def pod_port(nad: Ref, pod: Ref) -> str:
    """Logical switch port of a pod (or virt-launcher pod) on a secondary network."""
    return network_prefix(str(nad)) + f"{pod.namespace}_{pod.name}"


def patch_port_to_br_int(localnet_port_name: str) -> str:
    return f"patch-{localnet_port_name}-to-br-int"


def patch_port_from_br_int(localnet_port_name: str) -> str:
    return f"patch-br-int-to-{localnet_port_name}"


def network_controller(network_name: str) -> str:
    return f"{network_name}-network-controller"


def port_group(network_name: str, policy: Ref) -> str:
    """A port group name in the style of current OVN-K: "a" + a decimal hash (never parsed back)."""
    digest = hashlib.sha256(f"{network_name}_{policy.namespace}_{policy.name}".encode()).digest()
    return "a" + str(int.from_bytes(digest[:8], "big"))


# external_ids keys written by OVN-K on ACLs and port groups of network policies. The owner keys carry the
# k8s.ovn.org/ prefix; the per-object ones do not (db_object_types.go). Older versions used port-policy-index.
OWNER_TYPE = "k8s.ovn.org/owner-type"
OWNER_CONTROLLER = "k8s.ovn.org/owner-controller"
OWNER_NAME = "k8s.ovn.org/name"
DIRECTION = "direction"
GRESS_INDEX = "gress-index"
IP_BLOCK_INDEX = "ip-block-index"
PORT_POLICY_PROTOCOL = "port-policy-protocol"
PORT_POLICY_INDEX = "port-policy-index"
ACL_TYPE_NETWORK_POLICY = "NetworkPolicy"
NAD_KEY = "k8s.ovn.org/nad"
NETWORK_KEY = "k8s.ovn.org/network"

ALLOW_PRIORITY = 1001
DENY_PRIORITY = 1000
ACL_TIER = 2
