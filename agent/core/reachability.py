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
from typing import Iterable, Iterator, Sequence

from .enforcement import DEFAULT_PROFILE, EnforcedPolicy, EnforcedRule, OvnkProfile, enforced_policies
from .inventory import Inventory
from .model import (
    MAX_PORT,
    MIN_PORT,
    Attachment,
    Endpoint,
    IPAddress,
    address_of,
    families_of,
    Judgement,
    PortRange,
    Protocol,
    Reason,
    Ref,
    Verdict,
)
from .ovnk.families import all_ips_families, selector_families
from .policy import Direction, Peer
from .selectors import MatchMemo

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
        self._protocol_masks = {p: ((1 << len(self._starts[p])) - 1) << self._offset[p] for p in PROTOCOLS}

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
        return self._protocol_masks[protocol]


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

    def decide(self, atom: int) -> Decision:
        if not self.isolated:
            return True, self.otherwise
        allowing = tuple(reason for reason, ports in self.rules if ports >> atom & 1)
        if allowing:
            return True, allowing
        return False, self.otherwise


# One half's answer at one port: passes or not, and why.
Decision = tuple[bool, tuple[Reason, ...]]


def make_half(direction: Direction, isolated: bool, selected: bool, rules: Sequence[tuple[str, int]],
              isolating: Sequence[Ref]) -> Half:
    d = direction.value
    where = "source" if direction is Direction.EGRESS else "destination"
    if not isolated:
        detail = "no selecting policy isolates this direction" if selected else "not selected by any policy"
        return Half(False, (), (Reason(f"{where}:{d}-not-isolated", detail),))
    return Half(True, tuple((Reason(ref, f"allows {d} at {where}"), ports) for ref, ports in rules),
                tuple(Reason(f"{ref}:{d}", f"isolates {d} at {where}; no rule allows") for ref in isolating))


def combine(egress: Decision, ingress: Decision) -> Judgement:
    """Egress at the source AND ingress at the destination; the reasons name what decided."""
    (ok_out, out_reasons), (ok_in, in_reasons) = egress, ingress
    if ok_out and ok_in:
        reasons = tuple(r for r in out_reasons + in_reasons if not r.ref.endswith("-not-isolated")) or out_reasons[:1]
        return Judgement(Verdict.ALLOWED, reasons)
    return Judgement(Verdict.DENIED, (out_reasons if not ok_out else ()) + (in_reasons if not ok_in else ()))


@dataclass(frozen=True)
class Cell:
    """One row of the expected matrix: a verdict for a pair over a port range of one protocol.
    `ports is None` means every port of the pair not listed in another cell. On a dual-stack network each
    family's traffic is a cell of its own (`family` 4 or 6); elsewhere `family` is None."""

    source: str
    destination: str
    protocol: Protocol
    ports: PortRange | None
    judgement: Judgement
    family: int | None = None

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict


Segments = tuple[tuple[PortRange, Judgement], ...]
Runs = tuple[tuple[int, int], ...]  # (first atom, decision id) of each run of one half over one protocol
# A pair's cells without the pair's names: (protocol, ports or None for "the rest", judgement, IP family or None).
Shape = tuple[tuple[Protocol, PortRange | None, Judgement, int | None], ...]
LabelKey = tuple[str, tuple[tuple[str, str], ...]]  # (namespace, labels) of an attachment


