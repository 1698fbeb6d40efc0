"""How a check ended; the CLI maps it to an exit code."""

from __future__ import annotations

import enum


class Status(enum.Enum):
    MATCH = "match"
    DRIFT = "drift"  # drift, or a finding
    COULD_NOT_CHECK = "could-not-check"


def worst(statuses: list["Status"]) -> "Status":
    """Drift beats could-not-check, which beats match."""
    if Status.DRIFT in statuses:
        return Status.DRIFT
    return Status.COULD_NOT_CHECK if Status.COULD_NOT_CHECK in statuses else Status.MATCH
