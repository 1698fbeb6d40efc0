"""`segcheck probe`, `segcheck verify` and `segcheck drift`: the three planes side by side, on the lab, on a
node, or as a running agent sees them."""

from __future__ import annotations

from typing import Any, Callable

import click

from segcheck.agent.adapters.agent_client import AgentClient, AgentUnreachable, read_token
from segcheck.agent.core.drift import summarize
from segcheck.agent.core.model import FAMILY_NAMES, Judgement, Protocol, Verdict
from segcheck.agent.core.drift import summarize_classes
from segcheck.agent.core.render import cell_json, cell_port_text, composed_cell_json, finding_text
from segcheck.agent.runtime.checker import CheckReport
from segcheck.agent.runtime.checks import (ProbeReport, UsageError, VerifyReport, agent_drift, agent_probe,
                                           probe_cell, verify_networks)
from segcheck.agent.runtime.cluster_view import cluster_view
from segcheck.agent.runtime.status import FailOn, findings_status, worst

from .declared_commands import report_unplaced
from .options import (DeclaredInput, _stack, complete_endpoint, declared_input, fail_on_option, namespace_option,
                      network_option, output_option, ovnk_option, parse_network, profile, with_sources)
from .output import EXIT_CANNOT_CHECK, FORMATS, console, emit_data, emit_records, exit_code, fail, is_table, table
from .report_views import locations_of, verify_report
from .reports import REPORT_FORMATS

declared_options = _stack(
    declared_input, network_option, namespace_option, ovnk_option, output_option(FORMATS + REPORT_FORMATS),
)

PROBE_EXAMPLES = """Examples:

\b
  segcheck probe vm-server db:5432 --lab          # the seed's service path: allowed, and PostgreSQL answers
  segcheck probe podclient vm-server:22 --lab     # a denied cell: no answer while the target is alive
  segcheck probe default/podclient 192.168.200.5:5432 -f manifests/   # on a node (the DaemonSet's sockets)
  segcheck probe vm-server db:5432 --agent http://AGENT:9470 --token-file token
"""
VERIFY_EXAMPLES = """Examples:

\b
  segcheck verify --lab                   # every cell of the lab, three planes, drift per cell
  segcheck verify -f manifests/ -o json   # on a node: JSON Lines, one network a line
  segcheck verify --lab --fail-on never   # drift fails, findings are only reported
  segcheck verify -f manifests/ --nb must-gather/ovnnb_db.db --ovs must-gather/conf.db --planes declared,programmed
"""
DRIFT_EXAMPLES = """Examples:

\b
  segcheck drift --agent http://127.0.0.1:9470 --token-file token   # what a running agent sees drift now
  segcheck drift --lab                                              # checked here, drifting cells only
  segcheck drift --cluster --agent http://worker-0:9470 --agent http://worker-1:9470 --token-file token
"""
agent_options = _stack(
    click.option("--agent", "agent_urls", multiple=True, metavar="URL",
                 help="Ask a running agent (http://HOST:9470); repeat it with --cluster for every node's agent."),
    click.option("--token", default=None, help="Bearer token for --agent (default: $SEGCHECK_TOKEN)."),
    click.option("--token-file", default=None, type=click.Path(), help="Read the bearer token from a file."),
)


def _client(agent_url: str, token: str | None, token_file: str | None) -> AgentClient:
    try:
        return AgentClient(agent_url, read_token(token, token_file))
    except AgentUnreachable as exc:
        raise fail(str(exc), EXIT_CANNOT_CHECK) from None


cluster_option = click.option(
    "--cluster", is_flag=True,
    help="Compose whole cells from every node's agent (--agent per node): the egress half judged at the source's "
         "node and the ingress half at the destination's.")


