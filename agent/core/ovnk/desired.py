"""The NB objects OVN-Kubernetes' secondary network controller writes for a network's MultiNetworkPolicies,
as plain data, in the shapes of one OVN-K version (gress_policy.go, base_network_controller_policy.go,
pod_selector_address_set.go, libovsdb/util/acl.go):

- one port group per policy holding the LSPs it selects, with the allow ACLs of all its rules (both
  directions, whatever `policyTypes` says: isolation follows policyTypes, allows do not); per rule and
  protocol one `allow-related` ACL at 1001 per ipBlock peer, plus one for the selector peers (or for an
  all-peers rule) with ip-block-index -1;
- per namespace with policies, both default-deny port groups holding the LSPs isolated in that direction,
  each with a `drop` ACL at 1000 and an ARP/ND `allow` ACL at 1001;
- selector peers resolved through shared address sets: a peer selecting whole namespaces uses the
  namespaces' sets (owner type Namespace), any other one a set per selector (owner type PodSelector).

Ingress ACLs are `to-lport` on `outport == @pg`; egress ACLs `from-lport` on `inport == @pg` with
`options:apply-after-lb=true`; every ACL in tier 2. IP families come from the network's subnets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..enforcement import DEFAULT_PROFILE, EnforcedPolicy, EnforcedRule, OvnkProfile, enforced_policies
from ..inventory import Inventory
from ..model import Attachment, Network, Ref
from ..northbound import APPLY_AFTER_LB
from ..policy import Direction, Peer
from ..selectors import EVERYTHING
from . import ids, objects
from .families import network_families
from .matches import (ARP_ALLOW_MATCH, address_set_match, all_ips_match, ip_block_match, l4_matches,
                      port_match)
from .names import network_controller
from .objects import ExternalIds, NamedObject
from .versions import NbShapes

TO_LPORT = "to-lport"
FROM_LPORT = "from-lport"
ALLOW_RELATED = "allow-related"
ALLOW = "allow"
DROP = "drop"


@dataclass(frozen=True)
class AclSpec:
    direction: str
    priority: int
    match: str
    action: str
    name: str
    external_ids: ExternalIds
    options: ExternalIds = ()
    tier: int = ids.ACL_TIER

    @property
    def ids(self) -> dict[str, str]:
        return dict(self.external_ids)


@dataclass(frozen=True)
class PortGroupSpec:
    name: str
    ports: tuple[str, ...]  # logical switch port names
    acls: tuple[AclSpec, ...]
    external_ids: ExternalIds

    @property
    def ids(self) -> dict[str, str]:
        return dict(self.external_ids)


@dataclass(frozen=True)
class AddressSetSpec:
    name: str
    addresses: tuple[str, ...]
    external_ids: ExternalIds

    @property
    def ids(self) -> dict[str, str]:
        return dict(self.external_ids)


@dataclass(frozen=True)
class DesiredState:
    """Everything one network controller owns in NB for MultiNetworkPolicies."""

    controller: str
    port_groups: tuple[PortGroupSpec, ...]
    address_sets: tuple[AddressSetSpec, ...]
    unplaced: tuple[str, ...] = field(default=())  # selected attachments without a logical switch port
    shapes: NbShapes = NbShapes.V4_14

    @property
    def acls(self) -> tuple[AclSpec, ...]:
        return tuple(acl for pg in self.port_groups for acl in pg.acls)


def _acl(direction: Direction, priority: int, match: str, action: str, name: str, acl_ids: dict[str, str]) -> AclSpec:
    if direction is Direction.EGRESS:
        return AclSpec(FROM_LPORT, priority, match, action, name, objects.external_ids(acl_ids),
                       ((APPLY_AFTER_LB, "true"),))
    return AclSpec(TO_LPORT, priority, match, action, name, objects.external_ids(acl_ids))


# ----------------------------------------------------------------------------- selection

def selects(policy: EnforcedPolicy, attachment: Attachment) -> bool:
    return attachment.ref.namespace == policy.ref.namespace and policy.pod_selector.matches(attachment.label_map)


def selector_peer_matches(peer: Peer, policy: Ref, attachment: Attachment, inventory: Inventory) -> bool:
    """A podSelector/namespaceSelector peer (ANDed); no namespaceSelector means the policy's namespace."""
    if not peer.uses_selectors:
        return False
    if peer.namespace_selector is None:
        if attachment.ref.namespace != policy.namespace:
            return False
    elif not peer.namespace_selector.matches(inventory.namespace_labels(attachment.ref.namespace)):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(attachment.label_map)


