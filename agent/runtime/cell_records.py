"""The agent's working set: one record per planned cell, grouped by network, for one version of the planes.

A record holds the check point as planned (expected and programmed verdicts), its last observation, and what
readers see (the cell with that observation). An observation remembers the planes it was taken under: when
either plane's verdict for the cell changes, the observation says nothing about the new state and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Iterator

from ..core.drift import CheckedCell, DriftClass, Piece
from ..core.findings import Finding
from ..core.inventory import Inventory
from ..core.model import Endpoint, Judgement, Verdict
from ..core.programmed import MappingStatus
from ..core.state import DeclaredError
from .checker import Checker

Planes = tuple[Verdict, "Verdict | None"]  # (expected, programmed or None when NB is not read)
CellId = tuple[str, tuple[str, str, str, int, int]]  # (network, cell key)
NOT_SCHEDULED = -1


def planes_of(cell: CheckedCell) -> Planes:
    return (cell.expected.verdict, cell.programmed.verdict if cell.programmed is not None else None)


@dataclass(frozen=True)
class Observation:
    judgement: Judgement
    at: float
    planes: Planes


class CellRecord:
    """One planned cell. `ticket` identifies its live entry in the probe schedule (NOT_SCHEDULED: none); its
    view sits at `index` in its pair block's views (and in its chunk's flat list, at the block's offset)."""

    __slots__ = ("id", "network", "block", "index", "cell", "planes", "probed", "sentinel", "observation", "view",
                 "ticket")

    def __init__(self, network: "NetworkPlan", block: "PairBlock", cell: CheckedCell, probed: bool,
                 observation: Observation | None) -> None:
        self.id: CellId = (network.name, cell.key)
        self.network, self.block, self.index, self.cell, self.probed = network, block, len(block.views), cell, probed
        self.planes = planes_of(cell)
        self.sentinel = False
        self.ticket = NOT_SCHEDULED
        self.observation: Observation | None = None
        self.view = cell
        if observation is not None and observation.planes == self.planes:
            self.observation, self.view = observation, cell.with_observed(observation.judgement)
        block.views.append(self.view)

    def observe(self, observation: Observation) -> tuple[DriftClass, ...]:
        """Record an observation; returns the drift the readers saw before (the caller compares)."""
        before = self.view.drift
        self.observation = observation
        self.view = self.cell.with_observed(observation.judgement)
        block = self.block
        block.views[self.index] = self.view
        chunk = block.chunk
        if chunk is not None and chunk.flat is not None:
            chunk.flat[block.offset + self.index] = self.view
        return before


class PairBlock:
    """The records of one ordered pair, what readers see of them, and those that may be sentinels (probed,
    expected allowed): a re-plan replaces whole blocks, the pairs a change touches. It sits in `chunk` at `pos`,
    its views at `offset` in the chunk's flat list."""

    __slots__ = ("records", "views", "candidates", "chunk", "pos", "offset")

    def __init__(self) -> None:
        self.records: list[CellRecord] = []
        self.views: list[CheckedCell] = []
        self.candidates: list[CellRecord] = []
        self.chunk: Chunk | None = None
        self.pos = self.offset = 0


CHUNK_BLOCKS = 256


class Chunk:
    """Consecutive blocks of a network in plan order, with their views in one flat list (None: rebuilt when next
    read). A publication joins the chunks' lists; a re-plan that changes a block's cell count rebuilds one chunk,
    not the network's list."""

    __slots__ = ("blocks", "flat", "candidates")

    def __init__(self, blocks: list["PairBlock | None"]) -> None:
        self.blocks = blocks
        self.flat: list[CheckedCell] | None = None
        # Records of its blocks that may be sentinels: the sentinel walk skips chunks without any.
        self.candidates = sum(len(b.candidates) for b in blocks if b is not None)

    def views(self) -> list[CheckedCell]:
        if self.flat is None:
            offset, flat = 0, []
            for block in self.blocks:
                if block is not None:
                    block.offset = offset
                    offset += len(block.views)
                    flat += block.views
            self.flat = flat
        return self.flat


PairKey = tuple[str, str]  # (source key, destination key)
Member = tuple[Endpoint, bool, int]  # an endpoint of the network as planned: itself, local, its group


