"""`segcheck matrix` and `segcheck explain`: the declared plane, from manifest files."""

from __future__ import annotations

from typing import Any, Callable

import click

from pathlib import Path

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.ovsdb import DEFAULT_NB, DEFAULT_SB
from segcheck.agent.adapters.trace import UNKNOWN_MAC, Trace, ovn_trace, trace_flow
from segcheck.agent.core.model import Attachment, Endpoint, Network
from segcheck.agent.core.programmed import ProgrammedPlane
from segcheck.agent.lab.lab import DEFAULT_PREFIX, DEFAULT_STATE_DIR, Lab
from segcheck.agent.runtime.sources import read_programmed
from segcheck.agent.core.consistency import skipped_notices
from segcheck.agent.core.enforcement import PROFILES, OvnkProfile, network_findings, unplaced_findings
from segcheck.agent.core.findings import Finding
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Ref
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.core.render import cell_json, cell_row, grid, judgement_json, matrix_json, port_text
from segcheck.agent.core.resolve import ResolveError, resolve_pair, split_target

from .output import EXIT_DRIFT, EXIT_OK, EXIT_USAGE, FORMATS, console, emit_data, emit_records, fail, table


def manifest_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("-f", "--filename", "paths", multiple=True, required=True, type=click.Path(),
                        help="Manifest file or folder (YAML/JSON, multi-document, List kinds). Repeatable.")(func)
    func = click.option("-n", "--namespace", default=None, help="Only workloads of this namespace.")(func)
    func = click.option("--network", default=None, metavar="NS/NAD", help="Only this network.")(func)
    func = click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)(func)
    func = click.option("--ovnk-version", "ovnk", type=click.Choice(sorted(PROFILES)), default="4.14", show_default=True,
                        help="OVN-Kubernetes behaviour to expect (4.14: endPort and named ports not honoured).")(func)
    return func


def load(paths: tuple[str, ...], strict: bool = True) -> Inventory:
    """Load manifests; report every bad object (file and object named) and stop with exit 2 if any."""
    inventory, errors = load_inventory(paths)
    for err in errors:
        click.echo(f"error: {err}", err=True)
    for line in skipped_notices(inventory):
        click.echo(f"notice: {line}", err=True)
    if errors and strict:
        raise click.exceptions.Exit(EXIT_USAGE)
    return inventory


def report_unplaced(inventory: Inventory, profile: OvnkProfile) -> bool:
    """Print the findings no network shows, on stderr (they belong to no network's record); any?"""
    unplaced = unplaced_findings(inventory, profile)
    for f in unplaced:
        click.echo(f"{f.severity.value} {finding_line(f)}", err=True)
    return bool(unplaced)


def finding_line(f: Finding) -> str:
    return f"{f.kind.value}: {f'{f.policy}: ' if f.policy else ''}{f.message}"


def parse_network(text: str | None) -> Ref | None:
    if text is None:
        return None
    try:
        return Ref.parse(text, "default")
    except ValueError as exc:
        raise fail(f"--network: {exc}") from None


@click.command()
@manifest_options
def matrix(paths: tuple[str, ...], namespace: str | None, network: str | None, fmt: str, ovnk: str) -> None:
    """The expected reachability matrix of each network, with policy findings below."""
    inventory = load(paths)
    profile: OvnkProfile = PROFILES[ovnk]
    wanted = parse_network(network)
    key = None if wanted is None else inventory.network_of(wanted)  # any NAD of the network names it
    if wanted is not None and key is None:
        raise fail(f"no NetworkAttachmentDefinition {wanted} in the manifests")
    nets = sorted(inventory.networks) if key is None else [key]
    results, found_any = [], False
    for net in nets:
        m = NetworkReachability(inventory, net, profile=profile, namespace=namespace)
        findings = network_findings(inventory, net, profile)
        found_any = found_any or bool(findings)
        results.append((m, findings))
    unplaced = unplaced_findings(inventory, profile) if wanted is None else []
    found_any = found_any or bool(unplaced)
    if fmt != "table":
        # The findings of no network close the stream, as a record of network null.
        extra = [{"network": None, "profile": profile.name, "cells": [], "findings": [f.to_json() for f in unplaced]}]
        emit_records([matrix_json(m, f) for m, f in results] + (extra if unplaced else []), fmt)
    else:
        out = console()
        for m, findings in results:
            cells = list(m.cells())
            out.print(f"[bold]{m.network}[/] (OVN-K {profile.name}): {len(m.endpoints)} endpoints, "
                      f"{len(m.sides)} classes, {len(cells)} cells")
            g = grid(m, cells)
            out.print(table(None, g[0], g[1:]))
            out.print(table(None, ["FROM", "TO", "PORT", "EXPECTED", "BECAUSE"], [cell_row(c) for c in cells], [3]))
            for f in findings:
                out.print(f"[yellow]{f.severity.value}[/] {finding_line(f)}")
        if unplaced:
            out.print("[bold]findings of no network[/]")
        for f in unplaced:
            out.print(f"[yellow]{f.severity.value}[/] {finding_line(f)}")
    raise click.exceptions.Exit(EXIT_DRIFT if found_any else EXIT_OK)


