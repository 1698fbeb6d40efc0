"""The three planes side by side, cell by cell, and the drift each cell shows.

A check point is a (pair, protocol, port range) over which the expected and the programmed plane are each
constant; it is probed once, at its sample port. Drift classes:
- leak: traffic passes (observed, else programmed) that policy says is denied;
- blackhole: traffic is blocked (observed, else programmed) that policy says is allowed;
- controller: programmed differs from expected (declared != programmed);
- dataplane: observed differs from programmed (programmed != observed);
- unknown: a probe was sent but gave no evidence either way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Iterable, Protocol as TypingProtocol, Sequence

from .model import Attachment, Endpoint, Judgement, PortRange, Protocol, Verdict
from .policy import Direction
from .programmed import ProgrammedJudgement, ProgrammedPlane, judge_port
from .reachability import PROTOCOLS, NetworkReachability


class DriftClass(enum.Enum):
    LEAK = "leak"
    BLACKHOLE = "blackhole"
    CONTROLLER = "controller"
    DATAPLANE = "dataplane"
    UNKNOWN = "unknown"


DRIFT_CLASSES = tuple(DriftClass)


@dataclass(frozen=True)
class CheckedCell:
    network: str
    source: str
    destination: str
    protocol: Protocol
    ports: PortRange
    sample_port: int
    expected: Judgement
    programmed: Judgement | None = None  # None: plane not read
    observed: Judgement | None = None  # None: not probed
    drift: tuple[DriftClass, ...] = ()
    # Interconnect: when this node's zone judges only some halves of the cell, what policy expects of those.
    expected_here: Verdict | None = None
    family: int | None = None  # dual-stack networks: the IP family of the cell's packets (probed at its addresses)

    @cached_property
    def key(self) -> tuple[str, str, str, int, int]:
        return (self.source, self.destination, self.protocol.value, self.ports.first, self.family or 0)

    def with_observed(self, observed: Judgement | None) -> "CheckedCell":
        return replace(self, observed=observed,
                       drift=classify(self.expected, self.programmed, observed, self.expected_here))


CLAIMS = (Verdict.ALLOWED, Verdict.DENIED)  # verdicts that say what happens to the whole cell


def classify(expected: Judgement, programmed: Judgement | None, observed: Judgement | None,
             expected_here: Verdict | None = None) -> tuple[DriftClass, ...]:
    """The drift a cell shows. With `expected_here` (this zone judges only some halves of the cell), the
    programmed plane is compared half for half: its local halves let the traffic pass (`remote`: the rest is
    judged elsewhere) or deny it, and only that is held against what policy expects of those halves; a half
    another node owns never makes a leak, a blackhole or controller drift here."""
    out = []
    want = expected.verdict
    have_prog = programmed.verdict if programmed is not None else Verdict.UNKNOWN
    have_obs = observed.verdict if observed is not None else Verdict.UNKNOWN
    actual = have_obs if have_obs is not Verdict.UNKNOWN else have_prog
    if actual is Verdict.ALLOWED and want is Verdict.DENIED:
        out.append(DriftClass.LEAK)
    if actual is Verdict.DENIED and want is Verdict.ALLOWED:
        out.append(DriftClass.BLACKHOLE)
    if expected_here is not None:
        local = {Verdict.DENIED: Verdict.DENIED, Verdict.REMOTE: Verdict.ALLOWED}.get(have_prog)
        if local is not None and local is not expected_here:
            out.append(DriftClass.CONTROLLER)
    elif have_prog in CLAIMS and have_prog is not want:
        out.append(DriftClass.CONTROLLER)
    if have_obs in CLAIMS and have_prog in CLAIMS and have_obs is not have_prog:
        out.append(DriftClass.DATAPLANE)
    if observed is not None and have_obs is Verdict.UNKNOWN:
        out.append(DriftClass.UNKNOWN)
    return tuple(out)


def counted_here(cell: CheckedCell) -> bool:
    """Whether this node counts the cell in its metrics. A cross-node cell is planned by both its nodes, each
    judging its half; it is counted once, by the node of its egress half (its source's node, which probes it)."""
    here = cell.programmed.judged_here if isinstance(cell.programmed, ProgrammedJudgement) else None
    return here is None or Direction.EGRESS in here


def counted_drift(cell: CheckedCell) -> tuple[DriftClass, ...]:
    """The drift this node counts for the cell: all of it where the cell is counted here; elsewhere only the
    controller drift of the half this node's zone programs (the other node cannot see that half), so that summed
    over nodes a cross-node cell shows each class once (a cell misprogrammed in both zones: once per zone)."""
    if counted_here(cell):
        return cell.drift
    return (DriftClass.CONTROLLER,) if DriftClass.CONTROLLER in cell.drift else ()


def counts_its_pair(cell: CheckedCell) -> bool:
    """Whether the cell makes its pair count as drifting on this node (`segcheck_drift_pairs`), so that summed over
    nodes a pair counts once: where the cell is counted here, when it drifts; elsewhere, when this node's half is
    wrong, unless that half blocks a probed cell policy allows (the source's node then reports the blackhole)."""
    if counted_here(cell):
        return bool(cell.drift)
    if DriftClass.CONTROLLER not in cell.drift:
        return False
    blocks = cell.programmed is not None and cell.programmed.verdict is Verdict.DENIED
    return not (blocks and cell.expected.verdict is Verdict.ALLOWED and cell.protocol is Protocol.TCP)


def sample_port(ports: PortRange, destination: Endpoint) -> int:
    """Probe a port the destination declares when the range holds one (a real answer beats an RST)."""
    for sp in getattr(destination, "ports", ()) or ():
        if sp.protocol is ports.protocol and ports.first <= sp.port <= ports.last:
            return int(sp.port)
    return ports.first


Piece = tuple[Protocol, PortRange, Judgement, "Judgement | None", "Verdict | None", tuple["DriftClass", ...],
              "int | None"]


def check_points(expected: NetworkReachability, programmed: ProgrammedPlane | None, source: Endpoint,
                 destination: Endpoint, protocols: Sequence[Protocol] = PROTOCOLS,
                 memo: dict[tuple[object, ...], list[Piece]] | None = None) -> list[CheckedCell]:
    """The pair's port space cut where either plane changes, merged where both stay the same.

    With `memo`, pairs that both planes cannot tell apart (same classes of the expected plane, same port groups
    and address matches in the programmed one) share the work: only names and sample ports differ."""
    s, d = expected.class_index[source.key], expected.class_index[destination.key]
    families = expected.pair_families(s, d)
    key: tuple[object, ...] | None = (s, d, tuple(protocols))
    if programmed is not None:
        signature = getattr(programmed, "signature", None)  # a plane that cannot say gets no sharing
        # A family is passed only where the network is dual-stack (planes that judge one address take none).
        sigs = [((signature(source, f), signature(destination, f)) if f is not None else
                 (signature(source), signature(destination))) if signature else (None, None) for f in families]
        key = None if any(a is None or b is None for a, b in sigs) else (s, d, tuple(sigs), tuple(protocols))
    pieces = memo.get(key) if memo is not None and key is not None else None
    if pieces is None:
        pieces = [piece for f in families
                  for piece in _pieces(expected, programmed, source, destination, s, d, protocols, f)]
        if memo is not None and key is not None:
            memo[key] = pieces
    return cells_of_pieces(str(expected.network), source, destination, pieces)


def pair_pieces(expected: NetworkReachability, programmed: ProgrammedPlane | None, source: Endpoint,
                destination: Endpoint, protocols: Sequence[Protocol] = PROTOCOLS) -> list[Piece]:
    """A pair's check points without its names: what `check_points` builds its cells from (the agent compares
    them across plans to see which pairs a change touches)."""
    s, d = expected.class_index[source.key], expected.class_index[destination.key]
    return _pieces(expected, programmed, source, destination, s, d, protocols)


def cells_of_pieces(network: str, source: Endpoint, destination: Endpoint, pieces: Sequence[Piece]) -> list[CheckedCell]:
    return [CheckedCell(network, source.key, destination.key, proto, rng, sample_port(rng, destination), e, p, None,
                        drift, here, family)
            for proto, rng, e, p, here, drift, family in pieces]


def _pieces(expected: NetworkReachability, programmed: ProgrammedPlane | None, source: Endpoint, destination: Endpoint,
            s: int, d: int, protocols: Sequence[Protocol], family: int | None = None) -> list[Piece]:
    out: list[Piece] = []
    for proto in protocols:
        exp = expected.segments(s, d, proto, family)
        prog = None if programmed is None else programmed.segments(source, destination, proto) if family is None \
            else programmed.segments(source, destination, proto, family)
        cuts = sorted({r.first for r, _ in exp} | ({r.first for r, _ in prog} if prog else set()))
        ends = cuts[1:] + [exp[-1][0].last + 1]
        pieces: list[tuple[PortRange, Judgement, Judgement | None]] = []
        for lo, hi in zip(cuts, ends):
            e = judge_port(exp, lo)
            p = judge_port(prog, lo) if prog is not None else None
            if pieces and pieces[-1][1] == e and pieces[-1][2] == p:
                pieces[-1] = (PortRange(proto, pieces[-1][0].first, hi - 1), e, p)
            else:
                pieces.append((PortRange(proto, lo, hi - 1), e, p))
        for rng, e, p in pieces:
            here = _expected_here(expected, s, d, p, rng, family)
            out.append((proto, rng, e, p, here, classify(e, p, None, here), family))
    return out


def _expected_here(expected: NetworkReachability, s: int, d: int, programmed: Judgement | None,
                  ports: PortRange, family: int | None = None) -> Verdict | None:
    """What policy expects of the halves this zone judges, when another zone judges the rest (else None)."""
    directions = programmed.judged_here if isinstance(programmed, ProgrammedJudgement) else None
    if directions is None:
        return None
    return expected.judge_directions(s, d, directions, ports.first, ports.protocol, family)


def pairs(matrix: NetworkReachability, local: Iterable[str] | None = None) -> list[tuple[Endpoint, Endpoint]]:
    """Ordered pairs with at least one workload; with `local`, only pairs with a workload on this node at one
    end (each node probes what it can send from or capture for)."""
    keep = set(local) if local is not None else None
    out = []
    for src in matrix.endpoints:
        for dst in matrix.endpoints:
            if src.key == dst.key or not (isinstance(src, Attachment) or isinstance(dst, Attachment)):
                continue
            if keep is not None and src.key not in keep and dst.key not in keep:
                continue
            out.append((src, dst))
    return out


def summarize(cells: Iterable[CheckedCell]) -> dict[str, int]:
    return summarize_classes(cell.drift for cell in cells)


def summarize_classes(drifts: Iterable[tuple[DriftClass, ...]]) -> dict[str, int]:
    """Cells per drift class (a cell may count in several)."""
    counts = {c.value: 0 for c in DriftClass}
    for drift in drifts:
        for cls in drift:
            counts[cls.value] += 1
    return counts


class Drifting(TypingProtocol):
    @property
    def drift(self) -> tuple[DriftClass, ...]: ...


def has_drift(cell: Drifting) -> bool:
    """Drift that is a claim (every class but `unknown`, which only says a probe found no evidence)."""
    return any(d is not DriftClass.UNKNOWN for d in cell.drift)