def _cluster(agent_urls: tuple[str, ...], token: str | None, token_file: str | None, network: str | None,
             fmt: str, drift_only: bool) -> None:
    if not agent_urls:
        raise fail("--cluster needs the agents: --agent URL for each node")
    if fmt in REPORT_FORMATS:
        raise fail(f"-o {fmt} needs the cells checked here (without --cluster); the cluster view answers in json or yaml")
    report = cluster_view([_client(u, token, token_file) for u in agent_urls], network, drift_only)
    if not is_table(fmt):
        emit_data({"nodes": report.nodes, "unreachable": report.unreachable, "sources_down": report.sources_down,
                   "cells": [composed_cell_json(c) for c in report.cells],
                   "drift": summarize_classes(c.drift for c in report.checked), "status": report.status.value}, fmt)
    else:
        out = console()
        out.print(f"cluster: {len(report.nodes)} agents ({', '.join(report.nodes) or 'none'}), "
                  f"{len(report.checked)} cells composed")
        rows = [[c.network, c.source, c.destination,
                 cell_port_text(None if c.ports.is_all else c.ports, c.ports.protocol, c.family),
                 c.expected.verdict.value, c.programmed.verdict.value,
                 _plane(c.observed), ",".join(d.value for d in c.drift) or "ok",
                 ", ".join(f"{d}@{n}" for d, n in sorted(c.judged_by.items()))]
                for c in report.cells]
        out.print(table(None, ["NETWORK", "FROM", "TO", "PORTS", "EXPECTED", "PROGRAMMED", "OBSERVED", "DRIFT",
                               "JUDGED"], rows, [4, 5, 6]))
        for item in report.unreachable:
            out.print(f"[yellow]agent unreachable[/] {item}")
        for item in report.sources_down:
            out.print(f"[yellow]source down[/] {item}")
    raise click.exceptions.Exit(exit_code(report.status))


def _plane(j: Judgement | None) -> str:
    return "-" if j is None else j.verdict.value


def _why(j: Judgement | None, missing: str) -> str:
    if j is None:
        return missing
    return "; ".join(f"{r.ref} ({r.detail})" if r.detail and not r.detail.startswith("allows") else r.ref
                     for r in j.reasons)


@click.command(epilog=PROBE_EXAMPLES)
@click.argument("source", metavar="FROM", shell_complete=complete_endpoint)
@click.argument("destination", metavar="TO:PORT[/PROTO]", shell_complete=complete_endpoint)
@agent_options
@with_sources
@declared_options
def probe(source: str, destination: str, agent_urls: tuple[str, ...], token: str | None, token_file: str | None,
          declared: DeclaredInput, lab: bool, open_sources: Callable[..., Any], network: str | None,
          namespace: str | None, ovnk: str, fmt: str) -> None:
    """Send a real probe and compare it with what policy expects and what OVN programmed.

    Exit 0 when all three agree, 1 on drift, 3 when it could not check (probe or database gave no evidence)."""
    if fmt in REPORT_FORMATS:
        raise fail(f"-o {fmt} reports verify, drift, matrix, explain and diff; probe answers in table, json or yaml")
    if len(agent_urls) > 1:
        raise fail("probe asks one agent: give --agent once (the agent on the source's node)")
    if agent_urls:
        try:
            data, status = agent_probe(_client(agent_urls[0], token, token_file), source, destination, network,
                                       namespace)
        except AgentUnreachable as exc:
            raise fail(str(exc), EXIT_CANNOT_CHECK) from None
        emit_data(data, "yaml" if is_table(fmt) else fmt)
        raise click.exceptions.Exit(exit_code(status))
    inventory = declared.load()
    try:
        report = probe_cell(inventory, open_sources(declared.files), source, destination, profile(ovnk),
                            network=parse_network(network), namespace=namespace)
    except UsageError as exc:
        raise fail(str(exc)) from None
    if not is_table(fmt):
        if report.cells:  # dual-stack, no address typed: one cell per family, as explain answers
            data = {"network": str(report.network), "from": report.source.key, "to": report.destination.key,
                    "port": report.port, "protocol": report.protocol.value,
                    "cells": [cell_json(c) for c in report.cells]}
        else:
            data = {"network": str(report.network), **cell_json(report.cell)}
        data["check"] = None if report.check is None else {"kind": report.check.kind, "ok": report.check.ok,
                                                           "answer": report.check.summary}
        data["errors"] = report.errors
        data["status"] = report.status.value
        emit_data(data, fmt)
    else:
        _print_probe(report)
    raise click.exceptions.Exit(exit_code(report.status))


def _print_probe(report: ProbeReport) -> None:
    out = console()
    for cell in report.cells or [report.cell]:
        family = f" {FAMILY_NAMES[cell.family]}" if cell.family is not None else ""
        out.print(f"[bold]{report.source.key} -> {report.destination.key} {report.port}/{report.protocol.value}"
                  f"{family}[/] on {report.network}")
        rows = [["observed", _plane(cell.observed),
                 _why(cell.observed, "not probed: this node cannot send as the source")],
                ["expected", cell.expected.verdict.value, _why(cell.expected, "")],
                ["programmed", _plane(cell.programmed), _why(cell.programmed, "northbound not readable")]]
        if report.check is not None and cell is report.cell:
            rows.append([report.check.kind, "answered" if report.check.ok else "no answer", report.check.summary])
        out.print(table(None, ["PLANE", "VERDICT", "WHY"], rows, [1]))
    for err in report.errors:
        out.print(f"[yellow]warning[/] {err}")
    status = report.status.value
    if status == "match":
        out.print("[green]match[/]: observed, expected and programmed agree")
    elif status == "drift":
        drift = sorted({d.value for c in report.cells or [report.cell] for d in c.drift})
        out.print(f"[bold red]drift[/]: {', '.join(drift)}")
    else:
        out.print("[yellow]could not check[/]: a plane gave no evidence")


