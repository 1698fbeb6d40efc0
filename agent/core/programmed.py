"""The programmed plane: OVN northbound ACLs turned back into verdicts, with the deciding ACL as provenance.

OVN evaluates a logical switch's ACLs per direction (`from-lport` as the packet leaves its port, twice:
before and after load balancing; `to-lport` as it is delivered), tier by tier; within a tier the highest
priority matching ACL decides, `pass` defers to the next tier, and no match means allow. A connection
between two ports passes both directions; an external host enters or leaves through the localnet port.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable

from . import ovnk_names
from .enforcement import EnforcedPolicy
from .findings import Finding, FindingKind, Severity
from .model import (
    MAX_PORT,
    MIN_PORT,
    Attachment,
    Endpoint,
    Judgement,
    Network,
    PortRange,
    Protocol,
    Reason,
    Verdict,
)
from .northbound import Acl, LogicalPort, NbSnapshot, OvsSnapshot
from .ovn_match import And, Compare, Expr, MatchSyntaxError, Not, Or, Packet, Resolver, evaluate, parse_match, port_constants

ALLOW_ACTIONS = {"allow", "allow-related", "allow-stateless"}
DENY_ACTIONS = {"drop", "reject"}
KNOWN_OWNER_TYPES = {"NetworkPolicy", "NetworkPolicyDefaultDeny", "DefaultDeny", "NetpolDefault", "NetpolNamespace",
                     "NetpolNode", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "EgressFirewall"}


def acl_reason(acl: Acl) -> Reason:
    ids = acl.ids
    owner = ids.get(ovnk_names.OWNER_NAME) or ids.get("name") or "unowned"
    return Reason(acl.short, f"{acl.direction} tier {acl.tier} priority {acl.priority} {acl.action}, owner {owner}: {acl.match}")


@dataclass(frozen=True)
class StageResult:
    verdict: Verdict
    reasons: tuple[Reason, ...]


class ProgrammedPlane:
    """Verdicts as OVN will enforce them on one network's logical switch, for endpoints of the declared world."""

    def __init__(self, nb: NbSnapshot, network: Network):
        self.network = network
        self.nb = nb
        self.switch_name = ovnk_names.network_switch(network.cni_name, network.topology)
        self.localnet_port = ovnk_names.localnet_port(network.cni_name)
        self.findings: list[Finding] = []
        self._boundaries: dict[str, list[int]] = {}
        switch = nb.switches.get(self.switch_name)
        self.available = switch is not None
        if switch is None:
            self.findings.append(Finding(
                FindingKind.LOCALNET_SWITCH_MISSING,
                f"no logical switch {self.switch_name} in OVN northbound: {network.ref} ({network.topology}) is not "
                "programmed on this node",
                network=network.ref, severity=Severity.ERROR))
            self._ports: frozenset[str] = frozenset()
            self._acls: list[tuple[Acl, Expr | None]] = []
            self._resolver = Resolver({}, {}, {})
            return
        self._ports = frozenset(switch.ports)
        acl_ids = list(switch.acls)
        for pg in nb.port_groups.values():
            if pg.ports & self._ports:
                acl_ids.extend(pg.acls)
        self._acls = []
        for uuid in dict.fromkeys(acl_ids):
            acl = nb.acls.get(uuid)
            if acl is None:
                continue
            try:
                expr: Expr | None = parse_match(acl.match)
            except MatchSyntaxError as exc:
                expr = None
                self.findings.append(Finding(
                    FindingKind.UNKNOWN_ACL, f"{acl.short} match cannot be parsed ({exc}): {acl.match}",
                    network=network.ref, severity=Severity.ERROR))
            if acl.ids.get(ovnk_names.OWNER_TYPE) not in KNOWN_OWNER_TYPES:
                self.findings.append(Finding(
                    FindingKind.UNOWNED_ACL,
                    f"{acl.short} ({acl.direction} priority {acl.priority} {acl.action}: {acl.match}) has no OVN-K owner "
                    "in external_ids: something other than OVN-Kubernetes programmed it",
                    network=network.ref, severity=Severity.ERROR))
            self._acls.append((acl, expr))
        self._resolver = Resolver(
            {name: pg.ports for name, pg in nb.port_groups.items()},
            nb.address_sets,
            {name: nb.ports[name].ips for name in self._ports if name in nb.ports},
        )
        # Per stage, per tier: ACLs by descending priority, each with the ports it can apply to (None: any),
        # so a packet is only evaluated against the ACLs of its own port groups.
        self._ranked: dict[tuple[str, bool | None], list[list[tuple[Acl, Expr | None, frozenset[str] | None]]]] = {}
        for stage in (("from-lport", False), ("from-lport", True), ("to-lport", None)):
            direction, after_lb = stage
            chosen = [(a, e) for a, e in self._acls
                      if a.direction == direction and (after_lb is None or a.after_lb == after_lb)]
            field = "inport" if direction == "from-lport" else "outport"
            self._ranked[stage] = [
                sorted(((a, e, self._required_ports(e, field)) for a, e in chosen if a.tier == tier),
                       key=lambda x: -x[0].priority)
                for tier in sorted({a.tier for a, _ in chosen})]
        self._judged: dict[tuple[object, ...], Judgement] = {}
        # What ACL matches can tell apart: port group membership, ports named in a match, and which of the
        # matches' addresses (constants, address sets, port groups' own addresses) contain an IP.
        self._groups_of: dict[str, frozenset[str]] = {}
        for name, members in self._resolver.port_groups.items():
            for member in members:
                self._groups_of[member] = self._groups_of.get(member, frozenset()) | {name}
        self._named_ports: set[str] = set()
        nets: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
        sets: set[str] = set()
        for _, expr in self._acls:
            if expr is not None:
                _collect(expr, self._named_ports, nets, sets)
        # An address set (or a port group's derived $pg_ip4 set) counts as one constant: membership, not members.
        self._sets: list[list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
        for set_name in sorted(sets):
            contents: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
            if set_name in nb.address_sets:
                for text in nb.address_sets[set_name]:
                    try:
                        contents.append(ipaddress.ip_network(text, strict=False))
                    except ValueError:
                        continue
            elif set_name.rsplit("_", 1)[0] in self._resolver.port_groups:
                for port_name in self._resolver.port_groups[set_name.rsplit("_", 1)[0]]:
                    contents.extend(ipaddress.ip_network(ip) for ip in self._resolver.port_ips.get(port_name, ()))
            self._sets.append(contents)
        self._nets = sorted(nets, key=lambda n: (n.version, int(n.network_address), n.prefixlen))
        for proto in ("tcp", "udp", "sctp"):
            cuts = {MIN_PORT, MAX_PORT + 1}
            for _, expr in self._acls:
                if expr is not None:
                    cuts |= {c for c in port_constants(expr).get(proto, ()) if MIN_PORT <= c <= MAX_PORT + 1}
            self._boundaries[proto] = sorted(cuts)

    def signature(self, endpoint: Endpoint) -> tuple[object, ...] | None:
        """Endpoints with equal signatures get equal verdicts everywhere (None: not comparable, e.g. no port)."""
        port = self.port_of(endpoint) if self.available else None
        ip = endpoint.ip
        if port is None or ip is None:
            return None
        named = port if port in self._named_ports else None
        inside = tuple(i for i, net in enumerate(self._nets) if ip.version == net.version and ip in net)
        in_sets = tuple(i for i, members in enumerate(self._sets)
                        if any(ip.version == net.version and ip in net for net in members))
        return (self._groups_of.get(port, frozenset()), named, ip.version, inside, in_sets)

    # -- locating endpoints --

    def port_of(self, endpoint: Endpoint) -> str | None:
        """The logical switch port a packet of this endpoint uses: its own LSP, or the localnet port."""
        if not isinstance(endpoint, Attachment):
            return self.localnet_port if self.localnet_port in self._ports else None
        by_name = ovnk_names.pod_port(endpoint.nad_ref, endpoint.ref)
        if by_name in self._ports:
            return by_name
        # VMs' ports are named after the virt-launcher pod: find the port carrying the workload's address.
        for name in sorted(self._ports):
            port = self.nb.ports.get(name)
            if port is None or port.type:
                continue
            if endpoint.ip is not None and endpoint.ip in port.ips:
                return name
            if endpoint.mac and endpoint.mac in port.macs:
                return name
        return None

    def port_row(self, endpoint: Endpoint) -> LogicalPort | None:
        name = self.port_of(endpoint)
        return self.nb.ports.get(name) if name else None

    # -- verdicts --

    def _required_ports(self, expr: Expr | None, field: str) -> frozenset[str] | None:
        """The ports a top-level `field == @pg` / `field == "name"` conjunct limits an ACL to (None: no limit)."""
        if expr is None:
            return None
        for item in expr.items if isinstance(expr, And) else (expr,):
            if isinstance(item, Compare) and item.field == field and item.op == "==":
                ports: set[str] = set()
                for c in item.values:
                    if c.kind == "portgroup" and str(c.value) in self._resolver.port_groups:
                        ports |= self._resolver.port_groups[str(c.value)]
                    elif c.kind == "str":
                        ports.add(str(c.value))
                    else:
                        return None
                return frozenset(ports)
        return None

    def _stage(self, direction: str, after_lb: bool | None, pkt: Packet) -> StageResult:
        port = pkt.inport if direction == "from-lport" else pkt.outport
        for ranked in self._ranked[(direction, after_lb)]:
            decided: Acl | None = None
            for acl, expr, required in ranked:
                if required is not None and port not in required:
                    continue
                hit = evaluate(expr, pkt, self._resolver) if expr is not None else None
                if hit is None:
                    return StageResult(Verdict.UNKNOWN, (Reason(acl.short, f"cannot evaluate: {acl.match}"),))
                if hit:
                    decided = acl
                    break
            if decided is None or decided.action == "pass":
                continue
            verdict = Verdict.ALLOWED if decided.action in ALLOW_ACTIONS else Verdict.DENIED
            return StageResult(verdict, (acl_reason(decided),))
        return StageResult(Verdict.ALLOWED, ())

    def judge(self, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol) -> Judgement:
        if not self.available:
            return Judgement(Verdict.UNKNOWN, (Reason("nb/switch-missing", self.switch_name),))
        inport, outport = self.port_of(source), self.port_of(destination)
        missing = [e.key for e, p in ((source, inport), (destination, outport)) if p is None]
        if missing:
            return Judgement(Verdict.UNKNOWN, tuple(Reason("nb/port-missing", f"no logical switch port for {k}") for k in missing))
        assert source.ip is not None and destination.ip is not None
        key = (inport, outport, source.ip, destination.ip, protocol, port)
        hit = self._judged.get(key)
        if hit is None:
            hit = self._judged[key] = self._judge(inport, outport, source, destination, port, protocol)
        return hit

    def _judge(self, inport: str | None, outport: str | None, source: Endpoint, destination: Endpoint, port: int,
               protocol: Protocol) -> Judgement:
        assert source.ip is not None and destination.ip is not None
        pkt = Packet(inport, None, source.ip, destination.ip, protocol.value.lower(), port)
        stages = [self._stage("from-lport", False, pkt), self._stage("from-lport", True, pkt),
                  self._stage("to-lport", None, Packet(inport, outport, source.ip, destination.ip, protocol.value.lower(), port))]
        reasons = tuple(r for s in stages for r in s.reasons)
        if any(s.verdict is Verdict.DENIED for s in stages):
            return Judgement(Verdict.DENIED, tuple(r for s in stages if s.verdict is Verdict.DENIED for r in s.reasons))
        if any(s.verdict is Verdict.UNKNOWN for s in stages):
            return Judgement(Verdict.UNKNOWN, reasons)
        return Judgement(Verdict.ALLOWED, reasons or (Reason("nb/no-acl", "no ACL matches: OVN allows"),))

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
        """Policies that should select workloads here but own no port group on this node."""
        owned = {pg.external_ids and dict(pg.external_ids).get(ovnk_names.OWNER_NAME) for pg in self.nb.port_groups.values()}
        out = []
        for policy in policies:
            if f"{policy.ref.namespace}:{policy.ref.name}" not in owned:
                out.append(Finding(
                    FindingKind.POLICY_NOT_PROGRAMMED,
                    f"no port group owned by {policy.ref.namespace}:{policy.ref.name} in OVN northbound",
                    policy.ref, self.network.ref, Severity.ERROR))
        return out


def _collect(expr: Expr, names: set[str], nets: set[ipaddress.IPv4Network | ipaddress.IPv6Network],
             sets: set[str]) -> None:
    """Port names, address constants and address sets an ACL match mentions."""
    if isinstance(expr, Compare):
        for c in expr.values:
            if c.kind == "str" and expr.field in ("inport", "outport"):
                names.add(str(c.value))
            elif c.kind == "net" and isinstance(c.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                nets.add(c.value)
            elif c.kind == "addrset":
                sets.add(str(c.value))
    elif isinstance(expr, Not):
        _collect(expr.inner, names, nets, sets)
    elif isinstance(expr, (And, Or)):
        for item in expr.items:
            _collect(item, names, nets, sets)


def detect_ovnk(nb: NbSnapshot, network: Network, profile_name: str, end_port_supported: bool
                ) -> tuple[list[str], list[Finding]]:
    """What the programmed ACLs reveal about the OVN-Kubernetes version, and where it contradicts the profile
    segcheck was told to expect (--ovnk-version)."""
    controller = ovnk_names.network_controller(network.cni_name)
    owned = [a for a in nb.acls.values()
             if a.ids.get(ovnk_names.OWNER_CONTROLLER) == controller and a.ids.get(ovnk_names.OWNER_TYPE) == "NetworkPolicy"]
    seen: list[str] = []
    if any(ovnk_names.PORT_POLICY_PROTOCOL in a.ids for a in owned):
        seen.append("one ACL per rule, peer and protocol (port-policy-protocol)")
    if any(ovnk_names.PORT_POLICY_INDEX in a.ids for a in owned):
        seen.append("one ACL per port entry (port-policy-index: an older OVN-K)")
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
            f"but segcheck expects OVN-K {profile_name} behaviour: run with --ovnk-version 2025",
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
        lport = ovnk_names.localnet_port(network.cni_name)
        wanted = [(bridge, ovnk_names.patch_port_to_br_int(lport)), ("br-int", ovnk_names.patch_port_from_br_int(lport))]
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
