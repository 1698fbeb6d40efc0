"""Two declared states of one network compared cell by cell: which cells a change opens, closes or re-attributes.

The states are aligned by pair (source and destination keys) and protocol. Each side's cells cover the whole
port space of a pair (a `ports=None` cell covers what its exceptions leave), but the two sides may cut it
differently, so the comparison runs over the union of both sides' cut points. A piece whose verdict changes is
then cut again at the rule port boundaries the caller knows (`cuts`) and judged on each side, so every opened,
closed or unknown range carries the exact rules that decide it before and after; adjacent pieces with the same
change are merged back. A re-attributed piece (same verdict, other rules) carries the rules of the cells that
cover it.

An endpoint present on one side only makes its pairs one-sided: an allowed cell towards or from a new endpoint
is opened (a new path), one of a removed endpoint is closed; its denied cells are no change (nothing reached it
before, nothing reaches it now) and are only named in `added` / `removed`.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from .model import MAX_PORT, MIN_PORT, Endpoint, Judgement, PortRange, Protocol, Ref, Verdict
from .policy import Policy
from .reachability import PROTOCOLS, Cell, NetworkReachability


class ChangeKind(enum.Enum):
    OPENED = "opened"  # not allowed before (denied, or an endpoint absent) -> allowed
    CLOSED = "closed"  # allowed -> not allowed
    UNKNOWN = "unknown"  # one side cannot tell, and the verdicts differ
    REATTRIBUTED = "reattributed"  # the same verdict, decided by other rules (a renamed or replaced policy)


CHANGE_KINDS = tuple(ChangeKind)
VERDICT_CHANGES = (ChangeKind.OPENED, ChangeKind.CLOSED, ChangeKind.UNKNOWN)


def _same(a: Judgement | None, b: Judgement | None) -> bool:
    """Equal verdict and equal deciding rules (the wording of a reason is not part of the decision)."""
    if a is None or b is None:
        return a is b
    return a.verdict is b.verdict and a.because == b.because


def _allowed(j: Judgement | None) -> bool:
    return j is not None and j.verdict is Verdict.ALLOWED


def change_kind(before: Judgement | None, after: Judgement | None) -> ChangeKind | None:
    """How one piece changed, or None when it did not (or an absent endpoint's side is denied)."""
    if _same(before, after):
        return None
    if before is not None and after is not None and before.verdict is after.verdict:
        return ChangeKind.REATTRIBUTED
    if any(j is not None and j.verdict is Verdict.UNKNOWN for j in (before, after)):
        return ChangeKind.UNKNOWN
    if _allowed(after):
        return ChangeKind.OPENED
    if _allowed(before):
        return ChangeKind.CLOSED
    return None  # denied on one side, no such endpoint on the other


@dataclass(frozen=True)
class CellChange:
    """One port range of one pair whose expected verdict (or its rules) differs between the two states.
    `before`/`after` is None where that state has no such endpoint."""

    source: str
    destination: str
    ports: PortRange
    before: Judgement | None
    after: Judgement | None
    family: int | None = None  # dual-stack networks: the IP family of the pair's packets

    @property
    def protocol(self) -> Protocol:
        return self.ports.protocol

    @property
    def kind(self) -> ChangeKind:
        kind = change_kind(self.before, self.after)
        assert kind is not None, "a CellChange is only built for a changed piece"
        return kind


@dataclass
class NetworkDiff:
    network: Ref
    in_before: bool
    in_after: bool
    changes: list[CellChange] = field(default_factory=list)
    unchanged: int = 0  # cells of the new state (as `matrix` lists them) that no change touches
    added: list[str] = field(default_factory=list)  # endpoint keys only in the new state
    removed: list[str] = field(default_factory=list)  # endpoint keys only in the old state

    def of(self, kind: ChangeKind) -> list[CellChange]:
        return [c for c in self.changes if c.kind is kind]

    def counts(self) -> dict[str, int]:
        out = {k.value: 0 for k in CHANGE_KINDS}
        for c in self.changes:
            out[c.kind.value] += 1
        out["unchanged"] = self.unchanged
        return out


# --- one side's coverage of a pair ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """A port range of one side with its verdict. `exact`: its rules too hold for every port of it (a cell listed
    for that range); a stretch of a `ports=None` cell only carries the rules of the cell's first stretch."""

    ports: PortRange
    judgement: Judgement
    exact: bool


Segments = list[Segment]


def _fill(protocol: Protocol, default: Judgement, exceptions: list[Cell]) -> Segments:
    """The whole port space of one protocol: the exceptions, and the default cell in every gap."""
    out: Segments = []
    nxt = MIN_PORT
    for cell in sorted(exceptions, key=lambda c: c.ports.first if c.ports else 0):
        assert cell.ports is not None
        if cell.ports.first > nxt:
            out.append(Segment(PortRange(protocol, nxt, cell.ports.first - 1), default, False))
        out.append(Segment(cell.ports, cell.judgement, True))
        nxt = cell.ports.last + 1
    if nxt <= MAX_PORT:
        out.append(Segment(PortRange(protocol, nxt, MAX_PORT), default, False))
    return out


