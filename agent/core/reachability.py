"""Expected reachability of one network, computed by equivalence classes.

Endpoints that are selected by the same policies and matched by the same live rule peers behave identically,
so they form one class. Ports are split at rule boundaries into "atoms"; a set of ports is a bitmask over
atoms. A pair's verdict is the AND of two halves: the source's egress towards the destination and the
destination's ingress from the source. Each half is fixed by (the side's policies, the rules of that side
that match the peer), so halves are computed once and shared by every class pair that has them, and so are
the verdict segments (port ranges with one verdict and one provenance) of each pair of halves.

Semantics (shared/design.md): a workload is isolated for a direction once an enforced policy selecting it
lists that direction in policyTypes; it then accepts exactly the union of the rules of *all* policies
selecting it for that direction (OVN-K programs allows whatever policyTypes says). Attachment to
attachment needs egress at the source and ingress at the destination; external endpoints are not policed,
so only the attachment's side counts.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterator, Sequence

from .enforcement import DEFAULT_PROFILE, EnforcedPolicy, EnforcedRule, OvnkProfile, enforced_policies
from .inventory import Inventory
from .model import (
    MAX_PORT,
    MIN_PORT,
    Attachment,
    Endpoint,
    IPAddress,
    Judgement,
    PortRange,
    Protocol,
    Reason,
    Ref,
    Verdict,
)
from .policy import Direction, Peer

PROTOCOLS = tuple(Protocol)


# --- port atoms ---------------------------------------------------------------------------------------------

class PortAtoms:
    """The port space of each protocol cut at every rule boundary; atom i is a PortRange."""

    def __init__(self, ranges: Sequence[PortRange]):
        cuts: dict[Protocol, set[int]] = {p: {MIN_PORT, MAX_PORT + 1} for p in PROTOCOLS}
        for r in ranges:
            cuts[r.protocol].update((r.first, r.last + 1))
        self.atoms: list[PortRange] = []
        self._starts: dict[Protocol, list[int]] = {}
        self._offset: dict[Protocol, int] = {}
        for proto in PROTOCOLS:
            bounds = sorted(cuts[proto])
            self._offset[proto] = len(self.atoms)
            self._starts[proto] = bounds[:-1]
            self.atoms.extend(PortRange(proto, a, b - 1) for a, b in zip(bounds, bounds[1:]))
        self.full = (1 << len(self.atoms)) - 1

    def index(self, port: int, protocol: Protocol) -> int:
        return self._offset[protocol] + bisect.bisect_right(self._starts[protocol], port) - 1

    def mask(self, ranges: Sequence[PortRange]) -> int:
        m = 0
        for r in ranges:
            lo = self.index(r.first, r.protocol)
            hi = self.index(r.last, r.protocol)
            m |= ((1 << (hi - lo + 1)) - 1) << lo
        return m

    def protocol_mask(self, protocol: Protocol) -> int:
        start = self._offset[protocol]
        end = start + len(self._starts[protocol])
        return ((1 << (end - start)) - 1) << start


# --- IP intervals -------------------------------------------------------------------------------------------

def _intervals(peer: Peer) -> list[tuple[int, int, int]]:
    """(version, first, last) integer intervals covered by an ipBlock peer (cidr minus excepts)."""
    assert peer.ip_block is not None
    block = peer.ip_block
    pieces = [(int(block.cidr.network_address), int(block.cidr.broadcast_address))]
    for ex in sorted(block.excepts, key=lambda n: int(n.network_address)):
        lo, hi = int(ex.network_address), int(ex.broadcast_address)
        nxt = []
        for a, b in pieces:
            if hi < a or lo > b:
                nxt.append((a, b))
                continue
            if a < lo:
                nxt.append((a, lo - 1))
            if hi < b:
                nxt.append((hi + 1, b))
        pieces = nxt
    return [(block.cidr.version, a, b) for a, b in pieces]


class IPRuleIndex:
    """Maps an address to the bitmask of rules one of whose ipBlock peers contains it (a sweep over
    interval boundaries, so each lookup is a bisect rather than a scan of every block)."""

    def __init__(self, rule_intervals: dict[int, list[tuple[int, int, int]]]):
        self._bounds: dict[int, list[int]] = {}
        self._masks: dict[int, list[int]] = {}
        for version in (4, 6):
            events: dict[int, list[tuple[int, int]]] = {}
            for bit, intervals in rule_intervals.items():
                for v, a, b in intervals:
                    if v == version:
                        events.setdefault(a, []).append((bit, 1))
                        events.setdefault(b + 1, []).append((bit, -1))
            counts: dict[int, int] = {}
            bounds, masks, mask = [], [], 0
            for point in sorted(events):
                for bit, delta in events[point]:
                    c = counts.get(bit, 0) + delta
                    counts[bit] = c
                    if c > 0:
                        mask |= 1 << bit
                    else:
                        mask &= ~(1 << bit)
                bounds.append(point)
                masks.append(mask)
            self._bounds[version] = bounds
            self._masks[version] = masks

    def lookup(self, ip: IPAddress | None) -> int:
        if ip is None:
            return 0
        bounds = self._bounds[ip.version]
        i = bisect.bisect_right(bounds, int(ip)) - 1
        return self._masks[ip.version][i] if i >= 0 else 0


# --- the matrix ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    """How one endpoint is treated as a policy *target* (which policies select it)."""

    policies: tuple[int, ...]  # indices into NetworkReachability.policies
    isolated: frozenset[Direction]


UNSELECTED = Side((), frozenset())


@dataclass(frozen=True)
class Half:
    """One side's treatment of one direction towards a peer: not isolated (every port passes), or isolated
    and open exactly where one of the side's rules that match the peer allows. Reasons are built once here,
    since every judged port range of every class pair with this half cites them."""

    isolated: bool
    rules: tuple[tuple[Reason, int], ...]  # (the rule's reason, its allowed port atoms), in policy and rule order
    otherwise: tuple[Reason, ...]  # not isolated: why; isolated: the policies that isolate, where no rule allows

    @property
    def edges(self) -> int:
        """Atoms where some rule's port set starts or stops (a verdict or its provenance can change there)."""
        out = 0
        for _, ports in self.rules:
            out |= ports ^ (ports << 1)
        return out

    def decide(self, atom: int) -> tuple[bool, list[Reason]]:
        if not self.isolated:
            return True, list(self.otherwise)
        allowing = [reason for reason, ports in self.rules if ports >> atom & 1]
        if allowing:
            return True, allowing
        return False, list(self.otherwise)