@dataclass(eq=False)
class NetworkPlan:
    """One network's checker, findings and pair blocks (in plan order). `members` and `pieces` are what the
    next re-plan compares against: each endpoint's group (pairs of two groups share their check points, see
    `check_points`) and each planned pair of groups' check points."""

    checker: Checker
    findings: tuple[Finding, ...]
    mapping: MappingStatus | None
    blocks: dict[PairKey, PairBlock] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    pieces: dict[tuple[int, int], list[Piece]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.checker.network)

    chunks: list[Chunk] | None = None  # the blocks cut in plan order (None: cut again when next read)

    @property
    def records(self) -> list[CellRecord]:
        return [r for block in self.blocks.values() for r in block.records]

    def replace_block(self, key: PairKey, block: PairBlock) -> PairBlock | None:
        """Put `block` in the place of the pair's previous block (returned). A pair not planned before goes to
        the end of the order (the caller puts the blocks back in plan order)."""
        old = self.blocks.get(key)
        self.blocks[key] = block
        if old is None or old.chunk is None or self.chunks is None:
            self.chunks = None
            return old
        chunk = block.chunk = old.chunk
        block.pos = old.pos
        chunk.blocks[old.pos] = block
        chunk.candidates += len(block.candidates) - len(old.candidates)
        if chunk.flat is not None and len(old.views) == len(block.views):
            block.offset = old.offset
            chunk.flat[old.offset:old.offset + len(block.views)] = block.views
        else:
            chunk.flat = None
        return old

    def remove_block(self, key: PairKey) -> PairBlock | None:
        old = self.blocks.pop(key, None)
        if old is not None and old.chunk is not None and self.chunks is not None:
            old.chunk.blocks[old.pos] = None
            old.chunk.flat = None
            old.chunk.candidates -= len(old.candidates)
        return old

    def reordered(self, blocks: dict[PairKey, PairBlock]) -> None:
        self.blocks, self.chunks = blocks, None

    def candidate_blocks(self) -> Iterator[PairBlock]:
        """The blocks with records that may be sentinels, in plan order (by chunk when the blocks are cut:
        chunks without any are skipped whole)."""
        if self.chunks is None:
            yield from (b for b in self.blocks.values() if b.candidates)
            return
        for chunk in self.chunks:
            if chunk.candidates:
                yield from (b for b in chunk.blocks if b is not None and b.candidates)

    def cells(self) -> tuple[CheckedCell, ...]:
        """What readers see, in plan order."""
        if self.chunks is None:
            blocks = list(self.blocks.values())
            self.chunks = []
            for start in range(0, len(blocks), CHUNK_BLOCKS):
                chunk = Chunk(list(blocks[start:start + CHUNK_BLOCKS]))
                for pos, block in enumerate(chunk.blocks):
                    assert block is not None
                    block.chunk, block.pos = chunk, pos
                self.chunks.append(chunk)
        return tuple(chain.from_iterable(chunk.views() for chunk in self.chunks))


@dataclass(eq=False)
class PlanChange:
    """How a re-plan changed the previous plan in place: records dropped and built (a touched pair's are both),
    and kept records whose sentinel flag flipped. `compared` counts the pairs of groups whose check points were
    compared with the previous plan's."""

    removed: list[CellRecord] = field(default_factory=list)
    added: list[CellRecord] = field(default_factory=list)
    resentineled: list[CellRecord] = field(default_factory=list)
    compared: int = 0


@dataclass(eq=False)
class Plan:
    """What only changes with the declared or programmed state. `change` is None for a plan built from
    scratch; `built` counts the cells built by the planning that produced this version of it."""

    networks: tuple[NetworkPlan, ...]
    by_id: dict[CellId, CellRecord]
    errors: tuple[DeclaredError, ...]
    unplaced: tuple[Finding, ...] = ()  # findings no network shows (e.g. a NetworkPolicy, a missing NAD)
    sentinels: list[CellRecord] = field(default_factory=list)
    denied_probed: int = 0  # probed cells expected denied (they share the leak budget)
    candidates: int = 0  # probed cells expected allowed (the sentinels are chosen among them)
    change: PlanChange | None = None
    built: int = 0
    inventory: Inventory | None = None  # the declared state planned for, and its findings (reused while it stays)
    declared: list[Finding] = field(default_factory=list)

    def records(self) -> list[CellRecord]:
        return [r for net in self.networks for r in net.records]
