"""The NB objects OVN-Kubernetes' secondary network controller writes for MultiNetworkPolicies, as plain data.

Pure functions (no I/O): `desired_state` turns the enforced policies of one network into port groups, ACLs
and address sets shaped like OVN-K's (gress_policy.go, base_network_controller_policy.go, libovsdbutil/acl.go):

- one port group per policy holding the LSPs it selects; per rule, per ipBlock peer (and once for the
  selector peers or for an all-peers rule, ip-block-index -1), per protocol, one `allow-related` ACL at 1001;
- per namespace, `<hash>_ingressDefaultDeny` / `<hash>_egressDefaultDeny` port groups holding the LSPs
  isolated in that direction, each with a `drop` ACL at 1000 and an ARP/ND `allow` ACL at 1001.

Ingress ACLs are `to-lport` on `outport == @pg`; egress ACLs `from-lport` on `inport == @pg` with
`options:apply-after-lb=true`. Match clauses are ordered `<l3> && <l4> && <port match>` as OVN-K writes them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from segcheck.agent.core import ovnk_names
from segcheck.agent.core.enforcement import DEFAULT_PROFILE, EnforcedPolicy, EnforcedRule, OvnkProfile, \
    enforced_policies
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Attachment, Network, PortRange, Protocol, Ref
from segcheck.agent.core.policy import Direction, IPBlock, Peer

# external_ids keys. OVN-K prefixes only owner/name/id with "k8s.ovn.org/"; the per-object ids are bare
# (libovsdb/ops/db_object_types.go: PolicyDirectionKey = "direction", ...). NB: core/ovnk_names spells
# DIRECTION/GRESS_INDEX/IP_BLOCK_INDEX/PORT_POLICY_* with the prefix, which OVN-K does not write.
OWNER_TYPE = ovnk_names.OWNER_TYPE
OWNER_CONTROLLER = ovnk_names.OWNER_CONTROLLER
OWNER_NAME = ovnk_names.OWNER_NAME
PRIMARY_ID = "k8s.ovn.org/id"
NETWORK = ovnk_names.NETWORK_KEY
DIRECTION = "direction"
GRESS_INDEX = "gress-index"
IP_BLOCK_INDEX = "ip-block-index"
PORT_POLICY_PROTOCOL = "port-policy-protocol"
TYPE = "type"
IP_FAMILY = "ip-family"

OWNER_NETWORK_POLICY = "NetworkPolicy"
OWNER_NETPOL_NAMESPACE = "NetpolNamespace"
DEFAULT_DENY_TYPE = "defaultDeny"
ARP_ALLOW_TYPE = "arpAllow"
ARP_ALLOW_MATCH = "(arp || nd)"
NO_PROTOCOL = "None"  # port-policy-protocol of a rule without ports
EMPTY_INDEX = -1  # ip-block-index of the selector-peers / all-peers ACL

TO_LPORT = "to-lport"
FROM_LPORT = "from-lport"
ALLOW_RELATED = "allow-related"
ALLOW = "allow"
DROP = "drop"
ACL_NAME_MAX = 63

_GRESS = {Direction.INGRESS: "Ingress", Direction.EGRESS: "Egress"}
_DENY_SUFFIX = {Direction.INGRESS: "ingressDefaultDeny", Direction.EGRESS: "egressDefaultDeny"}

ExternalIds = tuple[tuple[str, str], ...]


def _ids(items: Mapping[str, str]) -> ExternalIds:
    return tuple(sorted(items.items()))


@dataclass(frozen=True)
class AclSpec:
    direction: str
    priority: int
    match: str
    action: str
    name: str
    external_ids: ExternalIds
    options: ExternalIds = ()
    tier: int = ovnk_names.ACL_TIER

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

    @property
    def acls(self) -> tuple[AclSpec, ...]:
        return tuple(acl for pg in self.port_groups for acl in pg.acls)


# ----------------------------------------------------------------------------- names and hashes

def hash_for_ovn(text: str) -> str:
    """OVN-K's `util.HashForOVN`: "a" + decimal FNV-1a 64 of the text (names must start with a letter)."""
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"a{h}"


def default_deny_port_group(network_name: str, namespace: str, direction: Direction) -> str:
    """`hashedPortGroup(networkScopedName(namespace)) + "_" + <gress>DefaultDeny`."""
    return f"{hash_for_ovn(ovnk_names.network_prefix(network_name) + namespace)}_{_DENY_SUFFIX[direction]}"