def make_half(direction: Direction, isolated: bool, selected: bool, rules: Sequence[tuple[str, int]],
              isolating: Sequence[Ref]) -> Half:
    d = direction.value
    where = "source" if direction is Direction.EGRESS else "destination"
    if not isolated:
        detail = "no selecting policy isolates this direction" if selected else "not selected by any policy"
        return Half(False, (), (Reason(f"{where}:{d}-not-isolated", detail),))
    return Half(True, tuple((Reason(ref, f"allows {d} at {where}"), ports) for ref, ports in rules),
                tuple(Reason(f"{ref}:{d}", f"isolates {d} at {where}; no rule allows") for ref in isolating))


def judge_halves(egress: Half, ingress: Half, atom: int) -> Judgement:
    """Egress at the source AND ingress at the destination; the reasons name what decided."""
    ok_out, out_reasons = egress.decide(atom)
    ok_in, in_reasons = ingress.decide(atom)
    if ok_out and ok_in:
        reasons = [r for r in out_reasons + in_reasons if not r.ref.endswith("-not-isolated")] or out_reasons[:1]
        return Judgement(Verdict.ALLOWED, tuple(reasons))
    return Judgement(Verdict.DENIED, tuple((out_reasons if not ok_out else []) + (in_reasons if not ok_in else [])))


@dataclass(frozen=True)
class Cell:
    """One row of the expected matrix: a verdict for a pair over a port range of one protocol.
    `ports is None` means every port of the pair not listed in another cell."""

    source: str
    destination: str
    protocol: Protocol
    ports: PortRange | None
    judgement: Judgement

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict


Segments = tuple[tuple[PortRange, Judgement], ...]
# A pair's cells without the pair's names: (protocol, ports or None for "the rest", judgement).
Shape = tuple[tuple[Protocol, PortRange | None, Judgement], ...]
LabelKey = tuple[str, tuple[tuple[str, str], ...]]  # (namespace, labels) of an attachment