@click.command()
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO[:PORT[/PROTO]]")
@manifest_options
@click.option("--trace", is_flag=True, help="Also trace the cell through OVN's logical pipeline (ovn-trace).")
@click.option("--lab", is_flag=True, help="With --trace: the lab's databases.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True)
@click.option("--nb", "nb_url", default=DEFAULT_NB, show_default=True, help="With --trace: OVN northbound.")
@click.option("--sb", "sb_url", default=DEFAULT_SB, show_default=True, help="With --trace: OVN southbound.")
def explain(source: str, destination: str, paths: tuple[str, ...], namespace: str | None, network: str | None,
            fmt: str, ovnk: str, trace: bool, lab: bool, state_dir: Path, prefix: str, nb_url: str,
            sb_url: str) -> None:
    """One expected verdict and why. FROM/TO: a pod or VM (`[ns/]name`), an external endpoint (`db`) or an IP."""
    inventory = load(paths)
    profile = PROFILES[ovnk]
    try:
        target = split_target(destination)
        net, src, dst = resolve_pair(inventory, source, target.text, parse_network(network), namespace)
    except ResolveError as exc:
        raise fail(str(exc)) from None
    m = NetworkReachability(inventory, net, extra=[src, dst], profile=profile)
    findings = network_findings(inventory, net, profile)
    traced = None
    if trace:
        if target.port is None:
            raise fail("--trace needs a port: TO:PORT[/PROTO]")
        if lab:
            the_lab = Lab(state_dir=state_dir, prefix=prefix)
            nb_url, sb_url = the_lab.nb_url, the_lab.sb_url
        traced = trace_cell(inventory.networks[net], src, dst, target.port, target.protocol.value, nb_url, sb_url)
    if target.port is not None:
        judgement = m.judge(src, dst, target.port, target.protocol)
        answers = [(f"{target.port}/{target.protocol.value}", target.port, judgement)]
    else:
        answers = [(f"{port_text(c.ports)}/{c.protocol.value}", c.ports.first if c.ports else None, c.judgement)
                   for c in m.pair_cells(src, dst)]
    if fmt != "table":
        # With a port: one verdict, in the keys of a matrix cell. Without: the pair's cells, as in the matrix.
        head: dict[str, Any] = {"network": str(net), "profile": profile.name, "from": src.key, "to": dst.key}
        if target.port is not None:
            head.update({"port": target.port, "protocol": target.protocol.value, "expected": judgement.verdict.value,
                         **judgement_json(judgement)})
        else:
            head["cells"] = [cell_json(c) for c in m.pair_cells(src, dst)]
        head["findings"] = [f.to_json() for f in findings]
        if traced is not None:
            head["trace"] = {"verdict": traced.verdict, "text": traced.text}
        emit_data(head, fmt)
    else:
        out = console()
        for label, _, j in answers:
            out.print(f"{src.key} -> {dst.key} {label} on {net}: expected [bold]{j.verdict.value}[/]")
            for r in j.reasons:
                out.print(f"  because {r.ref}: {r.detail}")
        if traced is not None:
            out.print(f"ovn-trace (first packet of a new connection): [bold]{traced.verdict}[/]")
            out.print(traced.text, markup=False, highlight=False)
        for f in findings:
            out.print(f"[yellow]{f.severity.value}[/] {f.kind.value}: {f.policy or ''} {f.message}")
    raise click.exceptions.Exit(EXIT_DRIFT if findings else EXIT_OK)


def trace_cell(network: Network, src: Endpoint, dst: Endpoint, port: int, protocol: str, nb_url: str,
               sb_url: str) -> Trace:
    """Locate both ends' logical ports and MACs in NB, then ask ovn-trace what the pipeline does."""
    programmed = read_programmed(nb_url, None)
    if programmed.nb is None:
        return Trace("unknown", "; ".join(programmed.errors))
    plane = ProgrammedPlane(programmed.nb, network)
    inport = plane.port_of(src)
    if inport is None or src.ip is None or dst.ip is None:
        return Trace("unknown", f"no logical port or address for {src.key}")
    def mac(e: Endpoint) -> str:
        row = plane.port_row(e)
        return row.macs[0] if row is not None and row.macs and isinstance(e, Attachment) else UNKNOWN_MAC
    flow = trace_flow(inport, mac(src), mac(dst), str(src.ip), str(dst.ip), protocol, port)
    return ovn_trace(sb_url, plane.switch_name, flow)
