"""`segcheck matrix` and `segcheck explain`: the declared plane (explain can also trace through OVN)."""

from __future__ import annotations

from typing import Any, Callable

import json

import click

from segcheck.agent.core.enforcement import unplaced_findings
from segcheck.agent.core.programmed import ProgrammedJudgement
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.core.render import (GRID_LEGEND, cell_json, finding_text, cell_row, class_grid, class_member_rows, class_rows, grid,
                                        family_json, grouped_json_chunks, judgement_json, matrix_json, pairs_json_chunks, plane_json)
from segcheck.agent.runtime.checks import UsageError, expected_matrix, explain as explain_cell
from segcheck.agent.runtime.status import FailOn, findings_status, worst

from .options import (DeclaredInput, _stack, complete_endpoint, declared_input, fail_on_option, namespace_option,
                      network_option, output_option, ovnk_option, parse_network, profile, with_sources)
from .output import FORMATS, console, emit_data, emit_records, exit_code, fail, is_table, table
from .report_views import explain_answers, explain_report, locations_of, matrix_report
from .reports import REPORT_FORMATS

manifest_options = _stack(
    declared_input, namespace_option, network_option, output_option(FORMATS + REPORT_FORMATS), ovnk_option, fail_on_option,
)

MATRIX_EXAMPLES = """Examples:

\b
  segcheck matrix -f examples/seed                  # every network's grid, its cells, its findings
  segcheck matrix -f manifests/ -n default -o json  # one namespace's workloads, JSON Lines (one network a line)
  oc get mnp,net-attach-def,pods,vmi -A -o yaml | segcheck matrix -f -
  segcheck matrix -f manifests/ --fail-on error     # warnings are printed but do not fail (exit 0)
"""
EXPLAIN_EXAMPLES = """Examples:

\b
  segcheck explain vm-server db:5432 -f examples/seed        # expected verdict and the rule behind it
  segcheck explain default/podclient vm-server -f examples/seed  # every port range of the pair
  segcheck explain vm-server db:5432 --lab --trace            # ... and ovn-trace of its first packet
"""


def _print_findings(out: Any, findings: list[Any]) -> None:
    for f in findings:
        out.print(f"[yellow]{f.severity.value}[/] {finding_text(f)}")


# Above this many endpoints the table shows classes, not endpoints (a wider grid is not read, only scrolled).
GROUPED_ABOVE = 40


@click.command(epilog=MATRIX_EXAMPLES)
@manifest_options
@click.option("--pairs", is_flag=True,
              help="Every pair of endpoints instead of classes of equivalent endpoints (JSON: the per-pair form).")
def matrix(declared: DeclaredInput, namespace: str | None, network: str | None, fmt: str, ovnk: str,
           fail_on: FailOn, pairs: bool) -> None:
    """The expected reachability matrix of each network, with policy findings below.

    Endpoints selected by the same policies and treated alike by every rule form one class; the matrix is
    printed class x class with each class's members listed once (JSON: the grouped form, see the README).
    The table shows pairs up to 40 endpoints, classes above; --pairs always shows pairs.

    Exit 0: no finding at or above --fail-on; 1: such a finding; 2: bad input."""
    inventory = declared.load()
    try:
        reports = expected_matrix(inventory, profile(ovnk), parse_network(network), namespace)
    except UsageError as exc:
        raise fail(str(exc)) from None
    unplaced = report_unplaced(inventory, profile(ovnk)) if network is None else []
    # The findings of no network close the stream, as a record of network null.
    closing = [{"network": None, "profile": profile(ovnk).name, "findings": [f.to_json() for f in unplaced]}] \
        if unplaced else []
    if fmt in REPORT_FORMATS:
        click.echo(matrix_report(fmt, reports, fail_on, locations_of(declared.files), unplaced), nl=False)
    elif fmt == "json":
        chunks = pairs_json_chunks if pairs else grouped_json_chunks
        for r in reports:  # JSON Lines, each line written as it is computed
            for chunk in chunks(r.matrix, r.findings):
                click.echo(chunk, nl=False)
            click.echo()
        for record in closing:
            click.echo(json.dumps(record, separators=(",", ":")))
    elif not is_table(fmt):
        emit_records([matrix_json(r.matrix, r.findings, pairs) for r in reports] + closing, fmt)
    else:
        out = console()
        for r in reports:
            if pairs or len(r.matrix.endpoints) <= GROUPED_ABOVE:
                _print_pairs(out, r.matrix, wide=fmt == "wide")
            else:
                _print_classes(out, r.matrix)
            _print_findings(out, r.findings)
    raise click.exceptions.Exit(exit_code(worst([findings_status(r.findings, fail_on) for r in reports]
                                                + [findings_status(unplaced, fail_on)])))


def _stages(judgement: Any) -> dict[str, str]:
    """Per pipeline stage, what each tier did (`tier 0 pass (acl/…) -> tier 2 allow (acl/…)`)."""
    chain = judgement.chain() if isinstance(judgement, ProgrammedJudgement) else {}
    return {stage.value: text for stage, text in chain.items()}
