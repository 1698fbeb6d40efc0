"""The external_ids keys and owner types OVN-Kubernetes writes (libovsdb/ops/db_object_ids.go,
db_object_types.go, pkg/types/const.go), and how it builds an object's ids (`DbObjectIDs`).

The owner keys carry the `k8s.ovn.org/` prefix; the per-object ones (`direction`, `gress-index`, ...) do not.
"""

from __future__ import annotations

from typing import Mapping

OVNK_PREFIX = "k8s.ovn.org/"
OWNER_CONTROLLER = OVNK_PREFIX + "owner-controller"
OWNER_TYPE = OVNK_PREFIX + "owner-type"
OBJECT_NAME = OVNK_PREFIX + "name"
PRIMARY_ID = OVNK_PREFIX + "id"
NETWORK = OVNK_PREFIX + "network"
NAD = OVNK_PREFIX + "nad"
TOPOLOGY = OVNK_PREFIX + "topology"
LEGACY_NAME = "name"  # port groups before owner-based ids (OpenShift 4.14): the readable `<ns>_<policy>`

DIRECTION = "direction"
GRESS_INDEX = "gress-index"
IP_BLOCK_INDEX = "ip-block-index"
PORT_POLICY_PROTOCOL = "port-policy-protocol"
PORT_POLICY_INDEX = "port-policy-index"  # ACLs of OVN-K before mid-2023: one per port entry
TYPE = "type"
IP_FAMILY = "ip-family"

NETWORK_POLICY = "NetworkPolicy"
NETPOL_NAMESPACE = "NetpolNamespace"
POD_SELECTOR = "PodSelector"
NAMESPACE = "Namespace"
KNOWN_OWNER_TYPES = frozenset({
    NETWORK_POLICY, NETPOL_NAMESPACE, "NetworkPolicyPortIndexOwnerType", "NetpolDefault", "NetpolNode",
    "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "EgressFirewall", "MulticastNS", "MulticastCluster",
})

DEFAULT_DENY_TYPE = "defaultDeny"
ARP_ALLOW_TYPE = "arpAllow"
NO_PROTOCOL = "None"  # port-policy-protocol of a rule without ports
EMPTY_INDEX = -1  # ip-block-index of a rule's selector-peers / all-peers ACL

ALLOW_PRIORITY = 1001
DENY_PRIORITY = 1000
ACL_TIER = 2
ACL_NAME_MAX = 63


def db_ids(controller: str, owner_type: str, objects: Mapping[str, str]) -> dict[str, str]:
    """`DbObjectIDs.GetExternalIDs`: the owner keys, the object's ids (in their type's key order) and the
    primary id `<controller>:<owner type>:<values in key order>`."""
    primary = ":".join([controller, owner_type, *objects.values()])
    return {OWNER_CONTROLLER: controller, OWNER_TYPE: owner_type, **objects, PRIMARY_ID: primary}