def _network_json(report: CheckReport) -> dict[str, Any]:
    return {
        "network": str(report.network),
        "cells": [cell_json(c) for c in report.cells],
        "drift": summarize(report.cells),
        "findings": [f.to_json() for f in report.findings],
        "mapping": None if report.mapping is None else {
            "localnet": report.mapping.localnet, "bridge": report.mapping.bridge, "ok": report.mapping.ok},
        "ovnk_detected": report.ovnk,
        "unattributed": [{"kind": u.kind, "name": u.name, "reason": u.reason} for u in report.unattributed],
        "errors": report.errors,
        "duration_seconds": round(report.duration_seconds, 3),
    }


def _print_network(report: CheckReport, wide: bool) -> None:
    out = console()
    rows = []
    for c in report.cells:
        if c.protocol is not Protocol.TCP and not c.drift and c.expected.verdict is Verdict.DENIED:
            continue  # quiet UDP/SCTP rows that hold no surprise
        rng = "*" if c.ports.is_all else (f"{c.ports.first}" if c.ports.first == c.ports.last else f"{c.ports.first}-{c.ports.last}")
        rows.append([c.source, c.destination, f"{rng}/{c.protocol.value}" + (f" {FAMILY_NAMES[c.family]}" if c.family else ""),
                     str(c.sample_port), c.expected.verdict.value,
                     _plane(c.programmed), _plane(c.observed), ",".join(d.value for d in c.drift) or "ok"]
                    + ([_why(c.expected, ""), _why(c.programmed, "not read"), _why(c.observed, "not probed")]
                       if wide else []))
    out.print(f"[bold]{report.network}[/]: {len(report.cells)} check points, {len(report.probes)} probes "
              f"in {report.duration_seconds:.2f} s")
    headers = ["FROM", "TO", "PORTS", "PROBE", "EXPECTED", "PROGRAMMED", "OBSERVED", "DRIFT"]
    out.print(table(None, headers + (["BECAUSE", "PROGRAMMED BY", "OBSERVED AS"] if wide else []), rows, [4, 5, 6]))
    if report.mapping is not None:
        state = "ok" if report.mapping.ok else "BROKEN"
        out.print(f"localnet {report.mapping.localnet} -> bridge {report.mapping.bridge or '-'}: {state}")
    if report.ovnk:
        out.print("OVN-K as seen in NB: " + "; ".join(report.ovnk))
    for f in report.findings:
        out.print(f"[yellow]{f.severity.value}[/] {finding_text(f)}")
    for err in report.errors:
        out.print(f"[yellow]warning[/] {err}")
    if report.unattributed:
        out.print(f"unattributed: {len(report.unattributed)} (their cells are unknown): "
                  + "; ".join(f"{u.kind} {u.name}: {u.reason}" for u in report.unattributed))
    observed = sum(1 for c in report.cells if c.observed is not None and c.observed.verdict is not Verdict.UNKNOWN)
    if not report.probed:
        out.print("observed: not probed (--planes declared,programmed)")
    elif report.cells:
        out.print(f"observed: {observed} of {len(report.cells)} check points (UDP and SCTP are not probed in rounds; "
                  "nor are cells whose source this node cannot send as)" if observed < len(report.cells) else
                  f"observed: all {observed} check points")
    out.print("drift: " + ", ".join(f"{k}={v}" for k, v in summarize(report.cells).items()))


def _render_verify(report: VerifyReport, fmt: str, files: tuple[str, ...], fail_on: FailOn, command: str) -> None:
    if fmt in REPORT_FORMATS:
        click.echo(verify_report(fmt, report, fail_on, locations_of(files), command), nl=False)
    elif not is_table(fmt):
        emit_records([_network_json(r) for r in report.networks], fmt)
    else:
        for r in report.networks:
            _print_network(r, wide=fmt == "wide")


PLANES = ("declared", "programmed", "observed")


