"""The programmed plane: OVN northbound ACLs turned back into verdicts, with the deciding ACL as provenance.

OVN runs a logical switch's ACLs in three stages (`acl_pipeline.Stage`), tier by tier; a connection between
two ports passes all three; an external host enters or leaves through the localnet port. Every verdict
carries what each stage and tier did (`ProgrammedJudgement.effects`). NB contents are read in the shapes of
any OVN-K version segcheck knows (`ovnk`); what cannot be attributed stays `unknown`, with a reason.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .acl_pipeline import (
    Effect,
    RankedAcl,
    Stage,
    StageEffect,
    acl_reason as _pipeline_reason,
    effect_chain,
    stage_verdict,
)
from .enforcement import EnforcedPolicy
from .policy import Direction
from .findings import Finding, FindingKind, Severity
from .model import (
    MAX_PORT,
    MIN_PORT,
    Attachment,
    AttachmentKind,
    Endpoint,
    Judgement,
    Network,
    PortRange,
    Protocol,
    Reason,
    Verdict,
)
from .northbound import Acl, LogicalPort, LogicalSwitch, NbSnapshot, OvsSnapshot
from .ovn_match import (
    And,
    Compare,
    Expr,
    MatchSyntaxError,
    Network as IPNet,
    Not,
    Or,
    Packet,
    Resolver,
    evaluate,
    parse_match,
    port_constants,
)
from .ovnk import ids, names, ownership
from .ovnk import ports as ovnk_ports
from .ovnk.versions import NbShapes

L4_PROTOCOLS = ("tcp", "udp", "sctp")


def acl_owner(acl: Acl) -> str:
    return acl.ids.get(ids.OBJECT_NAME) or acl.ids.get(ids.LEGACY_NAME) or "unowned"


def acl_reason(acl: Acl) -> Reason:
    return _pipeline_reason(acl, acl_owner(acl))


@dataclass(frozen=True)
class ProgrammedJudgement(Judgement):
    """A programmed verdict with what every stage and tier did to the packet, in pipeline order."""

    effects: tuple[StageEffect, ...] = ()

    @property
    def judged_here(self) -> frozenset[Direction] | None:
        """The policy directions whose stages this zone judged, when another zone judges the rest (None: all
        were judged here)."""
        remote = {e.stage for e in self.effects if e.effect is Effect.REMOTE}
        if not remote:
            return None
        here = {s for s in Stage if s not in remote}
        return frozenset(Direction.INGRESS if s is Stage.INGRESS else Direction.EGRESS for s in here)

    def chain(self) -> dict[Stage, str]:
        """Per stage, e.g. `egress after LB: tier 0 pass (acl/…) -> tier 2 allow (acl/…)`."""
        return effect_chain(self.effects)


@dataclass(frozen=True)
class Unattributed:
    """Something in NB (or declared) the programmed plane cannot tie to the other side: never an error,
    never dropped; its cells are `unknown` with this reason."""

    kind: str  # "port" (an NB port no declared workload claims) or "endpoint" (a workload without a port here)
    name: str
    reason: str


# ----------------------------------------------------------------------------- builders

def _switch_missing(network: Network, switch_name: str) -> Finding:
    return Finding(
        FindingKind.LOCALNET_SWITCH_MISSING,
        f"no logical switch {switch_name} in OVN northbound: {network.ref} ({network.topology}) is not "
        "programmed on this node",
        network=network.ref, severity=Severity.ERROR)


def _switch_acls(nb: NbSnapshot, switch: LogicalSwitch, network: Network) -> tuple[list[tuple[Acl, Expr | None]],
                                                                                   list[Finding]]:
    """The ACLs that act on the switch's ports (its own and those of port groups holding any of its ports),
    parsed, with a finding for each unparseable or foreign one."""
    ports = frozenset(switch.ports)
    acl_ids = list(switch.acls)
    for pg in nb.port_groups.values():
        if pg.ports & ports:
            acl_ids.extend(pg.acls)
    acls: list[tuple[Acl, Expr | None]] = []
    findings: list[Finding] = []
    for uuid in dict.fromkeys(acl_ids):
        acl = nb.acls.get(uuid)
        if acl is None:
            continue
        expr: Expr | None
        try:
            expr = parse_match(acl.match)
        except MatchSyntaxError as exc:
            expr = None
            findings.append(Finding(
                FindingKind.UNKNOWN_ACL, f"{acl.short} match cannot be parsed ({exc}): {acl.match}",
                network=network.ref, severity=Severity.ERROR))
        if acl.ids.get(ids.OWNER_TYPE) not in ids.KNOWN_OWNER_TYPES:
            findings.append(Finding(
                FindingKind.UNOWNED_ACL,
                f"{acl.short} ({acl.direction} priority {acl.priority} {acl.action}: {acl.match}) has no OVN-K owner "
                "in external_ids: something other than OVN-Kubernetes programmed it",
                network=network.ref, severity=Severity.ERROR))
        acls.append((acl, expr))
    return acls, findings


def _resolver(nb: NbSnapshot, ports: frozenset[str]) -> Resolver:
    return Resolver({name: pg.ports for name, pg in nb.port_groups.items()}, nb.address_sets,
                    {name: nb.ports[name].ips for name in ports if name in nb.ports})


def _required_ports(expr: Expr | None, field_name: str, resolver: Resolver) -> frozenset[str] | None:
    """The ports a top-level `field == @pg` / `field == "name"` conjunct limits an ACL to (None: no limit)."""
    if expr is None:
        return None
    for item in expr.items if isinstance(expr, And) else (expr,):
        if isinstance(item, Compare) and item.field == field_name and item.op == "==":
            ports: set[str] = set()
            for c in item.values:
                if c.kind == "portgroup" and str(c.value) in resolver.port_groups:
                    ports |= resolver.port_groups[str(c.value)]
                elif c.kind == "str":
                    ports.add(str(c.value))
                else:
                    return None
            return frozenset(ports)
    return None


def _rank(acls: Sequence[tuple[Acl, Expr | None]], resolver: Resolver) -> dict[Stage, list[list[RankedAcl]]]:
    """Per stage, per tier ascending: ACLs by descending priority, each with the ports it can apply to, so a
    packet is only evaluated against the ACLs of its own port groups."""
    out: dict[Stage, list[list[RankedAcl]]] = {}
    for stage in Stage:
        mine = [(a, e) for a, e in acls if stage.holds(a)]
        out[stage] = [
            sorted((RankedAcl(a, e, _required_ports(e, stage.port_field, resolver)) for a, e in mine if a.tier == tier),
                   key=lambda r: -r.acl.priority)
            for tier in sorted({a.tier for a, _ in mine})]
    return out


def _port_boundaries(acls: Sequence[tuple[Acl, Expr | None]]) -> dict[str, list[int]]:
    """Per L4 protocol, the ports where some ACL's verdict may change."""
    out = {}
    for proto in L4_PROTOCOLS:
        cuts = {MIN_PORT, MAX_PORT + 1}
        for _, expr in acls:
            if expr is not None:
                cuts |= {c for c in port_constants(expr).get(proto, ()) if MIN_PORT <= c <= MAX_PORT + 1}
        out[proto] = sorted(cuts)
    return out


