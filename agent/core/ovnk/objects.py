"""The name and external_ids of each NB object OVN-Kubernetes writes for MultiNetworkPolicies, per version.

ACL and address-set ids are the same in every version segcheck knows; port groups changed at the cut-over
described in `versions`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Ref
from ..policy import Direction
from ..selectors import LabelSelector, Requirement
from . import ids
from .names import hash_for_ovn, network_controller, network_scoped, policy_key
from .versions import NbShapes

ExternalIds = tuple[tuple[str, str], ...]

_DENY_SUFFIX = {Direction.INGRESS: "ingressDefaultDeny", Direction.EGRESS: "egressDefaultDeny"}
IP_FAMILY_VALUE = {4: "v4", 6: "v6"}


def external_ids(items: dict[str, str]) -> ExternalIds:
    return tuple(sorted(items.items()))


@dataclass(frozen=True)
class NamedObject:
    name: str
    external_ids: ExternalIds


def gress(direction: Direction) -> str:
    """`Ingress` / `Egress`, as OVN-K writes a policy type into ids and ACL names."""
    return direction.policy_type


def policy_port_group(shapes: NbShapes, network_name: str, policy: Ref) -> NamedObject:
    """The port group of one policy (`getNetworkPolicyPGName`)."""
    if shapes is NbShapes.V4_14:
        readable = f"{policy.namespace}_{policy.name}"
        return NamedObject(hash_for_ovn(network_scoped(network_name, readable)),
                           external_ids({ids.LEGACY_NAME: readable, ids.NETWORK: network_name}))
    made = ids.db_ids(network_controller(network_name), ids.NETWORK_POLICY, {ids.OBJECT_NAME: policy_key(policy)})
    return NamedObject(hash_for_ovn(made[ids.PRIMARY_ID]), external_ids(made))


def default_deny_port_group(shapes: NbShapes, network_name: str, namespace: str, direction: Direction) -> NamedObject:
    """One of a namespace's two default-deny port groups (`defaultDenyPortGroupName`)."""
    if shapes is NbShapes.V4_14:
        name = f"{hash_for_ovn(network_scoped(network_name, namespace))}_{_DENY_SUFFIX[direction]}"
        return NamedObject(name, external_ids({ids.LEGACY_NAME: name, ids.NETWORK: network_name}))
    made = ids.db_ids(network_controller(network_name), ids.NETPOL_NAMESPACE,
                      {ids.OBJECT_NAME: namespace, ids.DIRECTION: gress(direction)})
    return NamedObject(hash_for_ovn(made[ids.PRIMARY_ID]), external_ids(made))


def rule_acl_ids(controller: str, policy: Ref, direction: Direction, index: int, protocol: str,
                 ip_block_index: int) -> dict[str, str]:
    """`getNetpolACLDbIDs`: one ACL per rule, protocol and ipBlock peer (-1: the selector/all-peers ACL)."""
    return ids.db_ids(controller, ids.NETWORK_POLICY, {
        ids.OBJECT_NAME: policy_key(policy), ids.DIRECTION: gress(direction), ids.GRESS_INDEX: str(index),
        ids.PORT_POLICY_PROTOCOL: protocol, ids.IP_BLOCK_INDEX: str(ip_block_index)})


def default_deny_acl_ids(controller: str, namespace: str, direction: Direction, kind: str) -> dict[str, str]:
    """`getDefaultDenyPolicyACLIDs`: the drop and the ARP/ND allow ACL of a default-deny port group."""
    return ids.db_ids(controller, ids.NETPOL_NAMESPACE,
                      {ids.OBJECT_NAME: namespace, ids.DIRECTION: gress(direction), ids.TYPE: kind})


def rule_acl_name(policy: Ref, direction: Direction, index: int) -> str:
    return f"NP:{policy_key(policy)}:{gress(direction)}:{index}"[:ids.ACL_NAME_MAX]


def default_deny_acl_name(namespace: str, direction: Direction) -> str:
    return f"NP:{namespace}:{gress(direction)}"[:ids.ACL_NAME_MAX]


def _address_set(controller: str, owner_type: str, name: str, family: int) -> NamedObject:
    made = ids.db_ids(controller, owner_type, {ids.OBJECT_NAME: name, ids.IP_FAMILY: IP_FAMILY_VALUE[family]})
    return NamedObject(hash_for_ovn(made[ids.PRIMARY_ID]), external_ids(made))


def namespace_address_set(controller: str, namespace: str, family: int) -> NamedObject:
    """The address set of every IP of a namespace's pods on the network (`getNamespaceAddrSetDbIDs`)."""
    return _address_set(controller, ids.NAMESPACE, namespace, family)


def pod_selector_address_set(controller: str, key: str, family: int) -> NamedObject:
    """An address set shared by every policy peer with the same selectors (`getPodSelectorAddrSetDbIDs`)."""
    return _address_set(controller, ids.POD_SELECTOR, key, family)


def _requirement_string(req: Requirement) -> str:
    values = " ".join(sorted(req.values))
    return f"LSR{{Key:{req.key},Operator:{req.operator.value},Values:[{values}],}}"


def selector_string(selector: LabelSelector | None) -> str:
    """`shortLabelSelectorString`: `LS{ML:{app: db,},}`; equivalent selectors give equal strings."""
    if selector is None:
        return "nil"
    text = "LS{"
    if selector.match_labels:
        text += "ML:{" + "".join(f"{k}: {v}," for k, v in sorted(selector.match_labels)) + "},"
    if selector.match_expressions:
        text += "ME:{" + ",".join(sorted(_requirement_string(r) for r in selector.match_expressions)) + "},"
    return text + "}"


def pod_selector_key(pod_selector: LabelSelector, namespace_selector: LabelSelector | None, namespace: str) -> str:
    """`getPodSelectorKey`: the policy's namespace when no namespaceSelector, else the selector string."""
    scope = namespace if namespace_selector is None else selector_string(namespace_selector)
    return f"{scope}_{selector_string(pod_selector)}"


__all__ = ["ExternalIds", "NamedObject", "default_deny_acl_ids", "default_deny_acl_name",
           "default_deny_port_group", "external_ids", "gress", "namespace_address_set", "pod_selector_address_set",
           "pod_selector_key", "policy_port_group", "rule_acl_ids", "rule_acl_name", "selector_string"]
