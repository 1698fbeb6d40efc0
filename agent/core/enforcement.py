"""What OVN-Kubernetes will actually enforce for a MultiNetworkPolicy on one network, and the findings that
say where that differs from what the author likely meant.

The expected plane follows *enforcement*, not intent: a leak that OVN-K will open is expected to be open,
and a finding names it. See shared/design.md, "MultiNetworkPolicy (MNP)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .consistency import declared_findings
from .findings import Finding, FindingKind, Severity
from .inventory import Inventory
from .model import MAX_PORT, MIN_PORT, Attachment, ExternalEndpoint, PortRange, Protocol, Ref
from .ovnk.ids import LEGACY_NAME, NETWORK
from .ovnk.versions import NbShapes
from .policy import Direction, Peer, Policy, Rule
from .selectors import LabelSelector, MatchMemo, Universe

ALL_PORTS: tuple[PortRange, ...] = tuple(PortRange(p) for p in Protocol)


@dataclass(frozen=True)
class OvnkProfile:
    """Version-dependent behaviour of OVN-Kubernetes' MultiNetworkPolicy support."""

    name: str
    end_port_supported: bool
    named_ports_widen: bool  # True: a named port opens every port of its protocol; False: it matches nothing
    nb_shapes: NbShapes
    served_api_versions: tuple[str, ...] = ("k8s.cni.cncf.io/v1beta1",)


_CURRENT = OvnkProfile(
    # OVN-Kubernetes with owner-based port group ids (upstream 5aa56d377, 2024-04: OpenShift 4.16 on), as of
    # its newest release: endPort honoured, named ports left unresolved on secondary networks.
    "current",
    end_port_supported=True,
    named_ports_widen=False,
    nb_shapes=NbShapes.CURRENT,
    served_api_versions=("k8s.cni.cncf.io/v1beta1", "k8s.cni.cncf.io/v1beta2"),
)
PROFILES = {
    # OpenShift 4.14 (upstream around 2023-08): the converter copies only protocol and port; named ports widen
    # to the whole protocol; port groups carry only {name, k8s.ovn.org/network}.
    "4.14": OvnkProfile("4.14", end_port_supported=False, named_ports_widen=True, nb_shapes=NbShapes.V4_14),
    "current": _CURRENT,
    "4.16+": _CURRENT,
}
DEFAULT_PROFILE = PROFILES["4.14"]
PROFILE_HELP = ("OVN-Kubernetes behaviour and NB shapes to expect: 4.14 = OpenShift 4.14 (upstream 2023-08: port "
                f"groups {{{LEGACY_NAME}, {NETWORK}}}, endPort dropped, named ports widened); current (alias 4.16+) = "
                "owner-based port group ids from upstream 5aa56d377 (2024-04) on, endPort honoured and named ports "
                "unresolved as in upstream's newest releases. Verdicts are read from either shape.")


@dataclass(frozen=True)
class EnforcedRule:
    """A rule as enforced: peers unchanged, ports resolved to ranges (empty = matches nothing)."""

    policy: Ref
    direction: Direction
    index: int
    peers: tuple[Peer, ...]
    port_ranges: tuple[PortRange, ...]
    ports_listed: bool = True  # False: no `ports` at all, i.e. every protocol, L4 or not

    @property
    def ref(self) -> str:
        return f"{self.policy}:{self.direction.value}[{self.index}]"


@dataclass(frozen=True)
class EnforcedPolicy:
    ref: Ref
    pod_selector: LabelSelector
    isolates: frozenset[Direction]
    rules: tuple[EnforcedRule, ...]

    def rules_for(self, direction: Direction) -> tuple[EnforcedRule, ...]:
        return tuple(r for r in self.rules if r.direction is direction)


@dataclass(frozen=True)
class NetworkPolicies:
    """The enforced policies of one network, plus every finding about the policies that name it."""

    network: Ref
    policies: tuple[EnforcedPolicy, ...]
    findings: tuple[Finding, ...]


