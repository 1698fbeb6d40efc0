"""One OVSDB source as the agent loop sees it: a change counter the monitor bumps, the last snapshot, its health.

A read remembers the counter value it started from, so a change that lands while a read is running leaves the
counter ahead and is read at the next turn: no signal is ever lost to a reset flag. A read that returns the same
content as before (ovs-vswitchd rewrites Interface statistics every few seconds) is no change.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, Generic, Protocol, TypeVar

from ..adapters.ovsdb import SourceDown
from ..core.state import SourceHealth

LOG = logging.getLogger("segcheck.agent")
S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class Reader(Protocol[S_co]):
    on_change: Callable[[], None] | None
    last_success: float | None

    @property
    def connected(self) -> bool: ...
    def snapshot(self) -> S_co: ...
    def close(self) -> None: ...


class DatabaseWatch(Generic[S]):
    def __init__(self, name: str, reader: Reader[S] | None, wake: Callable[[], None], clock: Callable[[], float]):
        self.name, self.reader, self._wake, self._clock = name, reader, wake, clock
        self.snapshot: S | None = None
        self.health = (SourceHealth(name, False, float("inf"), "not read yet") if reader is not None
                       else SourceHealth(name, False, 0.0, "not configured", configured=False))
        self._signals = 0
        self._seen = -1
        if reader is not None:
            reader.on_change = self._signal

    def _signal(self) -> None:
        self._signals += 1
        self._wake()

    @property
    def down(self) -> bool:
        return self.reader is not None and not self.health.up

    def refresh(self) -> bool:
        """Read again if signalled since the last read (or down); True when the snapshot changed."""
        reader = self.reader
        if reader is None:
            return False
        signals = self._signals
        if signals == self._seen and self.health.up and reader.connected:
            return False
        try:
            snap = reader.snapshot()
        except SourceDown as exc:
            last = reader.last_success
            if self.health.up:
                LOG.warning("source down", extra={"source": self.name, "error": str(exc)})
            self.health = SourceHealth(self.name, False, self._clock() - last if last else float("inf"), str(exc))
            changed, self.snapshot = self.snapshot is not None, None
            return changed
        self._seen = signals
        self.health = SourceHealth(self.name, True, 0.0)
        if snap == self.snapshot:
            return False
        self.snapshot = snap
        return True

    def aged_health(self) -> SourceHealth:
        """Health with the staleness of a source that is down grown to now."""
        reader = self.reader
        if self.health.up or reader is None or reader.last_success is None:
            return self.health
        return replace(self.health, staleness_seconds=self._clock() - reader.last_success)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
