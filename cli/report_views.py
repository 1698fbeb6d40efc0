"""The typed reports of matrix, explain, verify/drift and diff, put into the neutral report model (reports.py)
and written in the format asked for (`-o markdown|html|junit|sarif`)."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from segcheck.agent.adapters.manifest_locations import Location, ManifestLocations, locate
from segcheck.agent.core.diff import VERDICT_CHANGES, CellChange, ChangeKind
from segcheck.agent.core.drift import CheckedCell, DriftClass, has_drift, summarize
from segcheck.agent.core.findings import Finding, Severity
from segcheck.agent.core.model import FAMILY_NAMES, Judgement, PortRange, Verdict
from segcheck.agent.core.render import GRID_LEGEND, cell_port_text, cell_row, grid
from segcheck.agent.runtime.checker import CheckReport
from segcheck.agent.runtime.checks import ExplainReport, MatrixReport, VerifyReport
from segcheck.agent.runtime.diff import DiffReport, FailOnChange
from segcheck.agent.runtime.status import FailOn, Status, findings_status

from .diff_view import (CHANGE_HEADERS, KIND_TITLES, REATTRIBUTED_HEADERS, change_row, reattributions, summary,
                        totals)
from .options import STDIN
from .reports import Case, Document, Result, Section, Suite, Table, html_page, junit, markdown, sarif
from .svg_grid import Grid, Shade

FINDING_HEADERS = ["SEVERITY", "KIND", "POLICY", "MESSAGE", "WHERE"]
# The verdicts an expected matrix holds (a programmed half judged on another node never reaches its grid).
VERDICT_COLOURS = {Verdict.ALLOWED: "#2e7d32", Verdict.DENIED: "#c62828", Verdict.UNKNOWN: "#f9a825"}
VERDICT_SHADES = {v.glyph: Shade(colour, v.value) for v, colour in VERDICT_COLOURS.items()}
CHECK_SHADES = {"=": Shade("#2e7d32", "the three planes agree"), "!": Shade("#c62828", "drift"),
                "?": Shade("#f9a825", "could not check (no evidence)")}
CHANGE_SHADES = {"+": Shade("#e65100", "opened (now allowed)"), "-": Shade("#1565c0", "closed (now denied)"),
                 "±": Shade("#6a1b9a", "opened and closed (some ports each)"), "?": Shade("#f9a825", "unknown"),
                 "~": Shade("#757575", "re-attributed (same verdict, other rules)")}
NO_CELL = "-"  # render.grid's glyph for a pair without cells
UNPLACED = "no network"  # where findings that belong to no network's record are reported


def locations_of(files: Sequence[str]) -> ManifestLocations:
    """Where the objects of these manifests were written; nothing for the live cluster or standard input."""
    return locate([f for f in files if f != STDIN])


def _where(location: Location | None) -> str:
    return f"{location.file}:{location.line}" if location is not None else ""


def _write(fmt: str, doc: Callable[[], Document], suites: Callable[[], list[Suite]],
           results: Callable[[], list[Result]], name: str, pictures: bool = True) -> str:
    if fmt == "junit":
        return junit(name, suites())
    if fmt == "sarif":
        return sarif(results())
    return markdown(doc(), pictures=pictures) if fmt == "markdown" else html_page(doc())


# ----------------------------------------------------------------------------- findings, shared

def _finding_location(f: Finding, locations: ManifestLocations) -> Location | None:
    return (locations.policy(f.policy) if f.policy else None) or (locations.network(f.network) if f.network else None)


def _finding_name(f: Finding) -> str:
    return f"finding {f.kind.value}" + (f" {f.policy}" if f.policy else "") + (f" on {f.network}" if f.network else "")


def finding_case(f: Finding, fail_on: FailOn | None) -> Case:
    """A failure when the finding fails the command (--fail-on), else a passing case that says it."""
    fails = fail_on is not None and findings_status([f], fail_on) is Status.DRIFT
    return Case(_finding_name(f), failure=f"{f.severity.value}: {f.message}" if fails else None,
                details=f"{f.severity.value}: {f.message}")


def finding_result(f: Finding, locations: ManifestLocations) -> Result:
    return Result(f.kind.value, "error" if f.severity is Severity.ERROR else "warning", f.message,
                  _finding_location(f, locations), str(f.policy) if f.policy else (str(f.network) if f.network else None),
                  f"MultiNetworkPolicy finding: {f.kind.value}")


def findings_table(findings: Iterable[Finding], locations: ManifestLocations, title: str = "findings") -> Table:
    return Table(FINDING_HEADERS, [[f.severity.value, f.kind.value, str(f.policy or ""), f.message,
                                    _where(_finding_location(f, locations))] for f in findings], title)


def _reason_location(j: Judgement | None, locations: ManifestLocations) -> Location | None:
    if j is None:
        return None
    return next((loc for loc in (locations.reason(r) for r in j.because) if loc is not None), None)


# ----------------------------------------------------------------------------- matrix

def _matrix_grid(r: MatrixReport) -> Grid:
    rows = grid(r.matrix, list(r.matrix.cells()))[1:]
    return Grid([e.key for e in r.matrix.endpoints], [["" if g == NO_CELL else g for g in row[1:]] for row in rows],
                VERDICT_SHADES)


def matrix_report(fmt: str, reports: list[MatrixReport], fail_on: FailOn, locations: ManifestLocations,
                  unplaced: Sequence[Finding] = ()) -> str:
    """`unplaced`: the findings no network shows (a policy naming only missing NADs...), reported once apart."""
    def doc() -> Document:
        sections = []
        for r in reports:
            cells = list(r.matrix.cells())
            sections.append(Section(
                f"{r.matrix.network} (OVN-K {r.matrix.profile.name})",
                [f"{len(r.matrix.endpoints)} endpoints, {len(cells)} cells, {len(r.findings)} findings", GRID_LEGEND],
                _matrix_grid(r),
                [Table(["FROM", "TO", "PORT", "EXPECTED", "BECAUSE", "WHERE"],
                       [cell_row(c) + [_where(_reason_location(c.judgement, locations))] for c in cells], "cells"),
                 findings_table(r.findings, locations)]))
        if unplaced:
            sections.append(Section(UNPLACED, [], None, [findings_table(unplaced, locations)]))
        return Document("segcheck matrix: expected reachability", [], sections)

    def suites() -> list[Suite]:
        return [Suite(f"matrix {r.matrix.network}",
                      [Case(f"{c.source} -> {c.destination} {cell_port_text(c.ports, c.protocol, c.family)}",
                            details=f"expected {c.verdict.value} because {', '.join(c.judgement.because)}")
                       for c in r.matrix.cells()] + [finding_case(f, fail_on) for f in r.findings])
                for r in reports] + ([Suite(f"matrix {UNPLACED}", [finding_case(f, fail_on) for f in unplaced])]
                                     if unplaced else [])

    def results() -> list[Result]:
        return [finding_result(f, locations) for f in [*(f for r in reports for f in r.findings), *unplaced]]

    return _write(fmt, doc, suites, results, "segcheck matrix")


# ----------------------------------------------------------------------------- explain

def explain_answers(report: ExplainReport) -> list[tuple[str, Judgement]]:
    """(`5432/TCP`, or on a dual-stack network `5432/TCP ipv6`, and its verdict) per answer of an explain."""
    if report.judgement is not None:
        return [(cell_port_text(PortRange(report.protocol, report.port or 0, report.port or 0), report.protocol,
                                report.family), report.judgement)]
    return [(cell_port_text(c.ports, c.protocol, c.family), c.judgement) for c in report.cells]


def explain_report(fmt: str, report: ExplainReport, fail_on: FailOn, locations: ManifestLocations) -> str:
    answers = explain_answers(report)
    pair = f"{report.source.key} -> {report.destination.key}"

    def doc() -> Document:
        rows = [[ports, j.verdict.value, r.ref, r.detail, _where(locations.reason(r.ref))]
                for ports, j in answers for r in j.reasons]
        trace = report.trace
        return Document(f"segcheck explain {pair} on {report.network}", [], [Section(
            pair, [] if trace is None else [f"ovn-trace (first packet of a new connection): {trace.verdict}"], None,
            [Table(["PORTS", "EXPECTED", "BECAUSE", "DETAIL", "WHERE"], rows, "verdicts"),
             findings_table(report.findings, locations)], trace.text if trace is not None else "")])

    def suites() -> list[Suite]:
        cases = [Case(f"{pair} {ports}", details=f"expected {j.verdict.value} because {', '.join(j.because)}")
                 for ports, j in answers]
        if report.trace is not None:
            cases.append(Case(f"{pair} ovn-trace", skipped="ovn-trace gave no verdict" if report.trace.verdict == "unknown"
                              else None, details=report.trace.text))
        return [Suite(f"explain {report.network}", cases + [finding_case(f, fail_on) for f in report.findings])]

    return _write(fmt, doc, suites, lambda: [finding_result(f, locations) for f in report.findings], "segcheck explain")


# ----------------------------------------------------------------------------- verify / drift

def _plane(j: Judgement | None) -> str:
    return "-" if j is None else j.verdict.value


def _drift_text(c: CheckedCell) -> str:
    return ",".join(d.value for d in c.drift) or "ok"


def _cell_name(c: CheckedCell) -> str:
    return f"{c.source} -> {c.destination} {c.ports}" + (f" {FAMILY_NAMES[c.family]}" if c.family is not None else "")


def _ports_family(c: CheckedCell) -> str:
    return str(c.ports) + (f" {FAMILY_NAMES[c.family]}" if c.family is not None else "")


def _planes_text(c: CheckedCell) -> str:
    return (f"expected {c.expected.verdict.value} ({', '.join(c.expected.because)}); programmed {_plane(c.programmed)}"
            f"{' (' + ', '.join(c.programmed.because) + ')' if c.programmed else ''}; observed {_plane(c.observed)}"
            f"{' (' + ', '.join(c.observed.because) + ')' if c.observed else ''}; probed at {c.sample_port}")


def _check_glyph(cells: list[CheckedCell]) -> str:
    if any(has_drift(c) for c in cells):
        return "!"
    return "?" if any(DriftClass.UNKNOWN in c.drift for c in cells) else "="


def _check_grid(cells: list[CheckedCell]) -> Grid:
    labels = list(dict.fromkeys(k for c in cells for k in (c.source, c.destination)))
    by_pair: dict[tuple[str, str], list[CheckedCell]] = {}
    for c in cells:
        by_pair.setdefault((c.source, c.destination), []).append(c)
    return Grid(labels, [[_check_glyph(by_pair[(s, d)]) if (s, d) in by_pair else "" for d in labels] for s in labels],
                CHECK_SHADES)


def _cell_case(c: CheckedCell) -> Case:
    if has_drift(c):
        return Case(_cell_name(c), failure=f"drift: {_drift_text(c)}", details=_planes_text(c))
    if DriftClass.UNKNOWN in c.drift:
        return Case(_cell_name(c), skipped="could not check: the probe gave no evidence", details=_planes_text(c))
    return Case(_cell_name(c), details=_planes_text(c))


def _network_lines(r: CheckReport) -> list[str]:
    lines = [f"{len(r.cells)} check points, {len(r.probes)} probes in {r.duration_seconds:.2f} s",
             "drift: " + ", ".join(f"{k}={v}" for k, v in summarize(r.cells).items())]
    if r.mapping is not None:
        lines.append(f"localnet {r.mapping.localnet} -> bridge {r.mapping.bridge or '-'}: "
                     f"{'ok' if r.mapping.ok else 'BROKEN'}")
    return lines + [f"OVN-K as seen in NB: {'; '.join(r.ovnk)}"] * bool(r.ovnk) + [f"warning: {e}" for e in r.errors]


def verify_report(fmt: str, report: VerifyReport, fail_on: FailOn, locations: ManifestLocations,
                  command: str = "verify") -> str:
    def doc() -> Document:
        return Document(f"segcheck {command}: declared vs programmed vs observed", [], [Section(
            str(r.network), _network_lines(r), _check_grid(r.cells),
            [Table(["FROM", "TO", "PORTS", "PROBE", "EXPECTED", "PROGRAMMED", "OBSERVED", "DRIFT", "WHERE"],
                   [[c.source, c.destination, _ports_family(c), str(c.sample_port), c.expected.verdict.value,
                     _plane(c.programmed), _plane(c.observed), _drift_text(c),
                     _where(_reason_location(c.expected, locations))] for c in r.cells], "check points"),
             findings_table(r.findings, locations)]) for r in report.networks])

    def suites() -> list[Suite]:
        return [Suite(f"{command} {r.network}", [_cell_case(c) for c in r.cells]
                      + [Case(f"source {i + 1}", error=e) for i, e in enumerate(r.errors)]
                      + [finding_case(f, fail_on) for f in r.findings]) for r in report.networks]

    def results() -> list[Result]:
        out = [finding_result(f, locations) for r in report.networks for f in r.findings]
        for r in report.networks:
            for c in r.cells:
                for d in (d for d in c.drift if d is not DriftClass.UNKNOWN):
                    out.append(Result(f"drift-{d.value}", "error", f"{_cell_name(c)} on {r.network}: {d.value} drift; "
                                      f"{_planes_text(c)}", _reason_location(c.expected, locations),
                                      f"{r.network}:{_cell_name(c)}", f"{d.value} drift between the planes"))
        return out

    return _write(fmt, doc, suites, results, f"segcheck {command}")


# ----------------------------------------------------------------------------- diff

def _change_location(c: CellChange, head: ManifestLocations, base: ManifestLocations) -> str:
    """Where to look: the head's rule that decides the cell now, else the base's rule that decided it."""
    loc = _reason_location(c.after, head)
    return _where(loc) if loc is not None else (f"base {_where(b)}" if (b := _reason_location(c.before, base)) else "")


def _change_glyph(kinds: set[ChangeKind]) -> str:
    if ChangeKind.UNKNOWN in kinds:
        return "?"
    opened, closed = ChangeKind.OPENED in kinds, ChangeKind.CLOSED in kinds
    return "±" if opened and closed else "+" if opened else "-" if closed else "~"


def _diff_grid(changes: list[CellChange]) -> Grid:
    labels = sorted({k for c in changes for k in (c.source, c.destination)})
    kinds: dict[tuple[str, str], set[ChangeKind]] = {}
    for c in changes:
        kinds.setdefault((c.source, c.destination), set()).add(c.kind)
    return Grid(labels, [[_change_glyph(kinds[(s, d)]) if (s, d) in kinds else "" for d in labels] for s in labels],
                CHANGE_SHADES)


def _fails(kind: ChangeKind, fail_on: FailOnChange) -> bool:
    return (kind is ChangeKind.OPENED and fail_on is not FailOnChange.NEVER) or (
        kind in VERDICT_CHANGES and fail_on is FailOnChange.CHANGED)


def diff_title(report: DiffReport) -> str:
    t = totals(report)
    return "segcheck diff: " + ", ".join(f"{t.get(k.value, 0)} {k.value}" for k in VERDICT_CHANGES)


def diff_report(fmt: str, report: DiffReport, base_label: str, head_label: str, base: ManifestLocations,
                head: ManifestLocations) -> str:
    def doc() -> Document:
        sections = []
        for net in report.networks:
            d = net.diff
            lines = [summary(d.counts())] + [f"{label}: {', '.join(keys)}" for label, keys in
                                            (("endpoints added", d.added), ("endpoints removed", d.removed)) if keys]
            tables = [Table(CHANGE_HEADERS + ["WHERE"], [change_row(c) + [_change_location(c, head, base)]
                                                         for c in d.of(kind)], KIND_TITLES[kind])
                      for kind in VERDICT_CHANGES if d.of(kind)]
            moved = d.of(ChangeKind.REATTRIBUTED)
            if moved:
                tables.append(Table(REATTRIBUTED_HEADERS, reattributions(moved), KIND_TITLES[ChangeKind.REATTRIBUTED]))
            if net.new_findings:
                tables.append(findings_table(net.new_findings, head, "new findings"))
            if net.fixed_findings:
                tables.append(findings_table(net.fixed_findings, base, "fixed findings"))
            sections.append(Section(str(d.network), lines, _diff_grid(d.changes), tables))
        return Document(diff_title(report), [f"base: {base_label} -> head: {head_label} (OVN-K {report.profile})"],
                        sections)

    def suites() -> list[Suite]:
        out = []
        for net in report.networks:
            d = net.diff
            cases = [Case(f"{c.kind.value} {c.source} -> {c.destination} {c.ports}",
                          failure=c.kind.value if _fails(c.kind, report.fail_on) else None,
                          details=" -> ".join(change_row(c)[3:])) for c in d.changes]
            cases.append(Case(f"{d.unchanged} cells unchanged"))
            cases += [finding_case(f, None) for f in net.new_findings]
            out.append(Suite(f"diff {d.network}", cases))
        return out

    def results() -> list[Result]:
        out = []
        for net in report.networks:
            for c in net.diff.changes:
                if c.kind is ChangeKind.REATTRIBUTED:
                    continue
                level = "error" if _fails(c.kind, report.fail_on) else "note"
                out.append(Result(f"cell-{c.kind.value}", level,
                                  f"{c.source} -> {c.destination} {c.ports} on {net.diff.network} {c.kind.value}: "
                                  + " -> ".join(change_row(c)[3:]), _reason_location(c.after, head),
                                  f"{net.diff.network}:{c.source} -> {c.destination} {c.ports}",
                                  KIND_TITLES[c.kind]))
            out += [finding_result(f, head) for f in net.new_findings]
        return out

    # A review comment's host strips inline SVG (and would show its labels as stray text): markdown has no grid.
    return _write(fmt, doc, suites, results, "segcheck diff", pictures=False)
