"""What every rendering of a `segcheck diff` shares: its JSON records, the words and rows of each change, and
re-attributions summarised by rule (a renamed default-deny re-attributes every denied cell; one line says so)."""

from __future__ import annotations

from typing import Any

from segcheck.agent.core.diff import VERDICT_CHANGES, CellChange, ChangeKind
from segcheck.agent.core.model import FAMILY_NAMES, Judgement
from segcheck.agent.core.render import family_json, judgement_json, port_json
from segcheck.agent.runtime.diff import DiffReport, NetworkDiffReport

KIND_TITLES = {
    ChangeKind.OPENED: "opened (now allowed)",
    ChangeKind.CLOSED: "closed (now denied)",
    ChangeKind.UNKNOWN: "unknown (a side cannot tell)",
    ChangeKind.REATTRIBUTED: "re-attributed (same verdict, other rules)",
}
ABSENT = "absent"  # the endpoint is not in that state
CHANGE_HEADERS = ["FROM", "TO", "PORTS", "BEFORE", "AFTER"]
REATTRIBUTED_HEADERS = ["VERDICT", "RULES BEFORE", "RULES AFTER", "CELLS"]


def side_json(judgement: Judgement | None) -> dict[str, Any] | None:
    return None if judgement is None else {"expected": judgement.verdict.value, **judgement_json(judgement)}


def change_json(change: CellChange) -> dict[str, Any]:
    """A change in the keys of a matrix cell, with both sides; `port`/`end_port` always name the exact range."""
    return {"from": change.source, "to": change.destination, **port_json(change.ports),
            "protocol": change.protocol.value, **family_json(change.family), "change": change.kind.value,
            "before": side_json(change.before), "after": side_json(change.after)}


def network_json(report: DiffReport, net: NetworkDiffReport) -> dict[str, Any]:
    d = net.diff
    return {
        "network": str(d.network), "profile": report.profile, "in_base": d.in_before, "in_head": d.in_after,
        "counts": d.counts(),
        "changes": [change_json(c) for c in d.changes],
        "added_endpoints": d.added, "removed_endpoints": d.removed,
        "new_findings": [f.to_json() for f in net.new_findings],
        "fixed_findings": [f.to_json() for f in net.fixed_findings],
    }


def side_text(judgement: Judgement | None) -> str:
    if judgement is None:
        return ABSENT
    return f"{judgement.verdict.value}: {', '.join(judgement.because)}" if judgement.because else judgement.verdict.value


def change_row(change: CellChange) -> list[str]:
    ports = str(change.ports) + (f" {FAMILY_NAMES[change.family]}" if change.family is not None else "")
    return [change.source, change.destination, ports, side_text(change.before), side_text(change.after)]


def reattributions(changes: list[CellChange]) -> list[list[str]]:
    """Re-attributed cells grouped by (verdict, rules before, rules after), largest group first."""
    groups: dict[tuple[str, str, str], int] = {}
    for c in changes:
        assert c.before is not None and c.after is not None
        key = (c.after.verdict.value, ", ".join(c.before.because), ", ".join(c.after.because))
        groups[key] = groups.get(key, 0) + 1
    return [[*key, str(n)] for key, n in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))]


def summary(counts: dict[str, int]) -> str:
    parts = [f"{counts[k.value]} {k.value}" for k in (*VERDICT_CHANGES, ChangeKind.REATTRIBUTED)]
    return ", ".join(parts) + f"; {counts['unchanged']} cells unchanged"


def totals(report: DiffReport) -> dict[str, int]:
    out: dict[str, int] = {}
    for net in report.networks:
        for k, v in net.diff.counts().items():
            out[k] = out.get(k, 0) + v
    return out
