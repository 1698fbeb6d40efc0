"""A thread that runs one probe batch at a time, so the agent loop keeps reacting to its sources (and publishing
controller drift at once) while probes are in flight: a denied probe waits the whole timeout."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Generic, TypeVar

LOG = logging.getLogger("segcheck.agent")
B = TypeVar("B")
R = TypeVar("R")


class ProbeWorker(Generic[B, R]):
    def __init__(self, execute: Callable[[B], R], on_done: Callable[[], None]) -> None:
        self._execute, self._on_done = execute, on_done
        self._cond = threading.Condition()
        self._batch: B | None = None
        self._results: list[tuple[B, R | None]] = []
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="segcheck-probes", daemon=True)
        self._thread.start()

    def signal_stop(self) -> None:
        """Stop after the batch in flight (if any); `join` waits for it."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def busy(self) -> bool:
        return self._busy

    def submit(self, batch: B) -> None:
        with self._cond:
            if self._busy:
                raise RuntimeError("a probe batch is already in flight")
            self._batch, self._busy = batch, True
            self._cond.notify_all()

    def collect(self) -> list[tuple[B, R | None]]:
        """Finished batches with their results (None: the batch failed), oldest first, each once."""
        with self._cond:
            out, self._results = self._results, []
        return out

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._batch is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                batch, self._batch = self._batch, None
            assert batch is not None
            result: R | None = None
            try:
                result = self._execute(batch)
            except Exception:  # noqa: BLE001 - the worker must outlive any one bad batch
                LOG.exception("probe batch failed")
            with self._cond:
                self._results.append((batch, result))
                self._busy = False
            self._on_done()
