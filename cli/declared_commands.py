"""`segcheck matrix` and `segcheck explain`: the declared plane (explain can also trace through OVN)."""

from __future__ import annotations

from typing import Any, Callable

import click

from segcheck.agent.core.programmed import ProgrammedJudgement
from segcheck.agent.core.render import (GRID_LEGEND, cell_json, cell_row, grid, judgement_json, matrix_json,
                                        plane_json, port_text)
from segcheck.agent.runtime.checks import UsageError, expected_matrix, explain as explain_cell
from segcheck.agent.runtime.status import FailOn, findings_status, worst

from .options import (DeclaredInput, _stack, complete_endpoint, declared_input, fail_on_option, namespace_option,
                      network_option, output_option, ovnk_option, parse_network, profile, with_sources)
from .output import console, emit_data, emit_records, exit_code, fail, is_table, table

manifest_options = _stack(
    declared_input, namespace_option, network_option, output_option(), ovnk_option, fail_on_option,
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
        who = f"{f.policy}: " if f.policy else ""
        out.print(f"[yellow]{f.severity.value}[/] {f.kind.value}: {who}{f.message}")


@click.command(epilog=MATRIX_EXAMPLES)
@manifest_options
def matrix(declared: DeclaredInput, namespace: str | None, network: str | None, fmt: str, ovnk: str,
           fail_on: FailOn) -> None:
    """The expected reachability matrix of each network, with policy findings below.

    Exit 0: no finding at or above --fail-on; 1: such a finding; 2: bad input."""
    inventory = declared.load()
    try:
        reports = expected_matrix(inventory, profile(ovnk), parse_network(network), namespace)
    except UsageError as exc:
        raise fail(str(exc)) from None
    if not is_table(fmt):
        emit_records([matrix_json(r.matrix, r.findings) for r in reports], fmt)
    else:
        out = console()
        for r in reports:
            m = r.matrix
            cells = list(m.cells())
            out.print(f"[bold]{m.network}[/] (OVN-K {m.profile.name}): {len(m.endpoints)} endpoints, "
                      f"{len(m.sides)} classes, {len(cells)} cells")
            g = grid(m, cells)
            out.print(table(None, g[0], g[1:]))
            out.print(GRID_LEGEND, style="dim")
            headers = ["FROM", "TO", "PORT", "EXPECTED", "BECAUSE"] + (["REASONS"] if fmt == "wide" else [])
            rows = [cell_row(c) + ([_reasons(c.judgement)] if fmt == "wide" else []) for c in cells]
            out.print(table(None, headers, rows, [3]))
            _print_findings(out, r.findings)
    raise click.exceptions.Exit(exit_code(worst([findings_status(r.findings, fail_on) for r in reports])))


def _stages(judgement: Any) -> dict[str, str]:
    """Per pipeline stage, what each tier did (`tier 0 pass (acl/…) -> tier 2 allow (acl/…)`)."""
    chain = judgement.chain() if isinstance(judgement, ProgrammedJudgement) else {}
    return {stage.value: text for stage, text in chain.items()}


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
    if not is_table(fmt):
        # With a port: one verdict, in the keys of a matrix cell. Without: the pair's cells, as in the matrix.
        head: dict[str, Any] = {"network": str(net), "profile": report.profile, "from": src.key, "to": dst.key}
        if report.judgement is not None:
            head.update({"port": report.port, "protocol": report.protocol.value,
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
        answers = ([(f"{report.port}/{report.protocol.value}", report.judgement)] if report.judgement is not None else
                   [(f"{port_text(c.ports)}/{c.protocol.value}", c.judgement) for c in report.cells])
        for label, j in answers:
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
