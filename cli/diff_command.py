"""`segcheck diff`: which cells a change to the declared state opens, closes or re-attributes (a review before
merge: the base and head checkouts of a policies repository, or files against the live cluster)."""

from __future__ import annotations

from typing import Any, Sequence

import click

from segcheck.agent.core.diff import VERDICT_CHANGES, ChangeKind
from segcheck.agent.core.render import finding_text
from segcheck.agent.runtime.checks import UsageError
from segcheck.agent.runtime.cluster import ClusterTarget
from segcheck.agent.runtime.diff import DiffReport, FailOnChange, diff_states

from .diff_view import (CHANGE_HEADERS, KIND_TITLES, REATTRIBUTED_HEADERS, change_row, network_json,
                        reattributions, summary)
from .options import (STDIN, DeclaredInput, declared_input, namespace_option, network_option, output_option, ovnk_option,
                      parse_network, profile)
from .output import FORMATS, console, emit_records, exit_code, fail, is_table, table
from .report_views import diff_report, locations_of
from .reports import REPORT_FORMATS

DIFF_EXAMPLES = """Examples:

\b
  segcheck diff base/ head/                        # two checkouts of a policies repository
  segcheck diff --base old.yaml -f new.yaml -f workloads/   # several files or folders per side
  segcheck diff -f policies/                       # the live cluster (base) against the files (head)
  segcheck diff base/ head/ -o markdown > diff.md  # a review comment (see examples/ci/)
  segcheck diff base/ head/ --fail-on changed      # fail on closed cells too
"""
LIVE = "live cluster"


def _state(paths: Sequence[str], cluster: ClusterTarget) -> tuple[DeclaredInput, str]:
    return DeclaredInput(tuple(paths), False, cluster), " ".join(paths) or LIVE


@click.command(epilog=DIFF_EXAMPLES)
@click.argument("states", nargs=-1, metavar="[BASE HEAD]", type=click.Path(allow_dash=True))
@click.option("--base", "base_paths", multiple=True, type=click.Path(allow_dash=True),
              help="The state before the change: a manifest file or folder. Repeatable. Default: the live cluster.")
@declared_input
@namespace_option
@network_option
@ovnk_option
@output_option(FORMATS + REPORT_FORMATS)
@click.option("--fail-on", "fail_on", type=click.Choice([f.value for f in FailOnChange]),
              default=FailOnChange.OPENED.value, show_default=True,
              callback=lambda _ctx, _param, value: FailOnChange(value),
              help="Exit 1 when a cell opens, when any verdict changes, or never.")
def diff(states: tuple[str, ...], base_paths: tuple[str, ...], declared: DeclaredInput, namespace: str | None,
         network: str | None, ovnk: str, fmt: str, fail_on: FailOnChange) -> None:
    """The cells whose expected verdict differs between two declared states, grouped as opened, closed and
    unknown, each with the rules that decide it before and after; re-attributed cells (same verdict, other
    rules) are summarised, unchanged ones counted.

    BASE HEAD: two files or folders. Or --base (repeatable) for the old state and -f (repeatable) for the new;
    a side not given is the live cluster (--kubeconfig, --context).

    Exit 0: nothing fails --fail-on; 1: a change does (by default: a cell opens); 2: bad input."""
    if states and (base_paths or declared.paths):
        raise fail("give BASE HEAD, or --base and -f, not both")
    if states and len(states) != 2:
        raise fail(f"expected BASE and HEAD, got {len(states)} path(s) (or -f PATH alone: the live cluster against it)")
    base, base_label = _state(states[:1] or base_paths, declared.cluster)
    head, head_label = _state(states[1:] or declared.paths, declared.cluster)
    if STDIN in base.paths and STDIN in head.paths:
        raise fail("only one state can be read from standard input (-)")
    if base_label == head_label == LIVE:
        raise fail("give at least one state as files: segcheck diff BASE HEAD, or -f PATH against the live cluster")
    try:
        report = diff_states(base.load(), head.load(), profile(ovnk), network=parse_network(network),
                             namespace=namespace, fail_on=fail_on)
    except UsageError as exc:
        raise fail(str(exc)) from None
    if fmt in REPORT_FORMATS:
        click.echo(diff_report(fmt, report, base_label, head_label, locations_of(base.files), locations_of(head.files)),
                   nl=False)
    elif is_table(fmt):
        _print(report, base_label, head_label, wide=fmt == "wide")
    else:
        emit_records([network_json(report, n) for n in report.networks], fmt)
    raise click.exceptions.Exit(exit_code(report.status))


def _print(report: DiffReport, base_label: str, head_label: str, *, wide: bool) -> None:
    out = console()
    out.print(f"base: {base_label} -> head: {head_label} (OVN-K {report.profile})", markup=False)
    for net in report.networks:
        d = net.diff
        where = "" if d.in_before and d.in_after else (" (only in head)" if d.in_after else " (only in base)")
        out.print(f"[bold]{d.network}[/]{where}: {summary(d.counts())}")
        for kind in VERDICT_CHANGES:
            changes = d.of(kind)
            if changes:
                out.print(KIND_TITLES[kind])
                out.print(table(None, CHANGE_HEADERS, [change_row(c) for c in changes]))
        moved = d.of(ChangeKind.REATTRIBUTED)
        if moved:
            out.print(KIND_TITLES[ChangeKind.REATTRIBUTED])
            out.print(table(None, CHANGE_HEADERS, [change_row(c) for c in moved]) if wide else
                      table(None, REATTRIBUTED_HEADERS, reattributions(moved)))
        for label, keys in (("endpoints added", d.added), ("endpoints removed", d.removed)):
            if keys:
                out.print(f"{label}: {', '.join(keys)}", markup=False)
        for label, found in (("new", net.new_findings), ("fixed", net.fixed_findings)):
            for f in found:
                _finding(out, label, f)


def _finding(out: Any, label: str, f: Any) -> None:
    out.print(f"{label} {f.severity.value} {finding_text(f)}", markup=False)
