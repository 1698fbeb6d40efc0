"""Options shared by the commands, and the one place where the CLI chooses its sources: a node or the lab."""

from __future__ import annotations

import functools
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from segcheck.agent.adapters.node_sources import NodeSources
from segcheck.agent.adapters.ovsdb import DEFAULT_NB, DEFAULT_OVS, DEFAULT_SB
from segcheck.agent.adapters.probers import PROBERS
from segcheck.agent.core.consistency import skipped_notices
from segcheck.agent.core.enforcement import PROFILE_HELP, PROFILES, OvnkProfile
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Ref
from segcheck.agent.core.sources import Sources
from segcheck.agent.lab.lab import DEFAULT_PREFIX, DEFAULT_STATE_DIR, Lab
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.lab.cluster import LabCluster
from segcheck.agent.lab.cluster_sources import LabNodeSources
from segcheck.agent.lab.sources import LabSources
from segcheck.agent.runtime.checks import read_manifests
from segcheck.agent.runtime.cluster import ClusterTarget, ClusterUnreachable, NoCluster, read_cluster
from segcheck.agent.runtime.status import FailOn

from .output import EXIT_CANNOT_CHECK, EXIT_USAGE, FORMATS, fail

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _stack(*decorators: Decorator) -> Decorator:
    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(decorators):
            func = d(func)
        return func

    return apply


def output_option(formats: Sequence[str] = FORMATS) -> Decorator:
    return click.option("-o", "--output", "fmt", type=click.Choice(formats), default="table", show_default=True)


DEFAULT_OVNK = "4.14"
ovnk_option = click.option(
    "--ovnk-version", "ovnk", type=click.Choice(sorted(PROFILES)), default=None,
    help=PROFILE_HELP + f" [default: with --lab the version the lab writes, else {DEFAULT_OVNK}]")
fail_on_option = click.option(
    "--fail-on", "fail_on", type=click.Choice([f.value for f in FailOn]), default=FailOn.WARNING.value,
    show_default=True, callback=lambda _ctx, _param, value: FailOn(value),
    help="Which policy findings make the command exit 1 (drift always does).")
network_option = click.option("--network", default=None, metavar="NS/NAD", help="Only this network.")
namespace_option = click.option("-n", "--namespace", default=None, help="Only workloads of this namespace.")

lab_options = _stack(
    click.option("--lab", is_flag=True, help="Check the embedded lab instead of this node."),
    click.option("--state-dir", type=click.Path(path_type=Path), default=DEFAULT_STATE_DIR, show_default=True,
                 help="The lab's state directory."),
    click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="The lab's namespace prefix."),
)
node_options = _stack(
    click.option("--nb", "nb_url", default=DEFAULT_NB, show_default=True,
                 help="OVN northbound database: a server URL, or a database file (a support bundle's)."),
    click.option("--sb", "sb_url", default=DEFAULT_SB, show_default=True, help="OVN southbound database (ovn-trace)."),
    click.option("--ovs", "ovs_url", default=DEFAULT_OVS, show_default=True,
                 help="Open_vSwitch database: a server URL, or a database file (conf.db)."),
    click.option("--prober", type=click.Choice(PROBERS), default="raw", show_default=True),
    click.option("--node", "node_name", envvar="NODE_NAME", default=socket.gethostname(),
                 show_default="$NODE_NAME or hostname",
                 help="The node whose OVN zone --nb is (each node judges only the halves of a cell it runs)."),
)


def profile(name: str | None) -> OvnkProfile:
    return PROFILES[name or DEFAULT_OVNK]


def parse_network(text: str | None) -> Ref | None:
    if text is None:
        return None
    try:
        return Ref.parse(text, "default")
    except ValueError as exc:
        raise fail(f"--network: {exc}") from None


STDIN = "-"

declared_input_options = _stack(
    click.option("-f", "--filename", "paths", multiple=True, type=click.Path(allow_dash=True),
                 help="Manifest file or folder (YAML/JSON, multi-document, List kinds; - for stdin). Repeatable. "
                      "Without -f (and without --lab): the live cluster."),
    click.option("--kubeconfig", type=click.Path(), default=None,
                 help="Live cluster: this kubeconfig (default: in-cluster config, else ~/.kube/config)."),
    click.option("--context", default=None, help="Live cluster: this kubeconfig context."),
    click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True,
                 help="Every namespace (the default: peers in any namespace count; -n only narrows what is shown)."),
    click.option("--endpoints", "endpoint_files", multiple=True, type=click.Path(),
                 help="Live cluster: segcheck ExternalEndpoints file(s)."),
    click.option("--request-timeout", type=float, default=30.0, show_default=True,
                 help="Live cluster: seconds to wait for a complete listing."),
)


@dataclass(frozen=True)
class DeclaredInput:
    """Where the declared state comes from: manifest files (or stdin), the lab's seed, or the live cluster."""

    paths: tuple[str, ...]
    lab: bool
    cluster: ClusterTarget
    lab_files: tuple[str, ...] = ()  # the manifests the lab was built from (`lab up -f`), when recorded

    @property
    def files(self) -> tuple[str, ...]:
        """The manifests given, or with --lab those the lab was built from (default: the shipped seed); empty:
        the live cluster."""
        return self.paths or ((self.lab_files or (str(packaged_seed()),)) if self.lab else ())

    def load(self) -> Inventory:
        """Report every bad object (file and object named) and stop with exit 2 if any; exit 3 when the cluster
        cannot be read."""
        if self.files:
            inventory, errors = _read_files(self.files)
        else:
            try:
                inventory, errors = read_cluster(self.cluster)
            except NoCluster as exc:
                raise fail(str(exc)) from None
            except ClusterUnreachable as exc:
                raise fail(str(exc), EXIT_CANNOT_CHECK) from None
        for err in errors:
            click.echo(f"error: {err}", err=True)
        for line in skipped_notices(inventory):
            click.echo(f"notice: {line}", err=True)
        if errors:
            raise click.exceptions.Exit(EXIT_USAGE)
        return inventory


