"""ACL match clauses as OVN-Kubernetes writes them (gress_policy.go, libovsdb/util/acl.go), ordered
`<l3> && <l4> && <port match>`."""

from __future__ import annotations

from typing import Iterable, Sequence

from ..model import PortRange
from ..policy import Direction, IPBlock, IPNetwork
from .ids import NO_PROTOCOL

ARP_ALLOW_MATCH = "(arp || nd)"


def _l3_side(direction: Direction) -> str:
    return "src" if direction is Direction.INGRESS else "dst"


def _family(net: IPNetwork) -> str:
    return "ip6" if net.version == 6 else "ip4"


def port_match(pg: str, direction: Direction) -> str:
    """`GetACLMatch`: ingress ACLs act on the port group's outport, egress ones on its inport."""
    return f"outport == @{pg}" if direction is Direction.INGRESS else f"inport == @{pg}"


def ip_block_match(block: IPBlock, direction: Direction) -> str:
    """`ip4.dst == 10.0.0.0/24`, with excepts `... && ip4.dst != {10.0.0.16/28, 10.0.0.32/28}`."""
    field = f"{_family(block.cidr)}.{_l3_side(direction)}"
    match = f"{field} == {block.cidr}"
    if block.excepts:
        match += f" && {field} != {{{', '.join(str(e) for e in block.excepts)}}}"
    return match


def address_set_match(v4_sets: Iterable[str], v6_sets: Iterable[str], direction: Direction) -> str:
    """`getL3MatchFromAddressSet`: `ip4.src == {$a1, $a2}`; dual stack `(ip4.src == {..} || ip6.src == {..})`;
    "" when no set is selected (OVN-K then writes no ACL)."""
    side = _l3_side(direction)
    parts = [f"ip{fam}.{side} == {{{', '.join(sorted('$' + s for s in sets))}}}"
             for fam, sets in ((4, list(v4_sets)), (6, list(v6_sets))) if sets]
    return parts[0] if len(parts) == 1 else f"({' || '.join(parts)})" if parts else ""


def all_ips_match(families: Sequence[int]) -> str:
    """`allIPsMatch`: from the network's IP families (an IPAM-less network counts as IPv4)."""
    fams = set(families)
    return "(ip4 || ip6)" if fams == {4, 6} else "ip6" if fams == {6} else "ip4"


def l4_matches(ranges: Sequence[PortRange], ports_listed: bool = True) -> list[tuple[str, str | None]]:
    """(port-policy-protocol, L4 clause) per protocol in order of appearance (`getProtocolPortsMap`,
    `getL4Match`). A rule without ports is one entry ("None", None); listed ports that resolve to nothing
    allow nothing.

    As upstream: a whole-protocol entry adds no clause, so `{TCP}` plus `{TCP, 80}` programs port 80 only."""
    if not ports_listed:
        return [(NO_PROTOCOL, None)]
    out: list[tuple[str, str | None]] = []
    for proto in dict.fromkeys(r.protocol for r in ranges):
        p = proto.value.lower()
        mine = [r for r in ranges if r.protocol is proto and not r.is_all]
        singles = list(dict.fromkeys(str(r.first) for r in mine if r.first == r.last))
        spans = list(dict.fromkeys(f"{r.first}<={p}.dst<={r.last}" for r in mine if r.first != r.last))
        clauses = ([f"{p}.dst=={singles[0]}" if len(singles) == 1 else f"{p}.dst=={{{','.join(singles)}}}"]
                   if singles else []) + spans
        if not clauses:
            out.append((p, p))
        else:
            out.append((p, f"{p} && {clauses[0]}" if len(clauses) == 1 else f"{p} && ({' || '.join(clauses)})"))
    return out
