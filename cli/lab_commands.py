"""`segcheck lab up|down|status`: the embedded lab (OVS + OVN + PostgreSQL in network namespaces).

Exit codes: 0 ok, 2 usage, 3 something needed is missing (package, privilege), 4 the lab failed.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click

from segcheck.agent.lab.errors import LabError, LabUnavailable
from segcheck.agent.lab.lab import DEFAULT_PREFIX, DEFAULT_STATE_DIR, Lab
from segcheck.agent.lab.ovs_install import DEFAULT_CACHE_DIR

EXIT_UNAVAILABLE = 3
EXIT_FAILED = 4


def _lab_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True,
                  help="Directory for the lab's sockets, databases, pidfiles and logs.")
    @click.option("--prefix", default=DEFAULT_PREFIX, show_default=True,
                  help="Prefix of the lab's network namespace names (lets two labs run side by side).")
    @click.option("--ovs-cache", type=click.Path(path_type=Path), default=DEFAULT_CACHE_DIR, show_default=True,
                  help="Where a private Open vSwitch >= 3.1.3 is unpacked when the system's is older.")
    @click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
    @functools.wraps(fn)
    def wrapper(state_dir: Path, prefix: str, ovs_cache: Path, output: str, **kwargs: Any) -> None:
        try:
            lab = Lab(state_dir=state_dir, prefix=prefix, ovs_cache_dir=ovs_cache)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        try:
            fn(lab=lab, output=output, **kwargs)
        except LabUnavailable as exc:
            click.echo(f"error: cannot run the lab here: {exc}", err=True)
            sys.exit(EXIT_UNAVAILABLE)
        except LabError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper


def _render_status(status: dict[str, Any]) -> str:
    lines = [f"lab {status['prefix']!r} in {status['state_dir']}: {status['phase']}"
             f" ({'healthy' if status['healthy'] else 'not healthy'})"]
    if status.get("ovs"):
        lines.append(f"Open vSwitch {status['ovs']['version']} ({status['ovs']['source']})")
    if status["daemons"]:
        lines.append("")
        lines.append(f"{'PROCESS':<22} {'PID':>8} {'STATE':<6} {'RSS':>9}")
        for name, d in status["daemons"].items():
            rss = f"{d['rss_bytes'] / 2**20:.1f}MiB" if d["rss_bytes"] else "-"
            lines.append(f"{name:<22} {d['pid'] or '-':>8} {'up' if d['alive'] else 'DOWN':<6} {rss:>9}")
    if status["namespaces"]:
        lines.append("")
        lines.append(f"{'NAMESPACE':<40} PRESENT")
        for name, present in status["namespaces"].items():
            lines.append(f"{name:<40} {'yes' if present else 'no'}")
    lines.append("")
    for key, sock in status["sockets"].items():
        lines.append(f"{key.upper():<4} {sock['url']}{'' if sock['exists'] else '  (absent)'}")
    bringup = status["measurements"].get("bringup")
    if bringup:
        lines.append(f"bring-up {bringup['seconds']:.2f}s; daemons' RSS "
                     f"{status['measurements']['rss_total_bytes'] / 2**20:.1f}MiB")
    return "\n".join(lines)


def _emit(data: dict[str, Any], output: str, render: Callable[[dict[str, Any]], str]) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    elif output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=True), nl=False)
    else:
        click.echo(render(data))


@click.group("lab")
@click.option("-v", "--verbose", is_flag=True, help="Log what the lab does.")
def lab(verbose: bool) -> None:
    """A local OVS/OVN localnet lab of the seed scenario (needs root)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


@lab.command("up")
@_lab_options
def up(lab: Lab, output: str) -> None:
    """Bring the lab up (no-op when it already runs; a broken one is rebuilt)."""
    _emit(lab.up(), output, _render_status)


@lab.command("down")
@_lab_options
def down(lab: Lab, output: str) -> None:
    """Stop the lab's daemons (by PID) and delete its namespaces and files."""
    _emit(lab.down(), output, lambda r: (
        f"lab {lab.prefix!r} down in {r['seconds']:.2f}s: stopped {len(r['stopped'])} processes, "
        f"deleted {len(r['namespaces_deleted'])} namespaces"))


@lab.command("status")
@_lab_options
def status(lab: Lab, output: str) -> None:
    """Show daemons, namespaces and sockets of the lab."""
    _emit(lab.status(), output, _render_status)