def pair_coverage(cells: Iterable[Cell]) -> dict[Protocol, Segments]:
    """A pair's cells as segments covering every port of every protocol. A protocol the pair does not list
    behaves as TCP's `ports=None` cell (the matrix lists UDP/SCTP only where they differ from it). A listed
    exception is one stretch of one verdict and one provenance (`NetworkReachability.pair_cells`): exact."""
    by_proto: dict[Protocol, list[Cell]] = {}
    for cell in cells:
        by_proto.setdefault(cell.protocol, []).append(cell)
    tcp_default = next(c.judgement for c in by_proto[Protocol.TCP] if c.ports is None)
    out: dict[Protocol, Segments] = {}
    for proto in PROTOCOLS:
        listed = by_proto.get(proto, [])
        default = next((c.judgement for c in listed if c.ports is None), tcp_default)
        out[proto] = _fill(proto, default, [c for c in listed if c.ports is not None])
    return out


def _at(segments: Segments, starts: list[int], port: int) -> Segment:
    return segments[bisect.bisect_right(starts, port) - 1]


# --- the comparison ------------------------------------------------------------------------------------------

# What a pair's cells say, without the pair's names: pairs of one class pair share it, so they share the work.
Signature = tuple[tuple[Protocol, PortRange | None, Verdict, tuple[str, ...]], ...]


# (source, destination, IP family or 0): on a dual-stack network a pair's families are compared apart.
PairKey = tuple[str, str, int]


def _signature(cells: list[Cell]) -> Signature:
    return tuple((c.protocol, c.ports, c.verdict, tuple(c.judgement.because)) for c in cells)


@dataclass
class _Side:
    matrix: NetworkReachability
    endpoints: dict[str, Endpoint]
    cells: dict[PairKey, list[Cell]]
    signatures: dict[PairKey, Signature]
    coverage: dict[Signature, dict[Protocol, Segments]]

    @classmethod
    def of(cls, matrix: NetworkReachability) -> "_Side":
        cells: dict[PairKey, list[Cell]] = {}
        for cell in matrix.cells():  # a dual-stack pair: each family's cells compared on their own
            cells.setdefault((cell.source, cell.destination, cell.family or 0), []).append(cell)
        signatures = {key: _signature(group) for key, group in cells.items()}
        coverage: dict[Signature, dict[Protocol, Segments]] = {}
        for key, sig in signatures.items():
            if sig not in coverage:
                coverage[sig] = pair_coverage(cells[key])
        return cls(matrix, {e.key: e for e in matrix.endpoints}, cells, signatures, coverage)

    def of_pair(self, pair: PairKey) -> tuple[Signature | None, dict[Protocol, Segments] | None]:
        sig = self.signatures.get(pair)
        return sig, (self.coverage[sig] if sig is not None else None)

    def judge(self, pair: PairKey, port: int, protocol: Protocol) -> Judgement:
        return self.matrix.judge(self.endpoints[pair[0]], self.endpoints[pair[1]], port, protocol, pair[2] or None)


@dataclass(frozen=True)
class _Piece:
    """A changed port range as the cells of a pair say it; `judge_again`: a verdict change whose rules the cells
    do not give exactly (a stretch of a `ports=None` cell)."""

    ports: PortRange
    before: Judgement | None
    after: Judgement | None
    judge_again: bool


def _merge(pieces: Iterable[_Piece]) -> list[_Piece]:
    out: list[_Piece] = []
    for p in pieces:
        prev = out[-1] if out else None
        if (prev is not None and prev.ports.protocol is p.ports.protocol and prev.ports.last + 1 == p.ports.first
                and prev.judge_again == p.judge_again and _same(prev.before, p.before) and _same(prev.after, p.after)):
            out[-1] = _Piece(PortRange(p.ports.protocol, prev.ports.first, p.ports.last), p.before, p.after,
                             p.judge_again)
        else:
            out.append(p)
    return out


def _plan(before: dict[Protocol, Segments] | None, after: dict[Protocol, Segments] | None) -> list[_Piece]:
    """The changed pieces of a pair, from both sides' coverage (the same for every pair of one class pair)."""
    pieces = []
    for proto in PROTOCOLS:
        bs, as_ = (before[proto] if before else None), (after[proto] if after else None)
        b_starts = [seg.ports.first for seg in bs] if bs else []
        a_starts = [seg.ports.first for seg in as_] if as_ else []
        for piece in _pieces(proto, bs, as_):
            b = _at(bs, b_starts, piece.first) if bs else None
            a = _at(as_, a_starts, piece.first) if as_ else None
            jb, ja = (b.judgement if b else None), (a.judgement if a else None)
            kind = change_kind(jb, ja)
            if kind is not None:
                exact = (b is None or b.exact) and (a is None or a.exact)
                pieces.append(_Piece(piece, jb, ja, not exact and kind in VERDICT_CHANGES))
    return _merge(pieces)


