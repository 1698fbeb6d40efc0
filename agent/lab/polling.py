"""Waiting for conditions with a deadline: the lab never sleeps a fixed time to synchronise."""

from __future__ import annotations

import time
from typing import Callable

from .errors import LabError


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.02,
               max_interval: float = 0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; the interval backs off up to `max_interval`.

    Bounded in time (deadline) and hence in count. Exceptions from the predicate count as "not yet".
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001 - a probe that fails is a condition not yet met
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)


def require(predicate: Callable[[], bool], what: str, *, timeout: float, interval: float = 0.02) -> None:
    """Like `wait_until`, but a timeout is an error naming what was awaited."""
    if not wait_until(predicate, timeout=timeout, interval=interval):
        raise LabError(f"timed out after {timeout:g}s waiting for {what}")