def _read_files(paths: Sequence[str]) -> tuple[Inventory, list[str]]:
    """Manifests from files and folders; `-` is standard input (named `-` in messages)."""
    if STDIN not in paths:
        return read_manifests(paths)
    with tempfile.TemporaryDirectory(prefix="segcheck-stdin-") as tmp:
        piped = Path(tmp) / "stdin.yaml"
        piped.write_text(sys.stdin.read())
        inventory, errors = read_manifests([str(piped) if p == STDIN else p for p in paths])
        return inventory, [e.replace(str(piped), STDIN) for e in errors]


def complete_endpoint(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of FROM/TO: the workloads and external endpoints of the manifests given so far (-f), or
    of the lab's seed with --lab. The live cluster is not asked: completion must answer at once."""
    files = DeclaredInput(tuple(ctx.params.get("paths") or ()), bool(ctx.params.get("lab")), ClusterTarget()).files
    if not files or STDIN in files:
        return []
    inventory, _ = read_manifests(files)
    names = {a.ref.name for a in inventory.attachments} | {str(a.ref) for a in inventory.attachments}
    names |= {e.name for e in inventory.externals}
    return sorted(n for n in names if n.startswith(incomplete))


def recorded_lab_manifests(state_dir: Path | None = None, prefix: str | None = None) -> tuple[str, ...]:
    """The manifests the lab in --state-dir was built from (`lab up -f`), if recorded and still there."""
    ctx = click.get_current_context(silent=True)
    params = ctx.params if ctx is not None else {}
    state_dir = state_dir or params.get("state_dir") or DEFAULT_STATE_DIR
    try:
        return Lab(state_dir=state_dir, prefix=prefix or params.get("prefix") or DEFAULT_PREFIX).manifests
    except ValueError:
        return ()  # a bad prefix: the command itself says so


def declared_input(func: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the declared-state options and hands the command `declared` (a DeclaredInput) instead; `lab` must be
    an option of the command too (it defaults to False where the command has none)."""

    @declared_input_options
    @functools.wraps(func)
    def wrapper(paths: tuple[str, ...], kubeconfig: str | None, context: str | None, all_namespaces: bool,
                endpoint_files: tuple[str, ...], request_timeout: float, **kwargs: Any) -> Any:
        if all_namespaces and kwargs.get("namespace"):
            raise fail("-A and -n exclude each other")
        target = ClusterTarget(kubeconfig, context, endpoint_files, request_timeout)
        lab = bool(kwargs.get("lab"))
        return func(declared=DeclaredInput(paths, lab, target, recorded_lab_manifests() if lab else ()), **kwargs)

    return wrapper


def choose_sources(lab: bool, state_dir: Path, prefix: str, paths: Sequence[str], nb_url: str, sb_url: str,
                   ovs_url: str, prober: str, node: str | None = None, *, must_be_up: bool = True,
                   rundirs: tuple[Path | None, Path | None] = (None, None)) -> Sources:
    """The lab (built from `paths`) with --lab, else this node's sockets and namespaces."""
    sources: Sources
    if lab:
        sources = _lab_sources(state_dir, prefix, paths, prober, node)
    else:
        sources = NodeSources(nb_url, ovs_url, sb_url, prober, node)
        sources.ovs_rundir = rundirs[0] or sources.ovs_rundir
        sources.ovn_rundir = rundirs[1] or sources.ovn_rundir
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(sources.close)
    reason = sources.unavailable() if must_be_up else None
    if reason is not None:
        raise fail(reason, EXIT_CANNOT_CHECK)
    return sources


def _lab_sources(state_dir: Path, prefix: str, paths: Sequence[str], prober: str, node: str | None) -> Sources:
    """The one-node lab, or one node of a lab cluster (--node names it: each node is its own OVN zone)."""
    cluster = LabCluster.recorded(state_dir)
    if cluster is None:
        return LabSources.build(state_dir, prefix, paths, prober)
    if node not in cluster.nodes:
        raise fail(f"the lab in {state_dir} is a cluster: choose its node with --node ({', '.join(cluster.nodes)})")
    return LabNodeSources.build_node(state_dir, node, paths, prober)


def with_sources(func: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the lab and node options and hands the command `lab` and `open_sources(manifest files)` instead."""

    @_stack(lab_options, node_options)
    @functools.wraps(func)
    def wrapper(lab: bool, state_dir: Path, prefix: str, nb_url: str, sb_url: str, ovs_url: str, prober: str,
                node_name: str, **kwargs: Any) -> Any:
        def sources(chosen: Sequence[str]) -> Sources:
            return choose_sources(lab, state_dir, prefix, chosen, nb_url, sb_url, ovs_url, prober, node_name)

        if lab and kwargs.get("ovnk", "") is None:
            kwargs["ovnk"] = Lab(state_dir=state_dir, prefix=prefix).ovnk_version  # expect what the lab writes

        return func(lab=lab, open_sources=sources, **kwargs)

    return wrapper