def _port_ranges(rule: Rule, policy: Policy, network: Ref, profile: OvnkProfile, findings: list[Finding]) -> tuple[PortRange, ...]:
    if not rule.ports:
        return ALL_PORTS
    ranges: list[PortRange] = []
    whole: set[Protocol] = set()  # protocols listed by an entry without a (numeric) port
    where = rule.ref(policy.ref)
    for spec in rule.ports:
        if spec.protocol_defaulted:
            findings.append(Finding(
                FindingKind.PROTOCOL_DEFAULTED,
                f"{where}: port {spec.port} has no protocol; the API defaults it to TCP, but older ovnkube-controller "
                "versions crash on a missing protocol. Write `protocol: TCP` explicitly.",
                policy.ref, network))
        if spec.port is None:
            whole.add(spec.protocol)
        elif isinstance(spec.port, str):
            if profile.named_ports_widen:
                whole.add(spec.protocol)
                effect = f"OVN-K {profile.name} opens every {spec.protocol.value} port instead"
            else:
                effect = f"OVN-K {profile.name} matches no port for it, so this entry allows nothing"
            findings.append(Finding(
                FindingKind.NAMED_PORT,
                f"{where}: named port {spec.port!r} is not resolved on secondary networks; {effect}. Use the number.",
                policy.ref, network, Severity.ERROR if profile.named_ports_widen else Severity.WARNING))
        elif spec.end_port is not None and spec.end_port != spec.port:
            if profile.end_port_supported:
                ranges.append(PortRange(spec.protocol, spec.port, spec.end_port))
            else:
                ranges.append(PortRange(spec.protocol, spec.port, spec.port))
                findings.append(Finding(
                    FindingKind.END_PORT_IGNORED,
                    f"{where}: endPort {spec.end_port} is dropped by OVN-K {profile.name}; only port {spec.port} is "
                    f"allowed, not {spec.port}-{spec.end_port}. List the ports you need one by one.",
                    policy.ref, network))
        else:
            ranges.append(PortRange(spec.protocol, spec.port, spec.port))
    numbered = {r.protocol for r in ranges}
    for proto in sorted(whole & numbered, key=lambda p: p.value):
        findings.append(Finding(
            FindingKind.WHOLE_PROTOCOL_NARROWED,
            f"{where}: an entry opens every {proto.value} port, but OVN-K adds no clause for it, so next to the "
            f"numbered {proto.value} ports of the same rule only those are allowed. Put the whole-protocol entry "
            "in a rule of its own.",
            policy.ref, network, Severity.ERROR))
    # As OVN-K groups a rule's ports (gress_policy.go getProtocolPortsMap): per protocol, the numbered ports, or
    # every port when the protocol has none.
    return tuple(ranges) + tuple(PortRange(p) for p in sorted(whole - numbered, key=lambda p: p.value))


def _selects_anything(policy: Policy, label_sets: dict[str, Universe], matches: MatchMemo) -> bool:
    universe = label_sets.get(policy.ref.namespace)
    if universe is None:
        return False
    selects = matches.matcher(policy.pod_selector)
    return bool(matches.chosen(policy.pod_selector, universe, lambda: [
        j for j, labels in enumerate(universe.items) if selects(labels)]))  # type: ignore[arg-type]


def _policy_findings(policy: Policy, inventory: Inventory, profile: OvnkProfile) -> list[Finding]:
    """Findings that do not depend on a particular network."""
    found: list[Finding] = []
    if policy.api_version not in profile.served_api_versions:
        found.append(Finding(
            FindingKind.API_VERSION_NOT_SERVED,
            f"{policy.api_version} is not served by OVN-K {profile.name} (it serves "
            f"{', '.join(profile.served_api_versions)}); the API server will reject this object.",
            policy.ref, severity=Severity.ERROR))
    if not policy.policy_for:
        found.append(Finding(
            FindingKind.NO_POLICY_FOR,
            f"no {'k8s.v1.cni.cncf.io/policy-for'} annotation: the policy applies to no secondary network.",
            policy.ref))
    for net in policy.networks():
        if net not in inventory.nads:
            found.append(Finding(
                FindingKind.UNKNOWN_NETWORK,
                f"policy-for names {net}, but no such NetworkAttachmentDefinition exists: the policy protects nothing there.",
                policy.ref, net, Severity.ERROR))
    if not policy.policy_types:
        found.append(Finding(
            FindingKind.NO_POLICY_TYPES,
            "no policyTypes: OVN-K does not default them, so this policy isolates nothing (its rules still open "
            "traffic for workloads another policy isolates). Set policyTypes explicitly.",
            policy.ref))
    for direction in Direction:
        rules = policy.egress if direction is Direction.EGRESS else policy.ingress
        if rules and direction not in policy.policy_types and policy.policy_types:
            found.append(Finding(
                FindingKind.RULES_OUTSIDE_POLICY_TYPES,
                f"{direction.value} rules present but {direction.policy_type} is not in policyTypes: they do not "
                f"isolate, yet OVN-K still programs them as allows for workloads another policy isolates.",
                policy.ref))
    return found