def _untouched(cells: list[Cell], changes: list[_Piece]) -> int:
    """How many of a pair's cells (as `matrix` lists them) no change touches. A `ports=None` cell covers
    every port its protocol's other cells leave."""
    def overlaps(a: PortRange, b: PortRange) -> bool:
        return a.protocol is b.protocol and a.first <= b.last and b.first <= a.last

    count = 0
    for cell in cells:
        if cell.ports is not None:
            count += not any(overlaps(cell.ports, c.ports) for c in changes)
            continue
        listed = [o.ports for o in cells if o.protocol is cell.protocol and o.ports is not None]
        gaps = [c for c in changes if c.ports.protocol is cell.protocol
                and not any(o.first <= c.ports.first and c.ports.last <= o.last for o in listed)]
        count += not gaps
    return count


def rule_ports(policies: Iterable[Policy]) -> list[PortRange]:
    """Every numeric port or range a rule names: a superset of the boundaries any OVN-K profile enforces, so
    the rules deciding a port can only change at one of them."""
    return [PortRange(spec.protocol, spec.port, spec.end_port or spec.port)
            for policy in policies for rule in policy.rules for spec in rule.ports
            if isinstance(spec.port, int) and (spec.end_port or spec.port) >= spec.port]


def _cut_points(cuts: Iterable[PortRange]) -> dict[Protocol, list[int]]:
    points: dict[Protocol, set[int]] = {p: set() for p in PROTOCOLS}
    for r in cuts:
        points[r.protocol].update((r.first, r.last + 1))
    return {p: sorted(x for x in v if MIN_PORT < x <= MAX_PORT) for p, v in points.items()}


def _pieces(protocol: Protocol, *sides: Segments | None) -> Iterator[PortRange]:
    starts = sorted({seg.ports.first for segs in sides if segs is not None for seg in segs} | {MIN_PORT})
    for a, b in zip(starts, starts[1:] + [MAX_PORT + 1]):
        yield PortRange(protocol, a, b - 1)


def _refine(piece: PortRange, points: list[int]) -> Iterator[PortRange]:
    """The piece cut at the rule boundaries inside it (where provenance may change without the verdict)."""
    inner = [p for p in points[bisect.bisect_right(points, piece.first):] if p <= piece.last]
    for a, b in zip([piece.first] + inner, inner + [piece.last + 1]):
        yield PortRange(piece.protocol, a, b - 1)


def compare(network: Ref, before: NetworkReachability | None, after: NetworkReachability | None,
            cuts: Iterable[PortRange] = ()) -> NetworkDiff:
    """The cells of `network` whose expected verdict or rules differ from `before` to `after` (None: the
    network is absent from that state). `cuts`: the port ranges of every rule of both states, so a changed
    range is split wherever the rules deciding it change."""
    old = _Side.of(before) if before is not None else None
    new = _Side.of(after) if after is not None else None
    old_eps = set(old.endpoints) if old else set()
    new_eps = set(new.endpoints) if new else set()
    out = NetworkDiff(network, before is not None, after is not None,
                      added=sorted(new_eps - old_eps), removed=sorted(old_eps - new_eps))
    points = _cut_points(cuts)
    plans: dict[tuple[Signature | None, Signature | None], tuple[list[_Piece], int]] = {}
    for pair in sorted(set(old.cells if old else {}) | set(new.cells if new else {})):
        sb, b = old.of_pair(pair) if old else (None, None)
        sa, a = new.of_pair(pair) if new else (None, None)
        if (sb, sa) not in plans:
            plan = _plan(b, a) if sb != sa else []
            untouched = _untouched(new.cells[pair], plan) if new is not None and sa is not None else 0
            plans[(sb, sa)] = plan, untouched
        plan, untouched = plans[(sb, sa)]
        out.unchanged += untouched
        out.changes.extend(_changes(pair, plan, old, new, points))
    return out


def _changes(pair: PairKey, plan: list[_Piece], old: _Side | None, new: _Side | None,
             points: dict[Protocol, list[int]]) -> list[CellChange]:
    """The plan for this pair; a piece the cells do not give exactly is cut where rules may change and each
    stretch judged again (a re-attribution keeps the cells' rules: judging every stretch of every pair would
    cost far more than the two matrices, for a class that only informs)."""
    pieces: list[_Piece] = []
    for p in plan:
        if not p.judge_again:
            pieces.append(p)
            continue
        proto = p.ports.protocol
        for sub in _refine(p.ports, points[proto]):
            sb = old.judge(pair, sub.first, proto) if p.before is not None and old else None
            sa = new.judge(pair, sub.first, proto) if p.after is not None and new else None
            pieces.append(_Piece(sub, sb, sa, False))
    return [CellChange(pair[0], pair[1], p.ports, p.before, p.after, pair[2] or None) for p in _merge(pieces)]
