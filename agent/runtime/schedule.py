"""When each cell is probed next: one heap per lane, keyed by due time, so a tick costs O(due cells).

Lanes are served in order: cells never observed (or whose planes changed) first, then the sentinels (allowed
paths), then the routine re-probes (every cell at least once per interval; denied cells more often within the
leak-sampling budget). A record has at most one live entry; a rescheduled record's older entry is skipped when
it surfaces (its ticket no longer matches).
"""

from __future__ import annotations

import enum
import heapq
import itertools

from .cell_records import NOT_SCHEDULED, CellRecord


class Lane(enum.IntEnum):
    URGENT = 0
    SENTINEL = 1
    ROUTINE = 2


class ProbeSchedule:
    def __init__(self) -> None:
        self._heaps: tuple[list[tuple[float, int, CellRecord]], ...] = tuple([] for _ in Lane)
        self._tickets = itertools.count()

    def put(self, record: CellRecord, lane: Lane, due: float) -> None:
        record.ticket = next(self._tickets)
        heapq.heappush(self._heaps[lane], (due, record.ticket, record))

    def clear(self) -> None:
        for heap in self._heaps:
            heap.clear()

    def _head(self, lane: Lane) -> tuple[float, int, CellRecord] | None:
        heap = self._heaps[lane]
        while heap and heap[0][2].ticket != heap[0][1]:
            heapq.heappop(heap)  # a stale entry of a rescheduled record
        return heap[0] if heap else None

    def next_due(self) -> float | None:
        heads = [h[0] for h in (self._head(lane) for lane in Lane) if h is not None]
        return min(heads) if heads else None

    def take(self, horizon: float, budget: int) -> list[CellRecord]:
        """Unschedule and return up to `budget` records due by `horizon`, lane by lane, earliest first."""
        out: list[CellRecord] = []
        for lane in Lane:
            heap = self._heaps[lane]
            while len(out) < budget:
                head = self._head(lane)
                if head is None or head[0] > horizon:
                    break
                heapq.heappop(heap)
                head[2].ticket = NOT_SCHEDULED
                out.append(head[2])
        return out