def _holds_ipv6(inventory: Inventory, network: Ref, attachments: Sequence[Attachment]) -> bool:
    return any(ip.version == 6 for a in attachments for ip in a.ips) or \
        any(ip.version == 6 for e in inventory.externals_on(network) for ip in e.ips)


def enforced_policies(inventory: Inventory, network: Ref, profile: OvnkProfile = DEFAULT_PROFILE, *,
                      matches: MatchMemo | None = None,
                      attachments: Sequence[Attachment] | None = None) -> NetworkPolicies:
    """`matches`: selector answers to reuse (see `MatchMemo`); `attachments`: the network's, when the caller
    has listed them already."""
    net = inventory.networks.get(network)
    on_network = inventory.attachments_on(network) if attachments is None else attachments
    findings: list[Finding] = []
    enforced: list[EnforcedPolicy] = []
    label_sets: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for a in on_network:
        label_sets.setdefault(a.ref.namespace, set()).add(a.labels)
    matches = matches if matches is not None else MatchMemo()  # each (selector, label set) matched once
    listed = {ns: matches.universe(tuple(sorted(sets))) for ns, sets in label_sets.items()}
    ipv6_without_ipam = net is not None and not net.has_ipam and _holds_ipv6(inventory, network, on_network)
    for policy in sorted(inventory.policies, key=lambda p: p.ref):
        if network not in inventory.policy_networks(policy):
            continue
        if policy.api_version not in profile.served_api_versions:
            continue  # never admitted, so never programmed
        if net is not None and not net.has_ipam:
            selector_rules = [r.ref(policy.ref) for r in policy.rules if any(p.uses_selectors for p in r.peers)]
            if selector_rules:
                findings.append(Finding(
                    FindingKind.SELECTOR_PEER_WITHOUT_IPAM,
                    f"{', '.join(selector_rules)} use podSelector/namespaceSelector peers, but {network} has no IPAM "
                    "(no subnets), so peers cannot be resolved to IPs: OVN-K refuses the whole policy, including its "
                    "default deny. Use ipBlock peers on this network.",
                    policy.ref, network, Severity.ERROR))
                for r in policy.rules:  # still say what else OVN-K would change once the peers are fixed
                    _port_ranges(r, policy, network, profile, findings)
                continue
        if ipv6_without_ipam:
            open_rules = [r.ref(policy.ref) for r in policy.rules if not r.peers]
            if open_rules:
                findings.append(Finding(
                    FindingKind.ALL_PEERS_IPV4_ONLY,
                    f"{', '.join(open_rules)} allow every peer, but {network} has no subnets: OVN-K matches such a "
                    "rule as `ip4` only (allIPsMatch), so it admits no IPv6 traffic of the network's IPv6 "
                    "addresses. Add an ipBlock peer (`::/0`) for IPv6.",
                    policy.ref, network))
        if not _selects_anything(policy, listed, matches):
            findings.append(Finding(
                FindingKind.SELECTS_NOTHING,
                f"podSelector {policy.pod_selector} selects no workload of namespace {policy.ref.namespace} on {network}.",
                policy.ref, network))
        rules = tuple(
            EnforcedRule(policy.ref, r.direction, r.index, r.peers, _port_ranges(r, policy, network, profile, findings),
                         bool(r.ports))
            for r in policy.rules
        )
        enforced.append(EnforcedPolicy(policy.ref, policy.pod_selector, policy.policy_types, rules))
    findings += _addresses_judged_apart(inventory, network, enforced, on_network)
    return NetworkPolicies(network, tuple(enforced), tuple(findings))