def rule_address_set(controller: str, rule: EnforcedRule, family: int) -> str:
    return hash_for_ovn(f"{controller}:{OWNER_NETWORK_POLICY}:{rule.policy.namespace}:{rule.policy.name}:"
                        f"{_GRESS[rule.direction]}:{rule.index}:v{family}")


def _policy_key(policy: Ref) -> str:
    return f"{policy.namespace}:{policy.name}"


# ----------------------------------------------------------------------------- match clauses

def _family(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return "ip6" if net.version == 6 else "ip4"


def _l3_side(direction: Direction) -> str:
    return "src" if direction is Direction.INGRESS else "dst"


def port_match(pg: str, direction: Direction) -> str:
    return f"outport == @{pg}" if direction is Direction.INGRESS else f"inport == @{pg}"


def ip_block_match(block: IPBlock, direction: Direction) -> str:
    """`ip4.dst == 10.0.0.0/24`, with excepts `... && ip4.dst != {10.0.0.16/28, 10.0.0.32/28}`."""
    field_ = f"{_family(block.cidr)}.{_l3_side(direction)}"
    match = f"{field_} == {block.cidr}"
    if block.excepts:
        match += f" && {field_} != {{{', '.join(str(e) for e in block.excepts)}}}"
    return match


def address_set_match(names_by_family: Mapping[int, str], direction: Direction) -> str:
    """`ip4.src == {$a1}`; dual stack: `(ip4.src == {$a1} || ip6.src == {$a2})`."""
    side = _l3_side(direction)
    parts = [f"ip{fam}.{side} == {{${name}}}" for fam, name in sorted(names_by_family.items())]
    return parts[0] if len(parts) == 1 else f"({' || '.join(parts)})"


def all_ips_match(families: Sequence[int]) -> str:
    """OVN-K's `allIPsMatch`: the cluster's IP families, not the network's."""
    fams = sorted(set(families))
    return "(ip4 || ip6)" if fams == [4, 6] else f"ip{fams[0]}"


def l4_matches(ranges: Sequence[PortRange]) -> list[tuple[str, str | None]]:
    """(port-policy-protocol, L4 clause) per protocol, in order of appearance. Every port of every protocol
    (a rule without `ports`) is one entry ("None", None); an empty list allows nothing."""
    if not ranges:
        return []
    full = {r.protocol for r in ranges if r.is_all}
    if full == set(Protocol):
        return [(NO_PROTOCOL, None)]
    out: list[tuple[str, str | None]] = []
    for proto in dict.fromkeys(r.protocol for r in ranges):
        p = proto.value.lower()
        if proto in full:
            out.append((p, p))
            continue
        singles = list(dict.fromkeys(str(r.first) for r in ranges if r.protocol is proto and r.first == r.last))
        spans = list(dict.fromkeys(f"{r.first}<={p}.dst<={r.last}" for r in ranges
                                   if r.protocol is proto and r.first != r.last))
        clauses = ([f"{p}.dst=={singles[0]}" if len(singles) == 1 else f"{p}.dst=={{{','.join(singles)}}}"]
                   if singles else []) + spans
        out.append((p, f"{p} && {clauses[0]}" if len(clauses) == 1 else f"{p} && ({' || '.join(clauses)})"))
    return out


# ----------------------------------------------------------------------------- ACLs

def _acl(direction: Direction, priority: int, match: str, action: str, name: str, ids: Mapping[str, str]) -> AclSpec:
    options: ExternalIds = (("apply-after-lb", "true"),) if direction is Direction.EGRESS else ()
    return AclSpec(FROM_LPORT if direction is Direction.EGRESS else TO_LPORT, priority, match, action,
                   name[:ACL_NAME_MAX], _ids(ids), options)


def _rule_acl_ids(controller: str, rule: EnforcedRule, protocol: str, ip_block_index: int) -> dict[str, str]:
    key, gress = _policy_key(rule.policy), _GRESS[rule.direction]
    return {
        OWNER_CONTROLLER: controller, OWNER_TYPE: OWNER_NETWORK_POLICY, OWNER_NAME: key,
        DIRECTION: gress, GRESS_INDEX: str(rule.index), PORT_POLICY_PROTOCOL: protocol,
        IP_BLOCK_INDEX: str(ip_block_index),
        PRIMARY_ID: f"{controller}:{OWNER_NETWORK_POLICY}:{key}:{gress}:{rule.index}:{protocol}:{ip_block_index}",
    }


def rule_acls(controller: str, pg: str, rule: EnforcedRule, selector_sets: Mapping[int, str] | None = None,
              families: Sequence[int] = (4,)) -> list[AclSpec]:
    """The allow ACLs of one rule. `selector_sets`: address set name per IP family holding the rule's
    selector peers (None when the rule has no selector peer)."""
    lport = port_match(pg, rule.direction)
    name = f"NP:{_policy_key(rule.policy)}:{_GRESS[rule.direction]}:{rule.index}"
    blocks = [p.ip_block for p in rule.peers if p.ip_block is not None]
    l3_any: str | None = None
    if not rule.peers:
        l3_any = all_ips_match(families)
    elif selector_sets:
        l3_any = address_set_match(selector_sets, rule.direction)
    acls: list[AclSpec] = []
    for protocol, l4 in l4_matches(rule.port_ranges):
        tail = f"{l4} && {lport}" if l4 else lport
        for i, block in enumerate(blocks):  # index among the rule's ipBlock peers, as OVN-K counts them
            acls.append(_acl(rule.direction, ovnk_names.ALLOW_PRIORITY, f"{ip_block_match(block, rule.direction)} && {tail}",
                             ALLOW_RELATED, name, _rule_acl_ids(controller, rule, protocol, i)))
        if l3_any is not None:
            acls.append(_acl(rule.direction, ovnk_names.ALLOW_PRIORITY, f"{l3_any} && {tail}", ALLOW_RELATED, name,
                             _rule_acl_ids(controller, rule, protocol, EMPTY_INDEX)))
    return acls


def policy_port_group(network_name: str, policy: EnforcedPolicy, ports: Iterable[str],
                      selector_sets: Mapping[tuple[Direction, int], Mapping[int, str]] | None = None,
                      families: Sequence[int] = (4,)) -> PortGroupSpec:
    """The port group of one policy with the allow ACLs of all its rules (both directions, whatever
    `policyTypes` says: isolation follows policyTypes, allows do not)."""
    controller = ovnk_names.network_controller(network_name)
    pg = ovnk_names.port_group(network_name, policy.ref)
    acls: list[AclSpec] = []
    for rule in policy.rules:
        sets = (selector_sets or {}).get((rule.direction, rule.index))
        acls += rule_acls(controller, pg, rule, sets, families)
    key = _policy_key(policy.ref)
    ids = {OWNER_CONTROLLER: controller, OWNER_TYPE: OWNER_NETWORK_POLICY, OWNER_NAME: key, NETWORK: network_name,
           PRIMARY_ID: f"{controller}:{OWNER_NETWORK_POLICY}:{key}"}
    return PortGroupSpec(pg, tuple(sorted(set(ports))), tuple(acls), _ids(ids))


def default_deny_port_groups(network_name: str, namespace: str, isolated: Mapping[Direction, Iterable[str]]
                             ) -> list[PortGroupSpec]:
    """Both default-deny port groups of a namespace that has policies (OVN-K makes both, possibly empty)."""
    controller = ovnk_names.network_controller(network_name)
    out = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        pg = default_deny_port_group(network_name, namespace, direction)
        gress = _GRESS[direction]

        def ids(kind: str, _gress: str = gress) -> dict[str, str]:
            return {OWNER_CONTROLLER: controller, OWNER_TYPE: OWNER_NETPOL_NAMESPACE, OWNER_NAME: namespace,
                    DIRECTION: _gress, TYPE: kind,
                    PRIMARY_ID: f"{controller}:{OWNER_NETPOL_NAMESPACE}:{namespace}:{_gress}:{kind}"}

        name = f"NP:{namespace}:{gress}"
        acls = (
            _acl(direction, ovnk_names.DENY_PRIORITY, port_match(pg, direction), DROP, name, ids(DEFAULT_DENY_TYPE)),
            _acl(direction, ovnk_names.ALLOW_PRIORITY, f"{port_match(pg, direction)} && {ARP_ALLOW_MATCH}", ALLOW,
                 name, ids(ARP_ALLOW_TYPE)),
        )
        pg_ids = {OWNER_CONTROLLER: controller, OWNER_TYPE: OWNER_NETPOL_NAMESPACE, OWNER_NAME: namespace,
                  DIRECTION: gress, NETWORK: network_name,
                  PRIMARY_ID: f"{controller}:{OWNER_NETPOL_NAMESPACE}:{namespace}:{gress}"}
        out.append(PortGroupSpec(pg, tuple(sorted(set(isolated.get(direction, ())))), acls, _ids(pg_ids)))
    return out


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


def _rule_address_sets(controller: str, network_name: str, rule: EnforcedRule, attachments: Sequence[Attachment],
                       inventory: Inventory, families: Sequence[int]) -> list[AddressSetSpec]:
    """One address set per rule and IP family with the IPs of every attachment a selector peer matches
    (OVN-K shares one per selector; one per rule is equivalent for what the ACLs match)."""
    peers = [p for p in rule.peers if p.uses_selectors]
    matched = [a for a in attachments if any(selector_peer_matches(p, rule.policy, a, inventory) for p in peers)]
    key, gress = _policy_key(rule.policy), _GRESS[rule.direction]
    out = []
    for fam in sorted(set(families)):
        ids = {OWNER_CONTROLLER: controller, OWNER_TYPE: OWNER_NETWORK_POLICY, OWNER_NAME: key, DIRECTION: gress,
               GRESS_INDEX: str(rule.index), IP_FAMILY: f"v{fam}", NETWORK: network_name,
               PRIMARY_ID: f"{controller}:{OWNER_NETWORK_POLICY}:{key}:{gress}:{rule.index}:v{fam}"}
        addrs = sorted({str(ip) for a in matched for ip in a.ips if ip.version == fam},
                       key=lambda s: ipaddress.ip_address(s))
        out.append(AddressSetSpec(rule_address_set(controller, rule, fam), tuple(addrs), _ids(ids)))
    return out


def desired_state(inventory: Inventory, network: Ref, lsp_names: Mapping[str, str],
                  profile: OvnkProfile = DEFAULT_PROFILE, families: Sequence[int] = (4,)) -> DesiredState:
    """What the network controller of `network` writes for the policies OVN-K enforces there.

    `lsp_names` maps attachment keys (`ns/name`) to their logical switch port (a VM's is its virt-launcher
    pod's); selected attachments missing from it are listed in `unplaced`. `families` are the cluster's IP
    families (OVN-K's IPv4Mode/IPv6Mode), used for all-peers rules and selector address sets."""
    net: Network | None = inventory.networks.get(network)
    if net is None:
        raise ValueError(f"no NetworkAttachmentDefinition {network}")
    name = net.cni_name
    controller = ovnk_names.network_controller(name)
    attachments = inventory.attachments_on(network)
    enforced = enforced_policies(inventory, network, profile).policies
    port_groups: list[PortGroupSpec] = []
    address_sets: list[AddressSetSpec] = []
    unplaced: set[str] = set()
    isolated: dict[str, dict[Direction, set[str]]] = {}
    for policy in enforced:
        chosen = [a for a in attachments if selects(policy, a)]
        unplaced.update(a.key for a in chosen if a.key not in lsp_names)
        ports = [lsp_names[a.key] for a in chosen if a.key in lsp_names]
        per_ns = isolated.setdefault(policy.ref.namespace, {Direction.INGRESS: set(), Direction.EGRESS: set()})
        for direction in policy.isolates:
            per_ns[direction].update(ports)
        sets: dict[tuple[Direction, int], dict[int, str]] = {}
        for rule in policy.rules:
            if any(p.uses_selectors for p in rule.peers):
                made = _rule_address_sets(controller, name, rule, attachments, inventory, families)
                address_sets += made
                sets[(rule.direction, rule.index)] = {int(s.ids[IP_FAMILY][1:]): s.name for s in made}
        port_groups.append(policy_port_group(name, policy, ports, sets, families))
    for namespace in sorted(isolated):
        port_groups += default_deny_port_groups(name, namespace, isolated[namespace])
    return DesiredState(controller, tuple(port_groups), tuple(address_sets), tuple(sorted(unplaced)))


__all__ = [
    "AclSpec", "AddressSetSpec", "DesiredState", "PortGroupSpec", "address_set_match", "all_ips_match",
    "default_deny_port_group", "default_deny_port_groups", "desired_state", "hash_for_ovn", "ip_block_match",
    "l4_matches", "policy_port_group", "port_match", "rule_acls", "selects", "selector_peer_matches",
]
