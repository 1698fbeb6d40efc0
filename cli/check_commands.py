"""`segcheck probe` and `segcheck verify`: the three planes side by side, on the lab or on a node."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click

from segcheck.agent.adapters.ovsdb import DEFAULT_NB, DEFAULT_OVS
from segcheck.agent.adapters.pg_probe import postgres_answer
from segcheck.agent.core.drift import CheckedCell, cell_json, has_drift, summarize
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Judgement, Protocol, Ref, Verdict
from segcheck.agent.core.resolve import ResolveError, resolve_pair, split_target
from segcheck.agent.lab.lab import DEFAULT_PREFIX, DEFAULT_STATE_DIR
from segcheck.agent.runtime.checker import Checker, CheckReport, single_cell
from segcheck.agent.runtime.sources import PROBERS, NodeSources, lab_sources, make_prober, node_sources, packaged_seed, read_programmed

from .declared_commands import load, parse_network, report_unplaced
from .output import EXIT_CANNOT_CHECK, EXIT_DRIFT, EXIT_OK, FORMATS, console, emit_data, emit_records, fail, table

POSTGRES_PORT = 5432


def source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("-f", "--filename", "paths", multiple=True, type=click.Path(),
                  help="Manifests (declared plane). Default with --lab: the shipped seed.")
    @click.option("--lab", is_flag=True, help="Check the embedded lab instead of this node.")
    @click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True)
    @click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Lab namespace prefix.")
    @click.option("--nb", "nb_url", default=DEFAULT_NB, show_default=True, help="OVN northbound database.")
    @click.option("--ovs", "ovs_url", default=DEFAULT_OVS, show_default=True, help="Open_vSwitch database.")
    @click.option("--network", default=None, metavar="NS/NAD")
    @click.option("-n", "--namespace", default=None)
    @click.option("--prober", type=click.Choice(PROBERS), default="raw", show_default=True)
    @click.option("--ovnk-version", "ovnk", type=click.Choice(sorted(PROFILES)), default="4.14", show_default=True)
    @click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @functools.wraps(func)
    def wrapper(paths: tuple[str, ...], lab: bool, state_dir: Path, prefix: str, nb_url: str, ovs_url: str,
                **kwargs: Any) -> Any:
        if kwargs.get("agent_url"):
            return func(paths=paths, sources=None, **kwargs)
        if not paths:
            if not lab:
                raise fail("give the declared state with -f PATH (or use --lab)")
            paths = (str(packaged_seed()),)
        sources = lab_sources(state_dir, prefix, paths) if lab else node_sources(nb_url, ovs_url)
        if sources.lab is not None and not sources.lab.is_healthy():
            raise fail(f"the lab in {state_dir} (prefix {prefix!r}) is not up: run `segcheck lab up`", EXIT_CANNOT_CHECK)
        return func(paths=paths, sources=sources, **kwargs)

    return wrapper


def _checker(sources: NodeSources, inventory: Any, network: Ref, prober: str, ovnk: str) -> tuple[Checker, list[str]]:
    programmed = read_programmed(sources.nb_url, sources.ovs_url)
    checker = Checker(inventory, network, programmed.nb, programmed.ovs, make_prober(prober), sources.locator, PROFILES[ovnk])
    return checker, programmed.errors


def _plane(j: Judgement | None) -> str:
    return "-" if j is None else j.verdict.value


def _exit_code(cells: list[CheckedCell], cannot: bool) -> int:
    if any(has_drift(c) for c in cells):
        return EXIT_DRIFT
    return EXIT_CANNOT_CHECK if cannot else EXIT_OK


@click.command()
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO:PORT[/PROTO]")
@click.option("--agent", "agent_url", default=None, metavar="URL", help="Ask a running agent to send the probe.")
@click.option("--token", default=None, help="Bearer token for --agent (default: $SEGCHECK_TOKEN).")
@click.option("--token-file", default=None, type=click.Path(), help="Read the bearer token from a file.")
@source_options
def probe(source: str, destination: str, agent_url: str | None, token: str | None, token_file: str | None,
          paths: tuple[str, ...], sources: NodeSources, network: str | None,
          namespace: str | None, prober: str, ovnk: str, fmt: str) -> None:
    """Send a real probe and compare it with what policy expects and what OVN programmed.

    Exit 0 when all three agree, 1 on drift, 3 when it could not check (probe or database gave no evidence)."""
    if agent_url is not None:
        from .agent_commands import fetch, read_token

        body = {"from": source, "to": destination, **({"network": network} if network else {}),
                **({"namespace": namespace} if namespace else {})}
        data = fetch(agent_url, "/v1/probe", body, read_token(token, token_file))
        drift = [d for d in data.get("drift", []) if d != "unknown"]
        unknown = any((data.get(p) or {}).get("verdict", "unknown") == "unknown" for p in ("observed", "programmed"))
        emit_data(data, "yaml" if fmt == "table" else fmt)
        raise click.exceptions.Exit(EXIT_DRIFT if drift else (EXIT_CANNOT_CHECK if unknown else EXIT_OK))
    inventory = load(paths)
    try:
        target = split_target(destination)
        if target.port is None:
            raise ResolveError(f"{destination!r}: give a port, e.g. {destination}:5432")
        net, src, dst = resolve_pair(inventory, source, target.text, parse_network(network), namespace)
    except ResolveError as exc:
        raise fail(str(exc)) from None
    checker, errors = _checker(sources, inventory, net, prober, ovnk)
    cell = single_cell(checker, src, dst, target.port, target.protocol)
    observed, _ = checker.observe([cell], protocols=frozenset({Protocol.TCP, Protocol.UDP}))
    cell = observed[0]
    pg = None
    if cell.observed is not None and cell.observed.verdict is Verdict.ALLOWED and target.port == POSTGRES_PORT:
        netns = getattr(sources.locator, "application_netns", lambda e: None)(src)
        point = sources.locator.send_point(src) if sources.locator is not None else None
        ns = netns or (point.netns if point is not None else None)
        if ns is not None and dst.ip is not None:
            pg = postgres_answer(ns, str(dst.ip), target.port)
    cannot = cell.observed is None or cell.observed.verdict is Verdict.UNKNOWN or cell.programmed is None \
        or cell.programmed.verdict is Verdict.UNKNOWN
    code = _exit_code([cell], cannot)
    if fmt != "table":
        data = cell_json(cell)
        data["postgres"] = None if pg is None else {"ok": pg.ok, "answer": pg.summary}
        data["errors"] = errors
        data["status"] = {EXIT_OK: "match", EXIT_DRIFT: "drift", EXIT_CANNOT_CHECK: "could-not-check"}[code]
        emit_data(data, fmt)
    else:
        out = console()
        out.print(f"[bold]{src.key} -> {dst.key} {target.port}/{target.protocol.value}[/] on {net}")
        rows = [["observed", _plane(cell.observed), _why(cell.observed, "not probed: this node cannot send as the source")],
                ["expected", cell.expected.verdict.value, _why(cell.expected, "")],
                ["programmed", _plane(cell.programmed), _why(cell.programmed, "northbound not readable")]]
        if pg is not None:
            rows.append(["postgres", "answered" if pg.ok else "no answer", pg.summary])
        out.print(table(None, ["PLANE", "VERDICT", "WHY"], rows, [1]))
        for err in errors:
            out.print(f"[yellow]warning[/] {err}")
        if code == EXIT_OK:
            out.print("[green]match[/]: observed, expected and programmed agree")
        elif code == EXIT_DRIFT:
            out.print(f"[bold red]drift[/]: {', '.join(d.value for d in cell.drift)}")
        else:
            out.print("[yellow]could not check[/]: a plane gave no evidence")
    raise click.exceptions.Exit(code)


def _why(j: Judgement | None, missing: str) -> str:
    if j is None:
        return missing
    return "; ".join(f"{r.ref} ({r.detail})" if r.detail and not r.detail.startswith("allows") else r.ref for r in j.reasons)


def render_report(report: CheckReport, fmt: str, errors: list[str]) -> int:
    counts = summarize(report.cells)
    cannot = any(c.programmed is None for c in report.cells) or not any(c.observed for c in report.cells)
    code = _exit_code(report.cells, cannot)
    if fmt != "table":
        emit_records([{
            "network": str(report.network),
            "cells": [cell_json(c) for c in report.cells],
            "drift": counts,
            "findings": [f.to_json() for f in report.findings],
            "mapping": None if report.mapping is None else {
                "localnet": report.mapping.localnet, "bridge": report.mapping.bridge, "ok": report.mapping.ok},
            "ovnk_detected": report.ovnk,
            "errors": errors,
            "duration_seconds": round(report.duration_seconds, 3),
        }], fmt)
        return code
    out = console()
    rows = []
    for c in report.cells:
        if c.protocol is not Protocol.TCP and not c.drift and c.expected.verdict is Verdict.DENIED:
            continue  # quiet UDP/SCTP rows that hold no surprise
        rng = "*" if c.ports.is_all else (f"{c.ports.first}" if c.ports.first == c.ports.last else f"{c.ports.first}-{c.ports.last}")
        rows.append([c.source, c.destination, f"{rng}/{c.protocol.value}", str(c.sample_port), c.expected.verdict.value,
                     _plane(c.programmed), _plane(c.observed), ",".join(d.value for d in c.drift) or "ok"])
    out.print(f"[bold]{report.network}[/]: {len(report.cells)} check points, {len(report.probes)} probes "
              f"in {report.duration_seconds:.2f} s")
    out.print(table(None, ["FROM", "TO", "PORTS", "PROBE", "EXPECTED", "PROGRAMMED", "OBSERVED", "DRIFT"], rows, [4, 5, 6]))
    if report.mapping is not None:
        state = "ok" if report.mapping.ok else "BROKEN"
        out.print(f"localnet {report.mapping.localnet} -> bridge {report.mapping.bridge or '-'}: {state}")
    if report.ovnk:
        out.print("OVN-K as seen in NB: " + "; ".join(report.ovnk))
    for f in report.findings:
        out.print(f"[yellow]{f.severity.value}[/] {f.kind.value}: {f.policy or ''} {f.message}")
    for err in errors:
        out.print(f"[yellow]warning[/] {err}")
    observed = sum(1 for c in report.cells if c.observed is not None and c.observed.verdict is not Verdict.UNKNOWN)
    if report.cells:
        out.print(f"observed: {observed} of {len(report.cells)} check points (UDP and SCTP are not probed in rounds; "
                  "nor are cells whose source this node cannot send as)" if observed < len(report.cells) else
                  f"observed: all {observed} check points")
    out.print("drift: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return code


@click.command()
@source_options
def verify(paths: tuple[str, ...], sources: NodeSources, network: str | None, namespace: str | None, prober: str,
           ovnk: str, fmt: str) -> None:
    """Probe every cell of every network and print the three-way table. Exit 0 clean, 1 drift, 3 cannot check."""
    raise click.exceptions.Exit(check_networks(paths, sources, network, prober, ovnk, fmt))


def check_networks(paths: tuple[str, ...], sources: NodeSources, network: str | None, prober: str, ovnk: str,
                   fmt: str, drift_only: bool = False) -> int:
    """Check and render every network (or the one asked for); the exit code of the worst: drift beats the rest."""
    inventory = load(paths)
    wanted = parse_network(network)
    worst = EXIT_OK
    for net in [wanted] if wanted is not None else sorted(inventory.networks):
        checker, errors = _checker(sources, inventory, net, prober, ovnk)
        report = checker.run()
        if drift_only:
            report.cells = [c for c in report.cells if c.drift]
        code = render_report(report, fmt, errors)
        worst = EXIT_DRIFT if EXIT_DRIFT in (worst, code) else max(worst, code)
    if wanted is None and report_unplaced(inventory, PROFILES[ovnk]) and worst == EXIT_OK:
        worst = EXIT_DRIFT
    return worst