def _addresses_judged_apart(inventory: Inventory, network: Ref, policies: list[EnforcedPolicy],
                            attachments: Sequence[Attachment]) -> list[Finding]:
    """An endpoint with several addresses of one family is judged, and probed, at the first of them; say so
    where an ipBlock holds some of them and not the others (their packets may get another verdict)."""
    blocks = [(r.ref, peer.ip_block) for p in policies for r in p.rules for peer in r.peers
              if peer.ip_block is not None]
    if not blocks:
        return []
    out = []
    endpoints: list[Attachment | ExternalEndpoint] = [*attachments, *inventory.externals_on(network)]
    for e in endpoints:
        if len(e.ips) < 2:
            continue  # one address: nothing judged apart (most endpoints; this skips the per-family scan)
        for family in (4, 6):
            mine = [ip for ip in e.ips if ip.version == family]
            if len(mine) < 2:
                continue
            split = [(rule, block) for rule, block in blocks if len({block.contains(ip) for ip in mine}) > 1]
            if split:
                rule, block = split[0]
                out.append(Finding(
                    FindingKind.ADDRESSES_JUDGED_APART,
                    f"{e.key} has {len(mine)} IPv{family} addresses ({', '.join(map(str, mine))}) that the ipBlock "
                    f"{block} of {rule} treats differently: segcheck judges and probes the first, {mine[0]}; "
                    "packets from or to the others may get another verdict.",
                    network=network))
    return out


def _shown_with(policy: Policy, inventory: Inventory, network: Ref) -> bool:
    """Whether a policy's own findings show with `network`: it names the network, or it names no existing
    network and shares the network's namespace (the author most likely meant this one)."""
    names = policy.networks()
    dangling = not names or any(n not in inventory.nads for n in names)
    return network in inventory.policy_networks(policy) or (dangling and policy.ref.namespace == network.namespace)


def network_findings(inventory: Inventory, network: Ref, profile: OvnkProfile = DEFAULT_PROFILE, *,
                     enforcement: Sequence[Finding] | None = None,
                     declared: Sequence[Finding] | None = None) -> list[Finding]:
    """Findings to show with one network: those of the policies shown with it, its enforcement findings, and
    the declared world's findings about it (missing NADs, address conflicts). `enforcement` and `declared`: those
    of `enforced_policies` and `declared_findings` for this inventory, when the caller has them already."""
    found: list[Finding] = []
    for policy in sorted(inventory.policies, key=lambda p: p.ref):
        if _shown_with(policy, inventory, network):
            found.extend(_policy_findings(policy, inventory, profile))
    found.extend(enforced_policies(inventory, network, profile).findings if enforcement is None else enforcement)
    found.extend(f for f in (declared_findings(inventory) if declared is None else declared) if f.network == network)
    return found


def unplaced_findings(inventory: Inventory, profile: OvnkProfile = DEFAULT_PROFILE, *,
                      declared: Sequence[Finding] | None = None) -> list[Finding]:
    """The findings no network shows (a policy or workload naming only missing NADs, a NetworkPolicy):
    whoever lists networks one by one shows these once, so none is lost."""
    found: list[Finding] = []
    for policy in sorted(inventory.policies, key=lambda p: p.ref):
        if not any(_shown_with(policy, inventory, net) for net in inventory.networks):
            found.extend(_policy_findings(policy, inventory, profile))
    found.extend(f for f in (declared_findings(inventory) if declared is None else declared)
                 if f.network not in inventory.networks)
    return found


def all_findings(inventory: Inventory, profile: OvnkProfile = DEFAULT_PROFILE) -> list[Finding]:
    """Every policy finding: per-policy ones once, plus the per-network ones of each known network."""
    found: list[Finding] = []
    for policy in sorted(inventory.policies, key=lambda p: p.ref):
        found.extend(_policy_findings(policy, inventory, profile))
    for network in sorted(inventory.networks):
        found.extend(enforced_policies(inventory, network, profile).findings)
    return found + declared_findings(inventory)


def port_in(ranges: tuple[PortRange, ...], port: int, protocol: Protocol) -> bool:
    return any(r.protocol is protocol and r.first <= port <= r.last for r in ranges)


__all__ = [
    "ALL_PORTS", "DEFAULT_PROFILE", "EnforcedPolicy", "EnforcedRule", "MAX_PORT", "MIN_PORT", "NetworkPolicies",
    "OvnkProfile", "PROFILES", "PROFILE_HELP", "all_findings", "enforced_policies", "network_findings", "port_in",
    "unplaced_findings",
]