def _collect(expr: Expr, port_names: set[str], nets: set[IPNet], sets: set[str]) -> None:
    """Port names, address constants and address sets an ACL match mentions."""
    if isinstance(expr, Compare):
        for c in expr.values:
            if c.kind == "str" and expr.field in ("inport", "outport"):
                port_names.add(str(c.value))
            elif c.kind == "net" and isinstance(c.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                nets.add(c.value)
            elif c.kind == "addrset":
                sets.add(str(c.value))
    elif isinstance(expr, Not):
        _collect(expr.inner, port_names, nets, sets)
    elif isinstance(expr, (And, Or)):
        for item in expr.items:
            _collect(item, port_names, nets, sets)


@dataclass(frozen=True)
class _Distinctions:
    """What ACL matches can tell endpoints apart by: port group membership, ports named in a match, and which
    of the matches' addresses (constants, address sets, port groups' derived sets) contain an IP."""

    groups_of: Mapping[str, frozenset[str]] = field(default_factory=dict)
    named_ports: frozenset[str] = frozenset()
    nets: tuple[IPNet, ...] = ()
    sets: tuple[tuple[IPNet, ...], ...] = ()  # a set counts as one constant: membership, not members

    @classmethod
    def of(cls, acls: Sequence[tuple[Acl, Expr | None]], resolver: Resolver) -> "_Distinctions":
        groups_of: dict[str, frozenset[str]] = {}
        for name, members in resolver.port_groups.items():
            for member in members:
                groups_of[member] = groups_of.get(member, frozenset()) | {name}
        port_names: set[str] = set()
        nets: set[IPNet] = set()
        sets: set[str] = set()
        for _, expr in acls:
            if expr is not None:
                _collect(expr, port_names, nets, sets)
        return cls(groups_of, frozenset(port_names),
                   tuple(sorted(nets, key=lambda n: (n.version, int(n.network_address), n.prefixlen))),
                   tuple(tuple(resolver.address_set(s) or ()) for s in sorted(sets)))

    def signature(self, port: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[object, ...]:
        inside = tuple(i for i, net in enumerate(self.nets) if ip.version == net.version and ip in net)
        in_sets = tuple(i for i, members in enumerate(self.sets)
                        if any(ip.version == net.version and ip in net for net in members))
        return (self.groups_of.get(port, frozenset()), port if port in self.named_ports else None, ip.version,
                inside, in_sets)


# ----------------------------------------------------------------------------- the plane

class ProgrammedPlane:
    """Verdicts as OVN will enforce them on one network's logical switch, for endpoints of the declared world.

    With `zone` (the node whose NB this is, OVN-K's interconnect mode: one zone per node), the plane judges only
    the stages this zone runs: the egress stages of a local source (or, for an external source, of a local
    destination, where the traffic enters from the physical network) and the ingress stage of a local
    destination (or, for an external destination, of a local source). A workload is local when this NB holds
    its (non-remote) logical switch port; the other stages are `judged on node X`."""

    def __init__(self, nb: NbSnapshot, network: Network, zone: str | None = None):
        self.network = network
        self.nb = nb
        self.zone = zone
        self.switch_name = names.network_switch(network.cni_name, network.topology)
        self.localnet_port = names.localnet_port(network.cni_name)
        switch = nb.switches.get(self.switch_name)
        self.available = switch is not None
        self.findings: list[Finding] = []
        acls: list[tuple[Acl, Expr | None]] = []
        if switch is None:
            self.findings.append(_switch_missing(network, self.switch_name))
        else:
            acls, found = _switch_acls(nb, switch, network)
            self.findings += found
        self._ports = frozenset(switch.ports) if switch is not None else frozenset()
        self._acls = acls
        self._resolver = _resolver(nb, self._ports)
        self._ranked = _rank(acls, self._resolver)
        self._distinctions = _Distinctions.of(acls, self._resolver)
        self._boundaries = _port_boundaries(acls)
        self._judged: dict[tuple[object, ...], Judgement] = {}
        self._located: dict[Endpoint, tuple[str | None, str]] = {}

    def signature(self, endpoint: Endpoint) -> tuple[object, ...] | None:
        """Endpoints with equal signatures get equal verdicts everywhere (None: not comparable, e.g. no port)."""
        port = self.port_of(endpoint) if self.available else None
        ip = endpoint.ip
        if port is None or ip is None:
            return None
        return self._distinctions.signature(port, ip)

    # -- locating endpoints --

    def locate(self, endpoint: Endpoint) -> tuple[str | None, str]:
        """The logical switch port a packet of this endpoint uses (its own LSP, a VM's launcher pod's, or the
        localnet port), and how it was found or why not."""
        found = self._located.get(endpoint)
        if found is None:
            found = self._located[endpoint] = self._locate(endpoint)
        return found

    def _locate(self, endpoint: Endpoint) -> tuple[str | None, str]:
        if not isinstance(endpoint, Attachment):
            if self.localnet_port in self._ports:
                return self.localnet_port, "the localnet port"
            return None, f"no localnet port {self.localnet_port} on {self.switch_name}"
        by_name = names.pod_port(endpoint.nad_ref, endpoint.ref)
        if by_name in self._ports:
            return by_name, "by name"
        if endpoint.kind is AttachmentKind.VM:
            launchers = [n for n in sorted(self._ports) if names.is_launcher_port_of(n, endpoint.nad_ref, endpoint.ref)]
            if endpoint.mac:
                with_mac = [n for n in launchers if endpoint.mac.lower() in self._port(n).macs]
                launchers = with_mac or launchers
            if len(launchers) == 1:
                return launchers[0], "the virt-launcher pod's port"
            if launchers:
                return None, (f"{len(launchers)} virt-launcher ports for {endpoint.key} ({', '.join(launchers)}) and "
                              "no MAC to tell them apart")
        for name in sorted(self._ports):  # a port named otherwise: only its MAC or IP can identify it
            row = self._port(name)
            if row.type:
                continue
            if (endpoint.mac and endpoint.mac.lower() in row.macs) or (endpoint.ip is not None and endpoint.ip in row.ips):
                return name, "by its MAC or IP"
        return None, f"no logical switch port for {endpoint.key} on {self.switch_name}"

    def _port(self, name: str) -> LogicalPort:
        return self.nb.ports.get(name) or LogicalPort(name)

    def port_of(self, endpoint: Endpoint) -> str | None:
        return self.locate(endpoint)[0]

    def port_row(self, endpoint: Endpoint) -> LogicalPort | None:
        name = self.port_of(endpoint)
        return self.nb.ports.get(name) if name else None

    def unattributed(self, endpoints: Iterable[Endpoint]) -> list[Unattributed]:
        """Workload ports of this switch no declared endpoint claims, and declared workloads with no port here."""
        claimed: set[str] = set()
        out: list[Unattributed] = []
        for endpoint in endpoints:
            port, why = self.locate(endpoint)
            if port is not None:
                claimed.add(port)
            elif isinstance(endpoint, Attachment):
                out.append(Unattributed("endpoint", endpoint.key, why))
        for name in sorted(self._ports - claimed):
            if not self._port(name).type:
                out.append(Unattributed("port", name, "no declared workload on this network claims it"))
        return out

    # -- verdicts --

    def _stage(self, stage: Stage, pkt: Packet) -> list[StageEffect]:
        port = pkt.outport if stage is Stage.INGRESS else pkt.inport
        effects: list[StageEffect] = []
        for ranked in self._ranked[stage]:
            mine = [r for r in ranked if r.ports is None or port in r.ports]
            if not mine:
                continue
            tier = mine[0].acl.tier
            decided: StageEffect | None = None
            for r in mine:
                hit = evaluate(r.expr, pkt, self._resolver) if r.expr is not None else None
                if hit is None:
                    return effects + [StageEffect(stage, tier, r.acl, Effect.UNKNOWN)]
                if hit:
                    decided = StageEffect(stage, tier, r.acl, Effect.of(r.acl.action))
                    break
            effects.append(decided or StageEffect(stage, tier, None, Effect.NO_MATCH))
            if decided is not None and decided.effect is not Effect.PASS:
                return effects
        return effects or [StageEffect(stage, None, None, Effect.NO_MATCH)]

    def remote_node(self, endpoint: Endpoint) -> tuple[bool, str | None]:
        """(True, its node) when, in zone mode, the workload runs in another node's zone: this NB holds no
        port of it, or only a `remote` one (layer2 transit), and it is not declared on this node. Its node: as
        declared, else the chassis its remote port requests (OVN-K writes the pod's node there). An external
        endpoint is never remote itself: it is reached through whichever node's localnet port."""
        if self.zone is None or not isinstance(endpoint, Attachment):
            return False, None
        port, _ = self.locate(endpoint)
        if port is not None and self._port(port).type != names.REMOTE_PORT_TYPE:
            return False, None
        if port is None and endpoint.node == self.zone:
            return False, None  # declared here but without a port: a missing port, not a remote workload
        requested = dict(self._port(port).options).get(ovnk_ports.REQUESTED_CHASSIS) if port is not None else None
        return True, endpoint.node or requested or None

    def owned_stages(self, source: Endpoint, destination: Endpoint) -> dict[Stage, str | None]:
        """The stages another zone runs for this pair, each with that zone's node (empty: this zone runs all)."""
        src_remote, src_node = self.remote_node(source)
        dst_remote, dst_node = self.remote_node(destination)
        # Where the egress stages run: at the source's node; an external source's traffic enters at the
        # destination's node. The ingress stage: at the destination's node; to an external host, the source's.
        egress = (src_remote, src_node) if isinstance(source, Attachment) else (dst_remote, dst_node)
        ingress = (dst_remote, dst_node) if isinstance(destination, Attachment) else (src_remote, src_node)
        out: dict[Stage, str | None] = {}
        for stage in Stage:
            remote, node = ingress if stage is Stage.INGRESS else egress
            if remote:
                out[stage] = node
        return out

    def judge(self, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol) -> Judgement:
        if not self.available:
            return ProgrammedJudgement(Verdict.UNKNOWN, (Reason("nb/switch-missing", self.switch_name),))
        elsewhere = self.owned_stages(source, destination)
        if len(elsewhere) == len(Stage):
            effects = tuple(StageEffect(stage, None, None, Effect.REMOTE, node) for stage, node in elsewhere.items())
            return _judgement(effects)
        egress_here = Stage.EGRESS_AFTER_LB not in elsewhere
        ingress_here = Stage.INGRESS not in elsewhere
        (inport, in_why), (outport, out_why) = self.locate(source), self.locate(destination)
        if inport is None and not egress_here and self.localnet_port in self._ports:
            # A remote source's traffic enters this zone from the physical network, through the localnet port.
            inport, in_why = self.localnet_port, "enters from the physical network"
        needed = ([(inport, in_why, source)] if egress_here else []) + \
            ([(outport, out_why, destination)] if ingress_here else [])
        missing = [Reason("nb/port-missing", why) for p, why, _ in needed if p is None]
        if missing:
            return ProgrammedJudgement(Verdict.UNKNOWN, tuple(missing))
        no_ip = [Reason("nb/no-address", f"no IP known for {e.key} (port {p}: {' / '.join(self._port(p).addresses) or 'no addresses'}); "
                        "ACLs on addresses cannot be evaluated for it")
                 for p, _, e in needed if e.ip is None and p is not None]
        if no_ip or source.ip is None or destination.ip is None:
            return ProgrammedJudgement(Verdict.UNKNOWN, tuple(no_ip) or (
                Reason("nb/no-address", f"no IP known for {(source if source.ip is None else destination).key}"),))
        key = (inport, outport, source.ip, destination.ip, protocol, port, tuple(sorted(elsewhere.items(), key=str)))
        hit = self._judged.get(key)
        if hit is None:
            proto = protocol.value.lower()
            leaving = Packet(inport, None, source.ip, destination.ip, proto, port)
            delivered = Packet(inport, outport, source.ip, destination.ip, proto, port)
            effects = tuple(
                e for stage in Stage
                for e in ([StageEffect(stage, None, None, Effect.REMOTE, elsewhere[stage])] if stage in elsewhere
                          else self._stage(stage, delivered if stage is Stage.INGRESS else leaving)))
            hit = self._judged[key] = _judgement(effects)
        return hit

    def segments(self, source: Endpoint, destination: Endpoint, protocol: Protocol) -> list[tuple[PortRange, Judgement]]:
        """Maximal port ranges with one programmed verdict and provenance."""
        bounds = self.boundary(protocol)
        out: list[tuple[PortRange, Judgement]] = []
        for lo, hi in zip(bounds, bounds[1:]):
            j = self.judge(source, destination, lo, protocol)
            if out and out[-1][1] == j:
                out[-1] = (PortRange(protocol, out[-1][0].first, hi - 1), j)
            else:
                out.append((PortRange(protocol, lo, hi - 1), j))
        return out

    def boundary(self, protocol: Protocol) -> list[int]:
        return self._boundaries.get(protocol.value.lower(), [MIN_PORT, MAX_PORT + 1])

    # -- ownership --

    def policy_findings(self, policies: Iterable[EnforcedPolicy]) -> list[Finding]:
        """Policies that should be programmed here but own neither a port group nor an ACL on this node
        (ownership read from the port group in the shapes of either OVN-K version, or from the ACLs)."""
        net = self.network.cni_name
        owned = {ownership.port_group_policy(pg.name, dict(pg.external_ids), net) for pg in self.nb.port_groups.values()}
        owned |= {ownership.acl_policy(acl.ids, net) for acl in self.nb.acls.values()}
        out = []
        for policy in policies:
            if policy.ref not in owned:
                out.append(Finding(
                    FindingKind.POLICY_NOT_PROGRAMMED,
                    f"neither a port group nor an ACL of {names.policy_key(policy.ref)} in OVN northbound",
                    policy.ref, self.network.ref, Severity.ERROR))
        return out


def _judgement(effects: tuple[StageEffect, ...]) -> ProgrammedJudgement:
    """All stages must allow: a denying stage decides, then an undecidable one; provenance is the deciding ACLs."""
    by_stage: dict[Stage, tuple[StageEffect, ...]] = {}
    for e in effects:
        by_stage[e.stage] = by_stage.get(e.stage, ()) + (e,)
    verdicts = {stage: stage_verdict(mine) for stage, mine in by_stage.items()}

    def reasons(wanted: set[Effect]) -> tuple[Reason, ...]:
        return tuple(Reason(e.acl.short, f"cannot evaluate: {e.acl.match}") if e.effect is Effect.UNKNOWN
                     else acl_reason(e.acl) for e in effects if e.effect in wanted and e.acl is not None)

    if Verdict.DENIED in verdicts.values():
        return ProgrammedJudgement(Verdict.DENIED, reasons({Effect.DENY}), effects)
    if Verdict.UNKNOWN in verdicts.values():
        return ProgrammedJudgement(Verdict.UNKNOWN, reasons({Effect.ALLOW, Effect.UNKNOWN}), effects)
    if Verdict.REMOTE in verdicts.values():
        remote = {e.stage: e for e in effects if e.effect is Effect.REMOTE}
        judged_on = tuple(Reason(f"nb/judged-on/{e.node or 'other-node'}", f"{stage.value}: {e}")
                          for stage, e in remote.items())
        return ProgrammedJudgement(Verdict.REMOTE, reasons({Effect.ALLOW}) + judged_on, effects)
    return ProgrammedJudgement(Verdict.ALLOWED, reasons({Effect.ALLOW}) or (Reason("nb/no-acl", "no ACL matches: OVN allows"),),
                               effects)


def detect_ovnk(nb: NbSnapshot, network: Network, profile_name: str, end_port_supported: bool,
                nb_shapes: NbShapes | None = None) -> tuple[list[str], list[Finding]]:
    """What the programmed objects reveal about the OVN-Kubernetes version, and where it contradicts the profile
    segcheck was told to expect (--ovnk-version). Port group shapes never change a verdict (either is read)."""
    controller = names.network_controller(network.cni_name)
    owned = [a for a in nb.acls.values()
             if a.ids.get(ids.OWNER_CONTROLLER) == controller and a.ids.get(ids.OWNER_TYPE) == ids.NETWORK_POLICY]
    shapes = {ownership.port_group_shapes(dict(pg.external_ids)) for pg in nb.port_groups.values()
              if ownership.port_group_policy(pg.name, dict(pg.external_ids), network.cni_name) is not None}
    seen: list[str] = []
    if NbShapes.V4_14 in shapes:
        seen.append(f"policy port groups with only {ids.LEGACY_NAME} and {ids.NETWORK} ids (OVN-K 4.14)")
    if NbShapes.CURRENT in shapes:
        seen.append("policy port groups with owner-based ids (OVN-K 4.16+)")
    if any(ids.PORT_POLICY_PROTOCOL in a.ids for a in owned):
        seen.append(f"one ACL per rule, peer and protocol ({ids.PORT_POLICY_PROTOCOL})")
    if any(ids.PORT_POLICY_INDEX in a.ids for a in owned):
        seen.append(f"one ACL per port entry ({ids.PORT_POLICY_INDEX}: an older OVN-K)")
    ranged = [a for a in owned if re.search(r"\d+\s*<=?\s*(tcp|udp|sctp)\.dst\s*<=?\s*\d+", a.match)]
    if ranged:
        seen.append("port ranges programmed (endPort honoured)")
    if any(a.tier for a in owned):
        seen.append("ACL tiers in use")
    findings = []
    if ranged and not end_port_supported:
        findings.append(Finding(
            FindingKind.PROFILE_MISMATCH,
            f"OVN NB holds port-range ACLs ({ranged[0].short}: {ranged[0].match}), so this OVN-K honours endPort, "
            f"but segcheck expects OVN-K {profile_name} behaviour: run with --ovnk-version current",
            network=network.ref))
    if nb_shapes is not None and shapes and nb_shapes not in shapes:
        [found] = sorted(shapes, key=lambda s: s.value)[:1]
        findings.append(Finding(
            FindingKind.PROFILE_MISMATCH,
            f"OVN NB port groups are in OVN-K {found.value} shapes, but segcheck expects OVN-K {profile_name}: "
            f"run with --ovnk-version {found.value} (verdicts are read either way; port and named-port "
            "behaviour follow the profile)",
            network=network.ref))
    return seen, findings


def judge_port(segments: list[tuple[PortRange, Judgement]], port: int) -> Judgement:
    starts = [r.first for r, _ in segments]
    return segments[bisect.bisect_right(starts, port) - 1][1]


@dataclass(frozen=True)
class MappingStatus:
    network: str
    localnet: str
    bridge: str | None
    ok: bool
    findings: tuple[Finding, ...]


def check_localnet_mapping(network: Network, ovs: OvsSnapshot, expected_bridge: str | None = None) -> MappingStatus:
    """Is the network's localnet mapped to a bridge on this node, and is that bridge patched to br-int?"""
    physnet = network.localnet_name
    bridges = [b for p, b in ovs.bridge_mappings if p == physnet]
    findings: list[Finding] = []
    bridge = bridges[0] if bridges else None
    if bridge is None:
        findings.append(Finding(
            FindingKind.LOCALNET_UNMAPPED,
            f"localnet {physnet!r} of {network.ref} is not in ovn-bridge-mappings "
            f"({','.join(f'{p}:{b}' for p, b in ovs.bridge_mappings) or 'empty'}): its traffic cannot leave the node",
            network=network.ref, severity=Severity.ERROR))
    elif expected_bridge is not None and bridge != expected_bridge:
        findings.append(Finding(
            FindingKind.LOCALNET_UNMAPPED, f"localnet {physnet!r} is mapped to {bridge}, expected {expected_bridge}",
            network=network.ref, severity=Severity.ERROR))
    if bridge is not None:
        lport = names.localnet_port(network.cni_name)
        wanted = [(bridge, names.patch_port_to_br_int(lport)), ("br-int", names.patch_port_from_br_int(lport))]
        if bridge not in ovs.bridges:
            findings.append(Finding(FindingKind.PATCH_PORT_MISSING, f"bridge {bridge} does not exist on this node",
                                    network=network.ref, severity=Severity.ERROR))
        for br, port in wanted:
            if br in ovs.bridges and port not in ovs.bridges[br]:
                findings.append(Finding(
                    FindingKind.PATCH_PORT_MISSING,
                    f"patch port {port} missing on {br}: ovn-controller has not wired {physnet} to {bridge}",
                    network=network.ref, severity=Severity.ERROR))
    return MappingStatus(str(network.ref), physnet, bridge, not findings, tuple(findings))