class _AddressSets:
    """The shared address sets the selector peers of one network's policies use, made once each."""

    def __init__(self, controller: str, inventory: Inventory, attachments: Sequence[Attachment],
                 families: Sequence[int]) -> None:
        self.controller, self.inventory, self.attachments, self.families = controller, inventory, attachments, families
        self.made: dict[str, AddressSetSpec] = {}

    def _add(self, obj: NamedObject, members: Sequence[Attachment], family: int) -> str:
        if obj.name not in self.made:
            addrs = sorted({ip for a in members for ip in a.ips if ip.version == family})
            self.made[obj.name] = AddressSetSpec(obj.name, tuple(str(ip) for ip in addrs), obj.external_ids)
        return obj.name

    def for_peer(self, peer: Peer, policy: Ref) -> dict[int, list[str]]:
        """Address set names per family for one selector peer (`setupGressPolicy`)."""
        pod_sel, ns_sel = peer.pod_selector, peer.namespace_selector
        out: dict[int, list[str]] = {f: [] for f in self.families}
        if (pod_sel is None or pod_sel.is_empty) and (ns_sel is None or not ns_sel.is_empty):
            namespaces = [policy.namespace] if ns_sel is None else sorted(
                n for n in set(self.inventory.namespaces) | {a.ref.namespace for a in self.attachments}
                if ns_sel.matches(self.inventory.namespace_labels(n)))
            for ns in namespaces:
                members = [a for a in self.attachments if a.ref.namespace == ns]
                for f in self.families:
                    out[f].append(self._add(objects.namespace_address_set(self.controller, ns, f), members, f))
            return out
        key = objects.pod_selector_key(pod_sel or EVERYTHING, ns_sel, policy.namespace)
        members = [a for a in self.attachments if selector_peer_matches(peer, policy, a, self.inventory)]
        for f in self.families:
            out[f].append(self._add(objects.pod_selector_address_set(self.controller, key, f), members, f))
        return out


# ----------------------------------------------------------------------------- ACLs

def rule_acls(controller: str, pg: str, rule: EnforcedRule, l3_selectors: str | None,
              families: Sequence[int]) -> list[AclSpec]:
    """The allow ACLs of one rule (`buildLocalPodACLs`). `l3_selectors`: the address-set match of the rule's
    selector peers (None: the rule has none; "": none selected, so OVN-K writes no selector ACL)."""
    lport = port_match(pg, rule.direction)
    name = objects.rule_acl_name(rule.policy, rule.direction, rule.index)
    blocks = [p.ip_block for p in rule.peers if p.ip_block is not None]
    l3_any = all_ips_match(families) if not rule.peers else l3_selectors
    acls: list[AclSpec] = []
    for protocol, l4 in l4_matches(rule.port_ranges, rule.ports_listed):
        tail = f"{l4} && {lport}" if l4 else lport
        for i, block in enumerate(blocks):  # index among the rule's ipBlock peers, as OVN-K counts them
            acls.append(_acl(rule.direction, ids.ALLOW_PRIORITY, f"{ip_block_match(block, rule.direction)} && {tail}",
                             ALLOW_RELATED, name, objects.rule_acl_ids(controller, rule.policy, rule.direction,
                                                                       rule.index, protocol, i)))
        if l3_any:
            acls.append(_acl(rule.direction, ids.ALLOW_PRIORITY, f"{l3_any} && {tail}", ALLOW_RELATED, name,
                             objects.rule_acl_ids(controller, rule.policy, rule.direction, rule.index, protocol,
                                                  ids.EMPTY_INDEX)))
    return acls