def _planes(_ctx: click.Context, _param: click.Parameter, value: str) -> frozenset[str]:
    chosen = frozenset(p.strip() for p in value.split(",") if p.strip())
    if not chosen <= set(PLANES) or "declared" not in chosen or "programmed" not in chosen:
        raise click.BadParameter("declared,programmed[,observed]")
    return chosen


planes_option = click.option(
    "--planes", default=",".join(PLANES), show_default=True, callback=_planes,
    help="declared,programmed compares without probing (offline: --nb and --ovs may be database files).")


def _verify(declared: DeclaredInput, open_sources: Callable[..., Any], network: str | None, ovnk: str,
            fmt: str, fail_on: FailOn, drift_only: bool, planes: frozenset[str] = frozenset(PLANES)) -> None:
    inventory = declared.load()
    try:
        report = verify_networks(inventory, open_sources(declared.files), profile(ovnk), network=parse_network(network),
                                 drift_only=drift_only, probe="observed" in planes)
    except UsageError as exc:
        raise fail(str(exc)) from None
    _render_verify(report, fmt, declared.files, fail_on, "drift" if drift_only else "verify")
    findings = [f for r in report.networks for f in r.findings]
    if network is None:
        findings += report_unplaced(inventory, profile(ovnk))
    raise click.exceptions.Exit(exit_code(worst([report.status, findings_status(findings, fail_on)])))


@click.command(epilog=VERIFY_EXAMPLES)
@agent_options
@cluster_option
@with_sources
@declared_options
@fail_on_option
@planes_option
def verify(agent_urls: tuple[str, ...], token: str | None, token_file: str | None, cluster: bool,
           declared: DeclaredInput, lab: bool, open_sources: Callable[..., Any], network: str | None,
           namespace: str | None, ovnk: str, fmt: str, fail_on: FailOn, planes: frozenset[str]) -> None:
    """Probe every cell of every network and print the three-way table (--cluster: every node's agent's halves,
    composed).

    Exit 0: the planes agree; 1: drift, or a finding at or above --fail-on; 2: bad input; 3: could not check."""
    if cluster:
        _cluster(agent_urls, token, token_file, network, fmt, drift_only=False)
    if agent_urls:
        raise fail("verify asks agents only with --cluster")
    _verify(declared, open_sources, network, ovnk, fmt, fail_on, drift_only=False, planes=planes)


@click.command(epilog=DRIFT_EXAMPLES)
@agent_options
@cluster_option
@with_sources
@declared_options
@fail_on_option
def drift(agent_urls: tuple[str, ...], token: str | None, token_file: str | None, cluster: bool,
          declared: DeclaredInput, lab: bool, open_sources: Callable[..., Any], network: str | None,
          namespace: str | None, ovnk: str, fmt: str, fail_on: FailOn) -> None:
    """The cells that drift now: from a running agent (--agent), the whole cluster (--cluster), or checked here.

    Exit 0: none; 1: drift (or, checked here, a finding at or above --fail-on); 3: could not check."""
    if cluster:
        _cluster(agent_urls, token, token_file, network, fmt, drift_only=True)
    if not agent_urls:
        _verify(declared, open_sources, network, ovnk, fmt, fail_on, drift_only=True)
    if len(agent_urls) > 1:
        raise fail("several agents: add --cluster to compose their halves")
    if fmt in REPORT_FORMATS:
        raise fail(f"-o {fmt} needs the cells checked here (drift without --agent); an agent answers in json or yaml")
    try:
        data, status = agent_drift(_client(agent_urls[0], token, token_file), network)
    except AgentUnreachable as exc:
        raise fail(str(exc), EXIT_CANNOT_CHECK) from None
    if not is_table(fmt):
        emit_data(data, fmt)
    else:
        out = console()
        out.print(f"agent on node {data.get('node', '?')}")
        rows = [[c["from"], c["to"], f"{c['port'] if c['port'] is not None else '*'}/{c['protocol']}", c["expected"],
                 (c["programmed"] or {}).get("verdict", "-"), (c["observed"] or {}).get("verdict", "-"), ",".join(c["drift"])]
                for n in data["networks"] for c in n["cells"]]
        out.print(table(None, ["FROM", "TO", "PORT", "EXPECTED", "PROGRAMMED", "OBSERVED", "DRIFT"], rows, [3, 4, 5]))
        for s in data.get("sources", []):
            if not s["up"]:
                out.print(f"[yellow]source {s['source']} down[/] ({s['detail']})")
    raise click.exceptions.Exit(exit_code(status))