def _print_pairs(out: Any, m: NetworkReachability, wide: bool) -> None:
    cells = list(m.cells())
    out.print(f"[bold]{m.network}[/] (OVN-K {m.profile.name}): {len(m.endpoints)} endpoints, "
              f"{len(m.members)} classes, {len(cells)} cells")
    g = grid(m, cells)
    out.print(table(None, g[0], g[1:]))
    out.print(GRID_LEGEND, style="dim")
    headers = ["FROM", "TO", "PORT", "EXPECTED", "BECAUSE"] + (["REASONS"] if wide else [])
    rows = [cell_row(c) + ([_reasons(c.judgement)] if wide else []) for c in cells]
    out.print(table(None, headers, rows, [3]))


def _print_classes(out: Any, m: NetworkReachability) -> None:
    out.print(f"[bold]{m.network}[/] (OVN-K {m.profile.name}): {len(m.endpoints)} endpoints in {len(m.members)} "
              "classes (same policies, same verdicts); every pair of two classes' members has the class pair's "
              "cells (--pairs lists them pair by pair)")
    out.print(table(None, ["CLASS", "MEMBERS", "SELECTED BY"], list(class_member_rows(m))))
    if len(m.members) <= GROUPED_ABOVE:
        g = class_grid(m)
        out.print(table(None, g[0], g[1:]))
        out.print(GRID_LEGEND.replace("grid:", "grid of classes:"), style="dim")
    out.print(table(None, ["FROM", "TO", "PORT", "EXPECTED", "BECAUSE"], list(class_rows(m)), [3]))


def report_unplaced(inventory: Any, prof: Any) -> list[Any]:
    """Print the findings no network shows, on stderr (they belong to no network's record)."""
    unplaced = unplaced_findings(inventory, prof)
    for f in unplaced:
        click.echo(f"{f.severity.value} {finding_text(f)}", err=True)
    return unplaced


def _reasons(judgement: Any) -> str:
    return "; ".join(f"{r.ref}: {r.detail}" if r.detail else r.ref for r in judgement.reasons)


def _explain_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--trace", is_flag=True,
                        help="Also trace the cell through OVN's logical pipeline (ovn-trace; --lab for the lab's).")(
        with_sources(manifest_options(func)))


@click.command(epilog=EXPLAIN_EXAMPLES)
@click.argument("source", metavar="FROM", shell_complete=complete_endpoint)
@click.argument("destination", metavar="TO[:PORT[/PROTO]]", shell_complete=complete_endpoint)
@_explain_options
def explain(source: str, destination: str, declared: DeclaredInput, lab: bool, open_sources: Any,
            namespace: str | None, network: str | None, fmt: str, ovnk: str, fail_on: FailOn, trace: bool) -> None:
    """One expected verdict and why. FROM/TO: a pod or VM (`[ns/]name`), an external endpoint (`db`) or an IP.

    Exit 0: answered; 1: a finding at or above --fail-on; 2: bad input; 3: --trace gave no evidence."""
    inventory = declared.load()
    try:
        report = explain_cell(inventory, source, destination, profile(ovnk), network=parse_network(network),
                              namespace=namespace, trace_with=open_sources(declared.files) if trace else None)
    except UsageError as exc:
        raise fail(str(exc)) from None
    src, dst, net = report.source, report.destination, report.network
    if fmt in REPORT_FORMATS:
        click.echo(explain_report(fmt, report, fail_on, locations_of(declared.files)), nl=False)
    elif not is_table(fmt):
        # With a port: one verdict, in the keys of a matrix cell. Without: the pair's cells, as in the matrix.
        head: dict[str, Any] = {"network": str(net), "profile": report.profile, "from": src.key, "to": dst.key}
        if report.judgement is not None:
            head.update({"port": report.port, "protocol": report.protocol.value, **family_json(report.family),
                         "expected": report.judgement.verdict.value, **judgement_json(report.judgement)})
        else:
            head["cells"] = [cell_json(c) for c in report.cells]
        head["findings"] = [f.to_json() for f in report.findings]
        if report.trace is not None:
            head["trace"] = {"verdict": report.trace.verdict, "text": report.trace.text}
        if report.programmed is not None:
            head["programmed"] = {**plane_json(report.programmed), "stages": _stages(report.programmed)}
        emit_data(head, fmt)
    else:
        out = console()
        for label, j in explain_answers(report):
            out.print(f"{src.key} -> {dst.key} {label} on {net}: expected [bold]{j.verdict.value}[/]")
            for r in j.reasons:
                out.print(f"  because {r.ref}: {r.detail}")
        if report.programmed is not None:
            out.print(f"programmed (segcheck's evaluation of the ACLs): [bold]{report.programmed.verdict.value}[/]")
            for stage, chain in _stages(report.programmed).items():
                out.print(f"  {stage}: {chain}")
        if report.trace is not None:
            out.print(f"ovn-trace (first packet of a new connection): [bold]{report.trace.verdict}[/]")
            out.print(report.trace.text, markup=False, highlight=False)
        _print_findings(out, report.findings)
    raise click.exceptions.Exit(exit_code(worst([report.status, findings_status(report.findings, fail_on)])))