def default_deny_port_groups(shapes: NbShapes, network_name: str, namespace: str,
                             isolated: Mapping[Direction, set[str]]) -> list[PortGroupSpec]:
    """Both default-deny port groups of a namespace that has policies (OVN-K makes both, possibly empty)."""
    controller = network_controller(network_name)
    out = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        pg = objects.default_deny_port_group(shapes, network_name, namespace, direction)
        name = objects.default_deny_acl_name(namespace, direction)
        acls = (
            _acl(direction, ids.DENY_PRIORITY, port_match(pg.name, direction), DROP, name,
                 objects.default_deny_acl_ids(controller, namespace, direction, ids.DEFAULT_DENY_TYPE)),
            _acl(direction, ids.ALLOW_PRIORITY, f"{port_match(pg.name, direction)} && {ARP_ALLOW_MATCH}", ALLOW,
                 name, objects.default_deny_acl_ids(controller, namespace, direction, ids.ARP_ALLOW_TYPE)),
        )
        out.append(PortGroupSpec(pg.name, tuple(sorted(isolated.get(direction, ()))), acls, pg.external_ids))
    return out


def desired_state(inventory: Inventory, network: Ref, lsp_names: Mapping[str, str],
                  profile: OvnkProfile = DEFAULT_PROFILE) -> DesiredState:
    """What the network controller of `network` writes for the policies OVN-K enforces there, in the NB
    shapes of `profile`'s OVN-K version.

    `lsp_names` maps attachment keys (`ns/name`) to their logical switch port (a VM's is its virt-launcher
    pod's); selected attachments missing from it are listed in `unplaced`."""
    net: Network | None = inventory.networks.get(network)
    if net is None:
        raise ValueError(f"no NetworkAttachmentDefinition {network}")
    shapes, name = profile.nb_shapes, net.cni_name
    controller = network_controller(name)
    families = network_families(net)
    attachments = inventory.attachments_on(network)
    sets = _AddressSets(controller, inventory, attachments, families)
    port_groups: list[PortGroupSpec] = []
    unplaced: set[str] = set()
    isolated: dict[str, dict[Direction, set[str]]] = {}
    for policy in enforced_policies(inventory, network, profile).policies:
        chosen = [a for a in attachments if selects(policy, a)]
        unplaced.update(a.key for a in chosen if a.key not in lsp_names)
        ports = {lsp_names[a.key] for a in chosen if a.key in lsp_names}
        per_ns = isolated.setdefault(policy.ref.namespace, {Direction.INGRESS: set(), Direction.EGRESS: set()})
        for direction in policy.isolates:
            per_ns[direction].update(ports)
        pg = objects.policy_port_group(shapes, name, policy.ref)
        acls: list[AclSpec] = []
        for rule in policy.rules:
            l3: str | None = None
            selector_peers = [p for p in rule.peers if p.uses_selectors]
            if selector_peers:
                by_family: dict[int, set[str]] = {f: set() for f in families}
                for peer in selector_peers:
                    for f, names in sets.for_peer(peer, policy.ref).items():
                        by_family[f].update(names)
                l3 = address_set_match(by_family.get(4, ()), by_family.get(6, ()), rule.direction)
            acls += rule_acls(controller, pg.name, rule, l3, families)
        port_groups.append(PortGroupSpec(pg.name, tuple(sorted(ports)), tuple(acls), pg.external_ids))
    for namespace in sorted(isolated):
        port_groups += default_deny_port_groups(shapes, name, namespace, isolated[namespace])
    return DesiredState(controller, tuple(port_groups), tuple(sorted(sets.made.values(), key=lambda s: s.name)),
                        tuple(sorted(unplaced)), shapes)


__all__ = ["AclSpec", "AddressSetSpec", "DesiredState", "PortGroupSpec", "default_deny_port_groups", "desired_state",
           "network_families", "rule_acls", "selector_peer_matches", "selects"]