class NetworkReachability:
    """The expected plane of one network: classes of endpoints, and per pair of classes its verdicts."""

    def __init__(self, inventory: Inventory, network: Ref, extra: Sequence[Endpoint] = (),
                 profile: OvnkProfile = DEFAULT_PROFILE, namespace: str | None = None):
        self.network = network
        self.profile = profile
        view = enforced_policies(inventory, network, profile)
        self.findings = view.findings
        self.policies: tuple[EnforcedPolicy, ...] = view.policies
        self.rules: list[EnforcedRule] = [r for p in self.policies for r in p.rules]
        self.atoms = PortAtoms([pr for r in self.rules for pr in r.port_ranges])
        self._rule_ports = [self.atoms.mask(r.port_ranges) for r in self.rules]
        self._policy_rules = [
            {d: [i for i, r in enumerate(self.rules) if r.policy == p.ref and r.direction is d] for d in Direction}
            for p in self.policies
        ]
        self._inventory = inventory
        endpoints: list[Endpoint] = list(inventory.attachments_on(network))
        if namespace is not None:
            endpoints = [e for e in endpoints if e.ref.namespace == namespace]  # type: ignore[union-attr]
        endpoints += inventory.externals_on(network)
        endpoints += [e for e in extra if e.key not in {x.key for x in endpoints}]
        self.endpoints: list[Endpoint] = endpoints
        self._ip_index = IPRuleIndex({
            bit: [iv for peer in r.peers if peer.ip_block is not None for iv in _intervals(peer)]
            for bit, r in enumerate(self.rules)
        })
        self._side_ids: dict[tuple[int, ...], int] = {}
        self._side_rules: dict[Direction, list[int]] = {d: [] for d in Direction}
        self._classify()
        self._egress_rules, self._ingress_rules = self._side_rules[Direction.EGRESS], self._side_rules[Direction.INGRESS]
        # Per direction: (side id, the side's rules matching the peer) -> half id. Two dicts, not an enum in the
        # key: this is the lookup every class pair makes.
        self._half_ids: dict[Direction, dict[tuple[int, int], int]] = {d: {} for d in Direction}
        self._egress_ids, self._ingress_ids = self._half_ids[Direction.EGRESS], self._half_ids[Direction.INGRESS]
        self._halves: list[Half] = []
        self._shape_of_halves: dict[tuple[int, int], int] = {}
        self._shape_ids: dict[Shape, int] = {}
        self.shapes: list[Shape] = []  # distinct pair shapes, numbered in the order they are first met
        self._segment_memo: dict[tuple[int, int, Protocol], Segments] = {}

    # -- classification --

    def _selector_masks(self, keys: list[LabelKey]) -> list[int]:
        """Per (namespace, labels) key: the rules one of whose selector peers (or an empty peer list) matches.
        Each distinct peer is evaluated once against every key, with selector results cached by label set."""
        masks = [0] * len(keys)
        label_maps = [dict(labels) for _, labels in keys]
        ns_labels = {ns: self._inventory.namespace_labels(ns) for ns, _ in keys}
        pod_cache: dict[tuple[object, int], bool] = {}
        ns_cache: dict[tuple[object, str], bool] = {}
        peer_hits: dict[tuple[object, object, str | None], list[int]] = {}
        for bit, rule in enumerate(self.rules):
            hits: set[int] = set()
            if not rule.peers:
                hits.update(range(len(keys)))
            for peer in rule.peers:
                if not peer.uses_selectors:
                    continue
                own_ns = rule.policy.namespace if peer.namespace_selector is None else None
                pk = (peer.pod_selector, peer.namespace_selector, own_ns)
                if pk not in peer_hits:
                    found = []
                    for k, (ns, _) in enumerate(keys):
                        if own_ns is not None:
                            if ns != own_ns:
                                continue
                        else:
                            nk = (peer.namespace_selector, ns)
                            if nk not in ns_cache:
                                ns_cache[nk] = peer.namespace_selector.matches(ns_labels[ns])  # type: ignore[union-attr]
                            if not ns_cache[nk]:
                                continue
                        if peer.pod_selector is not None:
                            ck = (peer.pod_selector, k)
                            if ck not in pod_cache:
                                pod_cache[ck] = peer.pod_selector.matches(label_maps[k])
                            if not pod_cache[ck]:
                                continue
                        found.append(k)
                    peer_hits[pk] = found
                hits.update(peer_hits[pk])
            for k in hits:
                masks[k] |= 1 << bit
        return masks

    def _sides_of(self, keys: list[LabelKey]) -> list[Side]:
        by_ns: dict[str, list[int]] = {}
        for k, (ns, _) in enumerate(keys):
            by_ns.setdefault(ns, []).append(k)
        chosen: list[list[int]] = [[] for _ in keys]
        for i, p in enumerate(self.policies):
            for k in by_ns.get(p.ref.namespace, ()):
                if p.pod_selector.matches(dict(keys[k][1])):
                    chosen[k].append(i)
        return [Side(tuple(c), frozenset(d for i in c for d in self.policies[i].isolates)) for c in chosen]

    def _side_id(self, side: Side) -> int:
        """Sides are numbered once; per side and direction, the rules that can open ports there (none when
        that direction is not isolated: then every port passes whatever the rules say)."""
        sid = self._side_ids.get(side.policies)
        if sid is None:
            sid = self._side_ids[side.policies] = len(self._side_ids)
            for d in Direction:
                bits = [b for pi in side.policies for b in self._policy_rules[pi][d] if self._rule_ports[b]]
                self._side_rules[d].append(sum(1 << b for b in bits) if d in side.isolated else 0)
        return sid

    def _classify(self) -> None:
        key_index: dict[LabelKey, int] = {}
        for ep in self.endpoints:
            if isinstance(ep, Attachment):
                key_index.setdefault((ep.ref.namespace, ep.labels), len(key_index))
        keys = list(key_index)
        sides = self._sides_of(keys)
        side_ids = [self._side_id(side) for side in sides]
        unselected_id = self._side_id(UNSELECTED)
        # Only rules that some endpoint's side can apply tell peers apart; the others cannot change a verdict.
        live = 0
        for d in Direction:
            for mask in self._side_rules[d]:
                live |= mask
        sel_masks = [m & live for m in self._selector_masks(keys)]
        empty_peers = sum(1 << bit for bit, r in enumerate(self.rules) if not r.peers) & live
        class_of: dict[tuple[int, int, bool], int] = {}
        self.sides: list[Side] = []
        self.peer_masks: list[int] = []
        self._class_side: list[int] = []
        self.members: list[list[Endpoint]] = []
        self.class_index: dict[str, int] = {}
        for ep in self.endpoints:
            if isinstance(ep, Attachment):
                k = key_index[(ep.ref.namespace, ep.labels)]
                side, sid, mask = sides[k], side_ids[k], sel_masks[k]
            else:
                side, sid, mask = UNSELECTED, unselected_id, empty_peers
            mask |= self._ip_index.lookup(ep.ip) & live
            # Workloads and other endpoints never share a class: pairs of two non-workloads have no cells.
            ck = (sid, mask, isinstance(ep, Attachment))
            idx = class_of.get(ck)
            if idx is None:
                idx = class_of[ck] = len(self.sides)
                self.sides.append(side)
                self.peer_masks.append(mask)
                self._class_side.append(sid)
                self.members.append([])
            self.members[idx].append(ep)
            self.class_index[ep.key] = idx

    # -- halves --

    def _new_half(self, side_class: int, direction: Direction, key: tuple[int, int]) -> int:
        hid = self._half_ids[direction][key] = len(self._halves)
        self._halves.append(self._make_half(self.sides[side_class], direction, key[1]))
        return hid

    def _make_half(self, side: Side, direction: Direction, relevant: int) -> Half:
        rules = [(self.rules[b].ref, self._rule_ports[b]) for b in range(relevant.bit_length()) if relevant >> b & 1]
        isolating = [self.policies[pi].ref for pi in side.policies if direction in self.policies[pi].isolates]
        return make_half(direction, direction in side.isolated, bool(side.policies), rules, isolating)

    def halves(self, src_class: int, dst_class: int) -> tuple[int, int]:
        """The ids of a class pair's egress and ingress halves: pairs with equal ids have equal verdicts."""
        src, dst = self._class_side[src_class], self._class_side[dst_class]
        out_key = (src, self.peer_masks[dst_class] & self._egress_rules[src])
        in_key = (dst, self.peer_masks[src_class] & self._ingress_rules[dst])
        e = self._egress_ids.get(out_key)
        if e is None:
            e = self._new_half(src_class, Direction.EGRESS, out_key)
        i = self._ingress_ids.get(in_key)
        if i is None:
            i = self._new_half(dst_class, Direction.INGRESS, in_key)
        return e, i

    # -- verdicts --

    def judge(self, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol) -> Judgement:
        e, i = self.halves(self._class_of(source), self._class_of(destination))
        return judge_halves(self._halves[e], self._halves[i], self.atoms.index(port, protocol))

    def judge_directions(self, s: int, d: int, directions: frozenset[Direction], port: int,
                         protocol: Protocol) -> Verdict:
        """The expected verdict of only some halves of a class pair (egress at the source, ingress at the
        destination): what a node that enforces just those halves should do (interconnect zones)."""
        e, i = self.halves(s, d)
        atom = self.atoms.index(port, protocol)
        chosen = ([self._halves[e]] if Direction.EGRESS in directions else []) + \
            ([self._halves[i]] if Direction.INGRESS in directions else [])
        return Verdict.ALLOWED if all(h.decide(atom)[0] for h in chosen) else Verdict.DENIED

    def _class_of(self, endpoint: Endpoint) -> int:
        idx = self.class_index.get(endpoint.key)
        if idx is None:
            raise KeyError(f"{endpoint.key} is not on {self.network}")
        return idx

    def segments(self, s: int, d: int, proto: Protocol) -> list[tuple[PortRange, Judgement]]:
        """Maximal port ranges of one protocol with one verdict and one provenance, from class s to class d."""
        return list(self._half_segments(*self.halves(s, d), proto))

    def _half_segments(self, e: int, i: int, proto: Protocol) -> Segments:
        key = (e, i, proto)
        hit = self._segment_memo.get(key)
        if hit is None:
            hit = self._segment_memo[key] = self._compute_segments(self._halves[e], self._halves[i], proto)
        return hit

    def _compute_segments(self, egress: Half, ingress: Half, proto: Protocol) -> Segments:
        """Judged once per run of atoms between rule edges, not once per atom."""
        span = self.atoms.protocol_mask(proto)
        first = (span & -span).bit_length() - 1
        cuts = ((egress.edges | ingress.edges) & span) | 1 << first
        starts = []
        while cuts:
            low = cuts & -cuts
            starts.append(low.bit_length() - 1)
            cuts ^= low
        ends = [a - 1 for a in starts[1:]] + [span.bit_length() - 1]
        out: list[tuple[PortRange, Judgement]] = []
        for lo, hi in zip(starts, ends):
            judgement = judge_halves(egress, ingress, lo)
            rng = PortRange(proto, self.atoms.atoms[lo].first, self.atoms.atoms[hi].last)
            if out and out[-1][1] == judgement:
                out[-1] = (PortRange(proto, out[-1][0].first, rng.last), judgement)
            else:
                out.append((rng, judgement))
        return tuple(out)

    def shape(self, s: int, d: int) -> Shape:
        """A class pair's cells: per protocol, one `ports=None` entry for the majority verdict and one entry per
        port range that differs. UDP and SCTP are listed only where they differ from TCP's default."""
        return self.shapes[self.shape_id(s, d)]

    def shape_id(self, s: int, d: int) -> int:
        """The number of a class pair's shape: pairs with equal verdicts and provenance share it."""
        halves = self.halves(s, d)
        sid = self._shape_of_halves.get(halves)
        if sid is None:
            shape = self._compute_shape(*halves)
            sid = self._shape_ids.setdefault(shape, len(self.shapes))
            if sid == len(self.shapes):
                self.shapes.append(shape)
            self._shape_of_halves[halves] = sid
        return sid

    def _compute_shape(self, e: int, i: int) -> Shape:
        out: list[tuple[Protocol, PortRange | None, Judgement]] = []
        tcp_default: Verdict | None = None
        for proto in PROTOCOLS:
            segments = self._half_segments(e, i, proto)
            weight: dict[Verdict, int] = {}
            for rng, judgement in segments:
                weight[judgement.verdict] = weight.get(judgement.verdict, 0) + rng.last - rng.first + 1
            default = max(weight, key=lambda v: (weight[v], v is Verdict.DENIED))
            exceptions = [(rng, j) for rng, j in segments if j.verdict is not default]
            if proto is Protocol.TCP:
                tcp_default = default
            elif not exceptions and default is tcp_default:
                continue
            out.append((proto, None, next(j for _, j in segments if j.verdict is default)))
            out.extend((proto, rng, j) for rng, j in exceptions)
        return tuple(out)

    # -- classes --

    def is_workload_class(self, c: int) -> bool:
        return isinstance(self.members[c][0], Attachment)

    def class_policies(self, c: int) -> list[Ref]:
        """The policies that select the members of class c."""
        return [self.policies[pi].ref for pi in self.sides[c].policies]

    def class_pairs(self, src_class: int) -> Iterator[int]:
        """The destination classes of src_class that hold a pair with cells: a pair needs two different
        endpoints, one of them a workload."""
        workload = self.is_workload_class(src_class)
        for d in range(len(self.members)):
            if d == src_class and len(self.members[d]) < 2:
                continue
            if workload or self.is_workload_class(d):
                yield d

    # -- cells --

    def pair_cells(self, source: Endpoint, destination: Endpoint) -> list[Cell]:
        shape = self.shape(self._class_of(source), self._class_of(destination))
        return [Cell(source.key, destination.key, proto, ports, j) for proto, ports, j in shape]

    def cells(self) -> Iterator[Cell]:
        for src in self.endpoints:
            for dst in self.endpoints:
                if src.key == dst.key or (not isinstance(src, Attachment) and not isinstance(dst, Attachment)):
                    continue
                yield from self.pair_cells(src, dst)
