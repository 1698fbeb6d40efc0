"""The cluster's view of a cell, composed from the halves each node's agent judged (interconnect: every node is
its own OVN zone). A cross-node cell passes only if the egress half, judged at the source's node, AND the
ingress half, judged at the destination's node, both let it through; both nodes are named in the provenance.
Pure: the halves come in as the agents' cell JSON, already parsed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .drift import DriftClass, classify
from .model import MAX_PORT, MIN_PORT, Judgement, PortRange, Protocol, Reason, Verdict
from .policy import Direction

BOTH = frozenset(Direction)


@dataclass(frozen=True)
class NodeHalf:
    """One agent's cell: what its zone judged of it (`judged` directions) and what it observed."""

    node: str
    network: str
    source: str
    destination: str
    ports: PortRange
    expected: Judgement
    programmed: Judgement | None
    judged: frozenset[Direction]
    observed: Judgement | None
    drift: tuple[DriftClass, ...] = ()  # what that node found (a half it judged against policy's half)
    family: int | None = None  # dual-stack networks: the IP family of the cell's packets

    @property
    def programmed_reasons(self) -> tuple[Reason, ...]:
        return self.programmed.reasons if self.programmed is not None else ()

    @property
    def local(self) -> Verdict:
        """What the judged halves do: a remote verdict means they let the traffic pass."""
        v = self.programmed.verdict if self.programmed is not None else Verdict.UNKNOWN
        return Verdict.ALLOWED if v is Verdict.REMOTE else v


@dataclass(frozen=True)
class ComposedCell:
    network: str
    source: str
    destination: str
    ports: PortRange
    expected: Judgement
    programmed: Judgement
    observed: Judgement | None
    drift: tuple[DriftClass, ...]
    judged_by: Mapping[str, str] = field(default_factory=dict)  # direction -> node
    family: int | None = None

    @property
    def protocol(self) -> Protocol:
        return self.ports.protocol


def _judgement(data: Any) -> Judgement | None:
    if not isinstance(data, dict) or "verdict" not in data:
        return None
    reasons = tuple(Reason(str(r.get("ref", "")), str(r.get("detail", ""))) for r in data.get("reasons", [])
                    if isinstance(r, dict))
    return Judgement(Verdict(data["verdict"]), reasons)


def halves_from_agent(node: str, network: str, cells: Iterable[Mapping[str, Any]]) -> list[NodeHalf]:
    """An agent's /v1/matrix cells of one network as halves (a malformed cell raises ValueError)."""
    out = []
    for c in cells:
        try:
            protocol = Protocol(c["protocol"])
            first = MIN_PORT if c.get("port") is None else int(c["port"])
            last = MAX_PORT if c.get("port") is None else int(c.get("end_port", c["port"]))
            here = c.get("judged_here")
            judged = BOTH if here is None else frozenset(Direction(d) for d in here)
            expected = Judgement(Verdict(c["expected"]), tuple(Reason(str(b)) for b in c.get("because", [])))
            family = {"ipv4": 4, "ipv6": 6}[c["family"]] if c.get("family") is not None else None
            out.append(NodeHalf(node, network, str(c["from"]), str(c["to"]), PortRange(protocol, first, last),
                                expected, _judgement(c.get("programmed")), judged, _judgement(c.get("observed")),
                                tuple(DriftClass(d) for d in c.get("drift", [])), family))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"agent on {node}: malformed cell {c!r}: {exc}") from None
    return out


def _on(node: str, reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(Reason(r.ref, f"on {node}: {r.detail}" if r.detail else f"on {node}") for r in reasons
                 if not r.ref.startswith("nb/judged-on/"))


def _programmed(halves: list[NodeHalf]) -> tuple[Judgement, dict[str, str]]:
    """A denying half decides; the cell passes only when every direction is judged and lets it through."""
    judged_by: dict[str, str] = {}
    for h in halves:
        for d in h.judged:
            judged_by.setdefault(d.value, h.node)
    denying = [h for h in halves if h.local is Verdict.DENIED]
    if denying:
        return Judgement(Verdict.DENIED, tuple(r for h in denying for r in _on(h.node, h.programmed_reasons))), judged_by
    missing = sorted(d.value for d in Direction if d.value not in judged_by)
    unknown = [h for h in halves if h.local is Verdict.UNKNOWN]
    if missing or unknown:
        reasons = tuple(Reason("cluster/half-not-judged", f"no agent judged the {d} half") for d in missing)
        reasons += tuple(r for h in unknown for r in _on(h.node, h.programmed_reasons))
        return Judgement(Verdict.UNKNOWN, reasons), judged_by
    return Judgement(Verdict.ALLOWED, tuple(r for h in halves for r in _on(h.node, h.programmed_reasons))), judged_by


def _observed(halves: list[NodeHalf]) -> Judgement | None:
    """End-to-end probes: an answered one (the source's node sends them) beats silence or none."""
    seen = [(h.node, h.observed) for h in halves if h.observed is not None]
    decided = [(n, o) for n, o in seen if o.verdict in (Verdict.ALLOWED, Verdict.DENIED)]
    for node, observed in decided or seen:
        return Judgement(observed.verdict, _on(node, observed.reasons))
    return None


def compose(halves: Iterable[NodeHalf]) -> list[ComposedCell]:
    """Whole cells from every node's halves, cut where any node's port ranges are cut."""
    by_pair: dict[tuple[str, str, str, int, Protocol], list[NodeHalf]] = {}
    for h in halves:
        by_pair.setdefault((h.network, h.source, h.destination, h.family or 0, h.ports.protocol), []).append(h)
    out: list[ComposedCell] = []
    for (network, source, destination, fam, protocol), group in sorted(by_pair.items(),
                                                                       key=lambda kv: (kv[0][:4], kv[0][4].value)):
        family = fam or None
        cuts = sorted({h.ports.first for h in group} | {h.ports.last + 1 for h in group})
        for lo, hi in zip(cuts, cuts[1:]):
            here = [h for h in group if h.ports.first <= lo <= h.ports.last]
            if not here:
                continue
            programmed, judged_by = _programmed(here)
            observed = _observed(here)
            expected = here[0].expected
            drift = classify(expected, programmed, observed)
            if DriftClass.CONTROLLER not in drift and any(DriftClass.CONTROLLER in h.drift for h in here):
                # A node's half disagrees with policy's half, even where the other half still decides the cell.
                drift += (DriftClass.CONTROLLER,)
            cell = ComposedCell(network, source, destination, PortRange(protocol, lo, hi - 1), expected, programmed,
                                observed, drift, judged_by, family)
            prev = out[-1] if out else None
            if prev is not None and (prev.network, prev.source, prev.destination, prev.family, prev.ports.protocol) == \
                    (network, source, destination, family, protocol) and prev.ports.last + 1 == lo and \
                    (prev.expected, prev.programmed, prev.observed, prev.judged_by) == \
                    (expected, programmed, observed, judged_by):
                out[-1] = ComposedCell(network, source, destination, PortRange(protocol, prev.ports.first, hi - 1),
                                       expected, programmed, observed, prev.drift, judged_by, family)
            else:
                out.append(cell)
    return out