class NetworkReachability:
    """The expected plane of one network: classes of endpoints, and per pair of classes its verdicts."""

    def __init__(self, inventory: Inventory, network: Ref, extra: Sequence[Endpoint] = (),
                 profile: OvnkProfile = DEFAULT_PROFILE, namespace: str | None = None,
                 matches: MatchMemo | None = None):
        """`matches`: selector answers kept from the evaluation of a previous world (the agent's re-plans);
        without it, each distinct (selector, label set) is matched once here."""
        self.network = network
        self.profile = profile
        self._matches = matches if matches is not None else MatchMemo()
        on_network = inventory.attachments_on(network)
        view = enforced_policies(inventory, network, profile, matches=self._matches, attachments=on_network)
        self.findings = view.findings
        self.policies: tuple[EnforcedPolicy, ...] = view.policies
        self.rules: list[EnforcedRule] = [r for p in self.policies for r in p.rules]
        self.atoms = PortAtoms([pr for r in self.rules for pr in r.port_ranges])
        self._rule_ports = [self.atoms.mask(r.port_ranges) for r in self.rules]
        # Per policy and direction, the bits of its rules (self.rules lists them policy by policy).
        self._policy_rules: list[dict[Direction, list[int]]] = []
        bit = 0
        for p in self.policies:
            self._policy_rules.append({d: [bit + k for k, r in enumerate(p.rules) if r.direction is d] for d in Direction})
            bit += len(p.rules)
        self._inventory = inventory
        endpoints: list[Endpoint] = list(on_network)
        # IP families as OVN-K programs them (ovnk.families): selector peers match only the network's families,
        # a rule without peers only those of `allIPsMatch` (IPv4 on an IPAM-less network), an ipBlock its own.
        net = inventory.networks.get(network)
        self._selector_families = selector_families(net) if net is not None else frozenset({4, 6})
        self._all_ips_families = all_ips_families(net) if net is not None else frozenset({4, 6})
        seen = {ip.version for e in endpoints + list(inventory.externals_on(network)) for ip in e.ips}
        # Dual-stack: a pair's IPv4 and IPv6 packets are judged apart, each at the first address of its family.
        self.dual_stack = {4, 6} <= seen | (set(self._selector_families) if net is not None else set())
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
        self._side_by_id: list[Side] = []
        self._side_rules: dict[Direction, list[int]] = {d: [] for d in Direction}
        self._classify()
        self._egress_rules, self._ingress_rules = self._side_rules[Direction.EGRESS], self._side_rules[Direction.INGRESS]
        # Per direction: (side id, the side's rules matching the peer) -> half id. Two dicts, not an enum in the
        # key: this is the lookup every class pair makes.
        self._half_ids: dict[Direction, dict[tuple[int, int], int]] = {d: {} for d in Direction}
        self._egress_ids, self._ingress_ids = self._half_ids[Direction.EGRESS], self._half_ids[Direction.INGRESS]
        self._halves: list[Half] = []
        self._shape_of_halves: dict[int, int] = {}  # egress half << 32 | ingress half -> shape id
        self._egress_rows: dict[int, list[int]] = {}  # source side id -> egress half towards each class
        self._shape_ids: dict[Shape, int] = {}
        self.shapes: list[Shape] = []  # distinct pair shapes, numbered in the order they are first met
        # Each half cut into runs of one decision per protocol (by protocol index); decisions numbered;
        # judgements per decision pair; segments per pair of runs; shapes per protocols' segments. Each level
        # is shared by everything above it that has the same parts.
        self._runs: list[dict[int, Runs]] = [{} for _ in PROTOCOLS]
        self._decision_ids: dict[Decision, int] = {}
        self._decisions: list[Decision] = []
        self._judgements: dict[tuple[int, int], Judgement] = {}
        self._segment_ids: dict[tuple[Runs, Runs], int] = {}
        self._segments: list[Segments] = []
        self._shape_of_segments: dict[tuple[int, ...], int] = {}
        self._dual_shapes: dict[tuple[tuple[int | None, tuple[int, int]], ...], int] = {}

    # -- classification --

    def _selector_masks(self, keys: list[LabelKey]) -> list[int]:
        """Per (namespace, labels) key: the rules one of whose selector peers (or an empty peer list) matches.
        Each distinct peer is evaluated once against every key, with selector results cached by label set."""
        masks = [0] * len(keys)
        ns_labels = {ns: tuple(sorted(self._inventory.namespace_labels(ns).items())) for ns, _ in keys}
        ns_cache: dict[tuple[object, str], bool] = {}
        peer_hits: dict[tuple[object, object, str | None], list[int]] = {}
        # What a peer picks depends on the keys and their namespaces' labels only: scanned again when those change.
        universe = self._matches.universe(tuple((ns, labels, ns_labels[ns]) for ns, labels in keys))
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
                    peer_hits[pk] = self._matches.chosen(pk, universe, lambda: self._peer_scan(peer, own_ns, keys,
                                                                                             ns_labels, ns_cache))
                hits.update(peer_hits[pk])
            for k in hits:
                masks[k] |= 1 << bit
        return masks

    def _peer_scan(self, peer: Peer, own_ns: str | None, keys: list[LabelKey],
                   ns_labels: dict[str, tuple[tuple[str, str], ...]], ns_cache: dict[tuple[object, str], bool]) -> list[int]:
        """The keys one selector peer matches (`own_ns`: the policy's namespace, when the peer has no
        namespaceSelector)."""
        found = []
        pod_matches = self._matches.matcher(peer.pod_selector) if peer.pod_selector is not None else None
        ns_matches = self._matches.matcher(peer.namespace_selector) if peer.namespace_selector is not None else None
        for k, (ns, labels) in enumerate(keys):
            if own_ns is not None:
                if ns != own_ns:
                    continue
            else:
                nk = (peer.namespace_selector, ns)
                if nk not in ns_cache:
                    ns_cache[nk] = ns_matches(ns_labels[ns])  # type: ignore[misc]
                if not ns_cache[nk]:
                    continue
            if pod_matches is not None and not pod_matches(labels):
                continue
            found.append(k)
        return found

    def _sides_of(self, keys: list[LabelKey]) -> list[Side]:
        by_ns: dict[str, list[int]] = {}
        for k, (ns, _) in enumerate(keys):
            by_ns.setdefault(ns, []).append(k)
        chosen: list[list[int]] = [[] for _ in keys]
        universes = {ns: self._matches.universe(tuple(keys[k][1] for k in ks)) for ns, ks in by_ns.items()}
        for i, p in enumerate(self.policies):
            ks = by_ns.get(p.ref.namespace)
            if not ks:
                continue
            universe = universes[p.ref.namespace]
            selects = self._matches.matcher(p.pod_selector)
            picked = self._matches.chosen(p.pod_selector, universe, lambda: [
                j for j, labels in enumerate(universe.items) if selects(labels)])  # type: ignore[arg-type]
            for j in picked:
                chosen[ks[j]].append(i)
        return [Side(tuple(c), frozenset(d for i in c for d in self.policies[i].isolates)) for c in chosen]

    def _side_id(self, side: Side) -> int:
        """Sides are numbered once; per side and direction, the rules that can open ports there (none when
        that direction is not isolated: then every port passes whatever the rules say)."""
        sid = self._side_ids.get(side.policies)
        if sid is None:
            sid = self._side_ids[side.policies] = len(self._side_ids)
            self._side_by_id.append(side)
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
        class_of: dict[tuple[int, object, bool], int] = {}
        self.sides: list[Side] = []
        self.peer_masks: list[int] = []  # per class: the rules matching its members' first address
        self._family_masks: list[dict[int, int]] = []  # dual-stack, per class: per family, the rules matching
        self._class_families: list[frozenset[int]] = []
        self._class_side: list[int] = []
        self.members: list[list[Endpoint]] = []
        self.class_index: dict[str, int] = {}
        for ep in self.endpoints:
            if isinstance(ep, Attachment):
                k = key_index[(ep.ref.namespace, ep.labels)]
                side, sid, selected = sides[k], side_ids[k], sel_masks[k] & ~empty_peers
            else:
                side, sid, selected = UNSELECTED, unselected_id, 0
            mask = self._peer_mask(selected, empty_peers, ep.ip, live)
            families = families_of(ep) if self.dual_stack else frozenset()
            by_family = {f: self._peer_mask(selected, empty_peers, address_of(ep, f), live) for f in sorted(families)}
            # Workloads and other endpoints never share a class: pairs of two non-workloads have no cells.
            ck = (sid, (mask, tuple(by_family.items())) if families else mask, isinstance(ep, Attachment))
            idx = class_of.get(ck)
            if idx is None:
                idx = class_of[ck] = len(self.sides)
                self.sides.append(side)
                self.peer_masks.append(mask)
                self._family_masks.append(by_family)
                self._class_families.append(families)
                self._class_side.append(sid)
                self.members.append([])
            self.members[idx].append(ep)
            self.class_index[ep.key] = idx
        self._workload_classes = [isinstance(m[0], Attachment) for m in self.members]
        self._workload_class_ids = [c for c, w in enumerate(self._workload_classes) if w]

    def _peer_mask(self, selected: int, empty_peers: int, ip: IPAddress | None, live: int) -> int:
        """The rules that match a packet from (or to) `ip`: its ipBlocks, and the selector and all-peers rules
        where OVN-K programs that family (an unknown address: as any)."""
        mask = self._ip_index.lookup(ip)
        if ip is None or ip.version in self._selector_families:
            mask |= selected
        if ip is None or ip.version in self._all_ips_families:
            mask |= empty_peers
        return mask & live

    def pair_families(self, src_class: int, dst_class: int) -> tuple[int | None, ...]:
        """The IP families a class pair's traffic is judged in: on a dual-stack network those both sides have
        an address of; otherwise (or with no family in common) one judgement at their first addresses."""
        if not self.dual_stack:
            return (None,)
        return tuple(sorted(self._class_families[src_class] & self._class_families[dst_class])) or (None,)

    # -- halves --

    def _new_half(self, direction: Direction, key: tuple[int, int]) -> int:
        hid = self._half_ids[direction][key] = len(self._halves)
        self._halves.append(self._make_half(self._side_by_id[key[0]], direction, key[1]))
        return hid

    def _make_half(self, side: Side, direction: Direction, relevant: int) -> Half:
        rules = [(self.rules[b].ref, self._rule_ports[b]) for b in range(relevant.bit_length()) if relevant >> b & 1]
        isolating = [self.policies[pi].ref for pi in side.policies if direction in self.policies[pi].isolates]
        return make_half(direction, direction in side.isolated, bool(side.policies), rules, isolating)

    def _egress(self, side: int, peer_class: int, family: int | None = None) -> int:
        """The half of side `side`'s egress towards the members of peer_class (in one family's packets)."""
        mask = self.peer_masks[peer_class] if family is None else self._family_masks[peer_class][family]
        key = (side, mask & self._egress_rules[side])
        hid = self._egress_ids.get(key)
        return self._new_half(Direction.EGRESS, key) if hid is None else hid

    def _ingress(self, side: int, peer_class: int, family: int | None = None) -> int:
        mask = self.peer_masks[peer_class] if family is None else self._family_masks[peer_class][family]
        key = (side, mask & self._ingress_rules[side])
        hid = self._ingress_ids.get(key)
        return self._new_half(Direction.INGRESS, key) if hid is None else hid

    def halves(self, src_class: int, dst_class: int, family: int | None = None) -> tuple[int, int]:
        """The ids of a class pair's egress and ingress halves: pairs with equal ids have equal verdicts."""
        return (self._egress(self._class_side[src_class], dst_class, family),
                self._ingress(self._class_side[dst_class], src_class, family))

    def _family(self, s: int, d: int, family: int | None) -> int | None:
        """The family asked for when the pair is judged in it, else the pair's first (None: single-stack)."""
        families = self.pair_families(s, d)
        return family if family in families else families[0]

    # -- verdicts --

    def judge(self, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol,
              family: int | None = None) -> Judgement:
        """One port's verdict; on a dual-stack network in `family`'s packets (default: the pair's first family)."""
        s, d = self._class_of(source), self._class_of(destination)
        e, i = self.halves(s, d, self._family(s, d, family))
        atom = self.atoms.index(port, protocol)
        return combine(self._halves[e].decide(atom), self._halves[i].decide(atom))

    def judge_directions(self, s: int, d: int, directions: frozenset[Direction], port: int,
                         protocol: Protocol, family: int | None = None) -> Verdict:
        """The expected verdict of only some halves of a class pair (egress at the source, ingress at the
        destination): what a node that enforces just those halves should do (interconnect zones)."""
        e, i = self.halves(s, d, self._family(s, d, family))
        atom = self.atoms.index(port, protocol)
        chosen = ([self._halves[e]] if Direction.EGRESS in directions else []) + \
            ([self._halves[i]] if Direction.INGRESS in directions else [])
        return Verdict.ALLOWED if all(h.decide(atom)[0] for h in chosen) else Verdict.DENIED

    def _class_of(self, endpoint: Endpoint) -> int:
        idx = self.class_index.get(endpoint.key)
        if idx is None:
            raise KeyError(f"{endpoint.key} is not on {self.network}")
        return idx

    def segments(self, s: int, d: int, proto: Protocol, family: int | None = None) -> list[tuple[PortRange, Judgement]]:
        """Maximal port ranges of one protocol with one verdict and one provenance, from class s to class d."""
        halves = self.halves(s, d, self._family(s, d, family))
        return list(self._segments[self._segment_id(*halves, PROTOCOLS.index(proto))])

    def _segment_id(self, e: int, i: int, pi: int) -> int:
        key = (self._half_runs(e, pi), self._half_runs(i, pi))
        sid = self._segment_ids.get(key)
        if sid is None:
            sid = self._segment_ids[key] = len(self._segments)
            self._segments.append(self._compute_segments(*key, PROTOCOLS[pi]))
        return sid

    def _half_runs(self, hid: int, pi: int) -> Runs:
        """(first atom, decision id) of each run of one decision of a half over one protocol's atoms; a
        decision can only change where one of the half's rules starts or stops."""
        hit = self._runs[pi].get(hid)
        if hit is None:
            half = self._halves[hid]
            span = self.atoms.protocol_mask(PROTOCOLS[pi])
            cuts = (half.edges & span) | (span & -span)
            runs: list[tuple[int, int]] = []
            while cuts:
                low = cuts & -cuts
                cuts ^= low
                atom = low.bit_length() - 1
                decision = half.decide(atom)
                did = self._decision_ids.setdefault(decision, len(self._decisions))
                if did == len(self._decisions):
                    self._decisions.append(decision)
                if not runs or runs[-1][1] != did:
                    runs.append((atom, did))
            hit = self._runs[pi][hid] = tuple(runs)
        return hit

    def _judgement(self, out_id: int, in_id: int) -> Judgement:
        hit = self._judgements.get((out_id, in_id))
        if hit is None:
            hit = self._judgements[(out_id, in_id)] = combine(self._decisions[out_id], self._decisions[in_id])
        return hit

    def _compute_segments(self, out_runs: Runs, in_runs: Runs, proto: Protocol) -> Segments:
        """The two halves' runs merged: judged once per run of both, never per atom."""
        starts = sorted({a for a, _ in out_runs} | {a for a, _ in in_runs})
        last_atom = self.atoms.protocol_mask(proto).bit_length() - 1
        out: list[tuple[int, int, Judgement]] = []  # (first atom, last atom, judgement)
        oi = ii = 0
        for n, atom in enumerate(starts):
            while oi + 1 < len(out_runs) and out_runs[oi + 1][0] <= atom:
                oi += 1
            while ii + 1 < len(in_runs) and in_runs[ii + 1][0] <= atom:
                ii += 1
            judgement = self._judgement(out_runs[oi][1], in_runs[ii][1])
            end = starts[n + 1] - 1 if n + 1 < len(starts) else last_atom
            if out and out[-1][2] == judgement:
                out[-1] = (out[-1][0], end, judgement)
            else:
                out.append((atom, end, judgement))
        atoms = self.atoms.atoms
        return tuple((PortRange(proto, atoms[lo].first, atoms[hi].last), j) for lo, hi, j in out)

    def shape(self, s: int, d: int) -> Shape:
        """A class pair's cells: per protocol, one `ports=None` entry for the majority verdict and one entry per
        port range that differs. UDP and SCTP are listed only where they differ from TCP's default."""
        return self.shapes[self.shape_id(s, d)]

    def shape_id(self, s: int, d: int) -> int:
        """The number of a class pair's shape: pairs with equal verdicts and provenance share it."""
        if self.dual_stack:
            return self._dual_shape_id(s, d)
        e, i = self.halves(s, d)
        sid = self._shape_of_halves.get(e << 32 | i)
        return self._new_shape_id(e, i) if sid is None else sid

    def _dual_shape_id(self, s: int, d: int) -> int:
        """A dual-stack pair's shape: each family's cells in turn, tagged with it."""
        families = self.pair_families(s, d)
        key = tuple((f, self.halves(s, d, f)) for f in families)
        sid = self._dual_shapes.get(key)
        if sid is None:
            shape = tuple(entry for f, (e, i) in key
                          for entry in self._compute_shape(tuple(self._segment_id(e, i, pi) for pi in range(len(PROTOCOLS))), f))
            sid = self._dual_shapes[key] = self._shape_ids.setdefault(shape, len(self.shapes))
            if sid == len(self.shapes):
                self.shapes.append(shape)
        return sid

    def row_shape_ids(self, src_class: int) -> list[tuple[int, int]]:
        """(destination class, shape id) for every class src_class has pairs with (`class_pairs`): shape_id
        for a whole row, with the egress halves computed once per source side and the ingress halves once per
        destination side, since a row of a large world is thousands of classes but a few hundred sides."""
        if self.dual_stack:
            return [(d, self._dual_shape_id(src_class, d)) for d in self.class_pairs(src_class)]
        side = self._class_side[src_class]
        egress = self._egress_rows.get(side)
        if egress is None:
            egress = self._egress_rows[side] = [self._egress(side, d) for d in range(len(self.members))]
        ingress = [self._ingress(b, src_class) for b in range(len(self._side_by_id))]
        memo, sides = self._shape_of_halves, self._class_side
        out = []
        for d in self.class_pairs(src_class):
            e, i = egress[d], ingress[sides[d]]
            sid = memo.get(e << 32 | i)
            out.append((d, self._new_shape_id(e, i) if sid is None else sid))
        return out

    def _new_shape_id(self, e: int, i: int) -> int:
        parts = tuple(self._segment_id(e, i, pi) for pi in range(len(PROTOCOLS)))
        sid = self._shape_of_segments.get(parts)
        if sid is None:
            shape = self._compute_shape(parts)
            sid = self._shape_of_segments[parts] = self._shape_ids.setdefault(shape, len(self.shapes))
            if sid == len(self.shapes):
                self.shapes.append(shape)
        self._shape_of_halves[e << 32 | i] = sid
        return sid

    def _compute_shape(self, parts: tuple[int, ...], family: int | None = None) -> Shape:
        out: list[tuple[Protocol, PortRange | None, Judgement, int | None]] = []
        tcp_default: Verdict | None = None
        for proto, part in zip(PROTOCOLS, parts):
            segments = self._segments[part]
            weight: dict[Verdict, int] = {}
            for rng, judgement in segments:
                weight[judgement.verdict] = weight.get(judgement.verdict, 0) + rng.last - rng.first + 1
            default = max(weight, key=lambda v: (weight[v], v is Verdict.DENIED))
            exceptions = [(rng, j) for rng, j in segments if j.verdict is not default]
            if proto is Protocol.TCP:
                tcp_default = default
            elif not exceptions and default is tcp_default:
                continue
            out.append((proto, None, next(j for _, j in segments if j.verdict is default), family))
            out.extend((proto, rng, j, family) for rng, j in exceptions)
        return tuple(out)

    # -- classes --

    def is_workload_class(self, c: int) -> bool:
        return self._workload_classes[c]

    def class_policies(self, c: int) -> list[Ref]:
        """The policies that select the members of class c."""
        return [self.policies[pi].ref for pi in self.sides[c].policies]

    def class_pairs(self, src_class: int) -> Iterator[int]:
        """The destination classes of src_class that hold a pair with cells: a pair needs two different
        endpoints, one of them a workload."""
        if self._workload_classes[src_class]:
            targets: Iterable[int] = range(len(self.members))
        else:
            targets = self._workload_class_ids
        for d in targets:
            if d != src_class or len(self.members[d]) > 1:
                yield d

    # -- cells --

    def pair_cells(self, source: Endpoint, destination: Endpoint) -> list[Cell]:
        shape = self.shape(self._class_of(source), self._class_of(destination))
        return [Cell(source.key, destination.key, proto, ports, j, f) for proto, ports, j, f in shape]

    def pair_shapes(self) -> Iterator[tuple[Endpoint, Endpoint, int]]:
        """Every pair with cells (two different endpoints, one a workload), with its shape id."""
        classes = [self.class_index[e.key] for e in self.endpoints]
        for src, s in zip(self.endpoints, classes):
            workload = isinstance(src, Attachment)
            for dst, d in zip(self.endpoints, classes):
                if src is dst or not (workload or isinstance(dst, Attachment)):
                    continue
                yield src, dst, self.shape_id(s, d)

    def cells(self) -> Iterator[Cell]:
        for src, dst, sid in self.pair_shapes():
            yield from (Cell(src.key, dst.key, proto, ports, j, f) for proto, ports, j, f in self.shapes[sid])
