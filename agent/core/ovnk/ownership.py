"""Who owns an NB row, read back from its external_ids in the shapes of any OVN-K version segcheck knows.

ACLs carry owner ids in every version; port groups only from the cut-over in `versions` on. Before it (4.14)
a policy's port group carries `{name: "<ns>_<policy>", k8s.ovn.org/network: <net>}`: the readable name is
trusted only when the port group's own name is its hash, so a look-alike is never taken for a policy's.
"""

from __future__ import annotations

from typing import Mapping

from ..model import Ref
from . import ids
from .names import network_controller, parse_policy_key
from .objects import policy_port_group
from .versions import NbShapes


def owned_by_network(external_ids: Mapping[str, str], network_name: str) -> bool:
    """Written by `network_name`'s controller: its owner-controller, or (4.14 port groups) its network key."""
    if external_ids.get(ids.OWNER_CONTROLLER) == network_controller(network_name):
        return True
    return ids.OWNER_CONTROLLER not in external_ids and external_ids.get(ids.NETWORK) == network_name \
        and ids.LEGACY_NAME in external_ids


def _owned_policy(external_ids: Mapping[str, str], network_name: str) -> Ref | None:
    if external_ids.get(ids.OWNER_CONTROLLER) != network_controller(network_name) \
            or external_ids.get(ids.OWNER_TYPE) != ids.NETWORK_POLICY:
        return None
    return parse_policy_key(external_ids.get(ids.OBJECT_NAME, ""))


def port_group_policy(name: str, external_ids: Mapping[str, str], network_name: str) -> Ref | None:
    """The policy a port group implements on `network_name`, if its ids say so (either version)."""
    owned = _owned_policy(external_ids, network_name)
    if owned is not None or not owned_by_network(external_ids, network_name):
        return owned
    namespace, sep, policy = external_ids.get(ids.LEGACY_NAME, "").partition("_")  # neither holds a "_"
    if not sep or not namespace or not policy:
        return None
    ref = Ref(namespace, policy)
    return ref if policy_port_group(NbShapes.V4_14, network_name, ref).name == name else None


def acl_policy(external_ids: Mapping[str, str], network_name: str) -> Ref | None:
    """The policy whose rule an ACL implements on `network_name` (same ids in every version)."""
    return _owned_policy(external_ids, network_name)


def port_group_shapes(external_ids: Mapping[str, str]) -> NbShapes:
    """Which version's shapes a port group of OVN-K is in."""
    return NbShapes.CURRENT if ids.OWNER_TYPE in external_ids else NbShapes.V4_14
