"""How a check ended; the CLI maps it to an exit code."""

from __future__ import annotations

import enum
from typing import Iterable

from ..core.findings import Finding, Severity


class Status(enum.Enum):
    MATCH = "match"
    DRIFT = "drift"  # drift, or a finding
    COULD_NOT_CHECK = "could-not-check"


def worst(statuses: list["Status"]) -> "Status":
    """Drift beats could-not-check, which beats match."""
    if Status.DRIFT in statuses:
        return Status.DRIFT
    return Status.COULD_NOT_CHECK if Status.COULD_NOT_CHECK in statuses else Status.MATCH


class FailOn(enum.Enum):
    """Which findings fail a command (exit 1): `--fail-on`."""

    ERROR = "error"
    WARNING = "warning"  # warnings and errors
    NEVER = "never"


def findings_status(findings: Iterable[Finding], fail_on: FailOn) -> Status:
    """DRIFT when a finding at or above the chosen severity was reported."""
    if fail_on is FailOn.NEVER:
        return Status.MATCH
    failing = {Severity.ERROR} | ({Severity.WARNING} if fail_on is FailOn.WARNING else set())
    return Status.DRIFT if any(f.severity in failing for f in findings) else Status.MATCH
