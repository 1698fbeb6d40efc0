"""Expected reachability of one network, computed by equivalence classes.

Endpoints that are selected by the same policies and matched by the same rule peers behave identically, so
verdicts are computed once per pair of classes. Ports are split at rule boundaries into "atoms"; a set of
ports is a bitmask over atoms, so unions and intersections are integer operations. Provenance (which rule
allowed, which policy isolated) is recovered per cell on demand.

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

import numpy as np

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


class NetworkReachability:
    def __init__(self, inventory: Inventory, network: Ref, extra: Sequence[Endpoint] = (),
                 profile: OvnkProfile = DEFAULT_PROFILE, namespace: str | None = None):
        self.network = network
        self.profile = profile
        view = enforced_policies(inventory, network, profile)
        self.findings = view.findings
        self.policies: tuple[EnforcedPolicy, ...] = view.policies
        self.rules: list[EnforcedRule] = [r for p in self.policies for r in p.rules]
        self._rule_bit = {(r.policy, r.direction, r.index): i for i, r in enumerate(self.rules)}
        self.atoms = PortAtoms([pr for r in self.rules for pr in r.port_ranges])
        self._rule_ports = [self.atoms.mask(r.port_ranges) for r in self.rules]
        self._direction_mask = {
            d: sum(1 << i for i, r in enumerate(self.rules) if r.direction is d) for d in Direction
        }
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
        self._classify()
        self._egress: dict[tuple[int, int], int] = {}
        self._ingress: dict[tuple[int, int], int] = {}
        self._side_ids: dict[tuple[int, ...], int] = {}
        self._segment_memo: dict[tuple[int, int, Protocol], tuple[tuple[PortRange, Judgement], ...]] = {}

    # -- classification --

    def _side(self, endpoint: Endpoint) -> Side:
        if not isinstance(endpoint, Attachment):
            return Side((), frozenset())
        labels = endpoint.label_map
        chosen = tuple(
            i for i, p in enumerate(self.policies)
            if p.ref.namespace == endpoint.ref.namespace and p.pod_selector.matches(labels)
        )
        isolated = frozenset(d for i in chosen for d in self.policies[i].isolates)
        return Side(chosen, isolated)

    def _selector_masks(self, keys: list[tuple[str, tuple[tuple[str, str], ...]]]) -> list[int]:
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

    def _sides_of(self, keys: list[tuple[str, tuple[tuple[str, str], ...]]]) -> list[Side]:
        by_ns: dict[str, list[int]] = {}
        for k, (ns, _) in enumerate(keys):
            by_ns.setdefault(ns, []).append(k)
        chosen: list[list[int]] = [[] for _ in keys]
        for i, p in enumerate(self.policies):
            for k in by_ns.get(p.ref.namespace, ()):
                if p.pod_selector.matches(dict(keys[k][1])):
                    chosen[k].append(i)
        return [Side(tuple(c), frozenset(d for i in c for d in self.policies[i].isolates)) for c in chosen]

    def _classify(self) -> None:
        empty_peers = sum(1 << bit for bit, r in enumerate(self.rules) if not r.peers)
        key_index: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        for ep in self.endpoints:
            if isinstance(ep, Attachment):
                key_index.setdefault((ep.ref.namespace, ep.labels), len(key_index))
        keys = list(key_index)
        sel_masks = self._selector_masks(keys)
        sides = self._sides_of(keys)
        unselected = Side((), frozenset())
        class_of: dict[tuple[Side, int], int] = {}
        self.sides: list[Side] = []
        self.peer_masks: list[int] = []
        self.members: list[list[Endpoint]] = []
        self.class_index: dict[str, int] = {}
        for ep in self.endpoints:
            if isinstance(ep, Attachment):
                k = key_index[(ep.ref.namespace, ep.labels)]
                side, mask = sides[k], sel_masks[k]
            else:
                side, mask = unselected, empty_peers
            mask |= self._ip_index.lookup(ep.ip)
            ck = (side, mask)
            idx = class_of.get(ck)
            if idx is None:
                idx = class_of[ck] = len(self.sides)
                self.sides.append(side)
                self.peer_masks.append(mask)
                self.members.append([])
            self.members[idx].append(ep)
            self.class_index[ep.key] = idx

    # -- verdicts as port masks --

    def _allowed(self, side: Side, direction: Direction, peer_mask: int, memo: dict[tuple[int, int], int],
                 side_id: int) -> int:
        if direction not in side.isolated:
            return self.atoms.full
        relevant = peer_mask & self._direction_mask[direction]
        key = (side_id, relevant)
        hit = memo.get(key)
        if hit is not None:
            return hit
        mask = 0
        for pi in side.policies:
            for rule in self.policies[pi].rules:
                if rule.direction is direction:
                    bit = self._rule_bit[(rule.policy, rule.direction, rule.index)]
                    if relevant >> bit & 1:
                        mask |= self._rule_ports[bit]
        memo[key] = mask
        return mask

    def pair_mask(self, src_class: int, dst_class: int) -> int:
        """Allowed port atoms from one class to another."""
        src, dst = self.sides[src_class], self.sides[dst_class]
        out = self._allowed(src, Direction.EGRESS, self.peer_masks[dst_class], self._egress, self._side_id(src))
        if not out:
            return 0
        return out & self._allowed(dst, Direction.INGRESS, self.peer_masks[src_class], self._ingress, self._side_id(dst))

    def _side_id(self, side: Side) -> int:
        # Equal policy sets give equal answers, so memo entries are shared between classes.
        return self._side_ids.setdefault(side.policies, len(self._side_ids))

    def compute_all(self) -> "ClassMatrix":
        """Every class pair's allowed port atoms at once (the whole matrix, compressed by classes).

        Vectorised: per policy, the ports its rules open towards each peer class; per side, the union over
        its policies (or everything when that direction is not isolated); then egress(src) & ingress(dst).
        """
        n, words = len(self.sides), (len(self.atoms.atoms) + 63) // 64
        nbytes = max(1, (len(self.rules) + 7) // 8)
        membership = np.unpackbits(
            np.frombuffer(b"".join(m.to_bytes(nbytes, "little") for m in self.peer_masks), dtype=np.uint8).reshape(n, nbytes),
            axis=1, bitorder="little")[:, : len(self.rules)].astype(bool)
        ports = np.array([_words(m, words) for m in self._rule_ports], dtype=np.uint64).reshape(len(self.rules), words)
        full = np.array(_words(self.atoms.full, words), dtype=np.uint64)
        per_policy: dict[tuple[int, Direction], np.ndarray] = {}
        for pi, policy in enumerate(self.policies):
            for direction in Direction:
                acc = np.zeros((n, words), dtype=np.uint64)
                for rule in policy.rules_for(direction):
                    bit = self._rule_bit[(rule.policy, rule.direction, rule.index)]
                    acc |= np.where(membership[:, bit, None], ports[bit], np.uint64(0))
                per_policy[(pi, direction)] = acc
        side_ids: dict[Side, int] = {}
        tables: dict[Direction, list[np.ndarray]] = {d: [] for d in Direction}
        for side in self.sides:
            if side in side_ids:
                continue
            side_ids[side] = len(side_ids)
            for direction in Direction:
                if direction not in side.isolated:
                    tables[direction].append(np.broadcast_to(full, (n, words)))
                    continue
                acc = np.zeros((n, words), dtype=np.uint64)
                for pi in side.policies:
                    acc |= per_policy[(pi, direction)]
                tables[direction].append(acc)
        sid = np.array([side_ids[side] for side in self.sides], dtype=np.intp)
        egress = np.stack(tables[Direction.EGRESS])[sid]  # [src class, dst class]
        ingress = np.stack(tables[Direction.INGRESS])[sid]  # [dst class, src class]
        return ClassMatrix(egress & ingress.transpose(1, 0, 2))

    # -- single verdicts with provenance --

    def judge(self, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol) -> Judgement:
        s, d = self._class_of(source), self._class_of(destination)
        atom = self.atoms.index(port, protocol)
        return self._judge_atom(s, d, atom)

    def _class_of(self, endpoint: Endpoint) -> int:
        idx = self.class_index.get(endpoint.key)
        if idx is None:
            raise KeyError(f"{endpoint.key} is not on {self.network}")
        return idx

    def _side_reasons(self, side: Side, direction: Direction, peer_mask: int, atom: int, where: str) -> tuple[bool, list[Reason]]:
        if direction not in side.isolated:
            detail = "not selected by any policy" if not side.policies else "no selecting policy isolates this direction"
            return True, [Reason(f"{where}:{direction.value}-not-isolated", detail)]
        allowing = []
        for pi in side.policies:
            for rule in self.policies[pi].rules:
                bit = self._rule_bit[(rule.policy, rule.direction, rule.index)]
                if rule.direction is direction and peer_mask >> bit & 1 and self._rule_ports[bit] >> atom & 1:
                    allowing.append(Reason(rule.ref, f"allows {direction.value} at {where}"))
        if allowing:
            return True, allowing
        isolating = [self.policies[pi].ref for pi in side.policies if direction in self.policies[pi].isolates]
        return False, [Reason(f"{ref}:{direction.value}", f"isolates {direction.value} at {where}; no rule allows")
                       for ref in isolating]

    def _judge_atom(self, s: int, d: int, atom: int) -> Judgement:
        ok_out, out_reasons = self._side_reasons(self.sides[s], Direction.EGRESS, self.peer_masks[d], atom, "source")
        ok_in, in_reasons = self._side_reasons(self.sides[d], Direction.INGRESS, self.peer_masks[s], atom, "destination")
        if ok_out and ok_in:
            reasons = [r for r in out_reasons + in_reasons if not r.ref.endswith("-not-isolated")]
            if not reasons:
                reasons = out_reasons[:1]
            return Judgement(Verdict.ALLOWED, tuple(reasons))
        reasons = (out_reasons if not ok_out else []) + (in_reasons if not ok_in else [])
        return Judgement(Verdict.DENIED, tuple(reasons))

    # -- cells --

    def pair_cells(self, source: Endpoint, destination: Endpoint) -> list[Cell]:
        """The cells of one pair: per protocol, one `ports=None` cell for the majority verdict and one cell
        per port range that differs. UDP and SCTP are listed only where they differ from TCP's default."""
        s, d = self._class_of(source), self._class_of(destination)
        cells: list[Cell] = []
        tcp_default: Verdict | None = None
        for proto in PROTOCOLS:
            segments = self._segments(s, d, proto)
            weight: dict[Verdict, int] = {}
            for rng, judgement in segments:
                weight[judgement.verdict] = weight.get(judgement.verdict, 0) + rng.last - rng.first + 1
            default = max(weight, key=lambda v: (weight[v], v is Verdict.DENIED))
            exceptions = [(rng, j) for rng, j in segments if j.verdict is not default]
            if proto is Protocol.TCP:
                tcp_default = default
            elif not exceptions and default is tcp_default:
                continue
            default_j = next(j for rng, j in segments if j.verdict is default)
            cells.append(Cell(source.key, destination.key, proto, None, default_j))
            cells.extend(Cell(source.key, destination.key, proto, rng, j) for rng, j in exceptions)
        return cells

    def _segments(self, s: int, d: int, proto: Protocol) -> list[tuple[PortRange, Judgement]]:
        """Maximal port ranges of one protocol with one verdict and one provenance (once per class pair)."""
        key = (s, d, proto)
        hit = self._segment_memo.get(key)
        if hit is None:
            hit = self._segment_memo[key] = self._compute_segments(s, d, proto)
        return list(hit)

    def _compute_segments(self, s: int, d: int, proto: Protocol) -> tuple[tuple[PortRange, Judgement], ...]:
        out: list[tuple[PortRange, Judgement]] = []
        pm = self.atoms.protocol_mask(proto)
        first = (pm & -pm).bit_length() - 1
        last = pm.bit_length() - 1
        for atom in range(first, last + 1):
            judgement = self._judge_atom(s, d, atom)
            rng = self.atoms.atoms[atom]
            if out and out[-1][1] == judgement:
                out[-1] = (PortRange(proto, out[-1][0].first, rng.last), judgement)
            else:
                out.append((rng, judgement))
        return tuple(out)

    def cells(self) -> Iterator[Cell]:
        for src in self.endpoints:
            for dst in self.endpoints:
                if src.key == dst.key or (not isinstance(src, Attachment) and not isinstance(dst, Attachment)):
                    continue
                yield from self.pair_cells(src, dst)


def _words(mask: int, words: int) -> list[int]:
    return [(mask >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for w in range(words)]


@dataclass(frozen=True)
class ClassMatrix:
    """Allowed port atoms per (source class, destination class), as 64-bit words."""

    masks: np.ndarray

    def allows(self, src_class: int, dst_class: int, atom: int) -> bool:
        return bool(int(self.masks[src_class, dst_class, atom // 64]) >> (atom % 64) & 1)
