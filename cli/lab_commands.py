"""`segcheck lab up|down|status|apply`: the embedded lab (OVS + OVN + PostgreSQL in network namespaces).

`up -f PATH` builds the hosts from manifests (default: the packaged examples/seed) and programs their
MultiNetworkPolicies; `apply -f PATH` programs policies into a running lab as OVN-Kubernetes would ("what-if"
before applying them to a cluster).

Exit codes: 0 ok, 2 usage (including invalid manifests), 3 something needed is missing (package,
privilege), 4 the lab failed.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click

import segcheck.agent
from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.enforcement import PROFILE_HELP, PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Ref
from segcheck.agent.lab.cluster import DEFAULT_NODES, MAX_NODES, LabCluster, declared_nodes, node_names, place
from segcheck.agent.lab.controller import SEED_NETWORK, ApplyReport, LabController
from segcheck.agent.lab.errors import LabError, LabUnavailable
from segcheck.agent.lab.lab import DEFAULT_OVNK_VERSION, DEFAULT_PREFIX, DEFAULT_STATE_DIR, Lab
from segcheck.agent.lab.ovs_install import DEFAULT_CACHE_DIR
from segcheck.agent.lab.topology import TOPOLOGIES, topology_from_inventory

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
            lab = Lab(state_dir=state_dir, prefix=prefix, ovs_cache_dir=ovs_cache,
                      ovnk_version=kwargs.get("ovnk_version"))
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
    if status.get("ovn"):
        tiers = "with ACL tiers" if status["ovn"]["acl_tiers"] else "no ACL tiers"
        lines.append(f"OVN ({status['ovn']['source']}, {tiers}); NB shapes of OVN-K {status.get('ovnk_version')}")
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


def _render_cluster_status(status: dict[str, Any]) -> str:
    lines = [f"cluster {status['prefix']!r} in {status['state_dir']}: {status['phase']}"
             f" ({'healthy' if status['healthy'] else 'not healthy'}), {len(status['nodes'])} nodes"]
    for node, node_status in status["nodes"].items():
        local = sorted(name for name, where in status["placement"].items() if where == node)
        lines += ["", f"== {node} (workloads: {', '.join(local) or 'none'})", _render_status(node_status)]
    lines += ["", "== physical segment"]
    for name, d in status["segment"]["daemons"].items():
        lines.append(f"{name:<22} {d['pid'] or '-':>8} {'up' if d['alive'] else 'DOWN':<6}")
    for name, present in status["segment"]["namespaces"].items():
        lines.append(f"{name:<40} {'yes' if present else 'no'}")
    bringup = status["measurements"].get("bringup")
    if bringup:
        lines.append(f"bring-up {bringup['seconds']:.2f}s; processes' RSS "
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
    """A local OVS/OVN lab of the seed scenario, or of a localnet or layer2 network of other manifests (needs root)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


def packaged_seed() -> Path:
    """examples/seed next to the installed package (an editable install or a source checkout)."""
    return Path(segcheck.agent.__file__).resolve().parents[1] / "examples" / "seed"


def _load_manifests(paths: tuple[Path, ...]) -> Inventory:
    """Manifests or exit 2 naming each bad file and object."""
    if not paths:
        seed = packaged_seed()
        if not seed.is_dir():
            raise click.UsageError(f"no -f given and the packaged seed {seed} is absent: pass -f PATH")
        paths = (seed,)
    inventory, errors = load_inventory(paths)
    if errors:
        for err in errors:
            click.echo(f"error: {err}", err=True)
        sys.exit(2)
    return inventory


def _network(inventory: Inventory, text: str | None) -> Ref:
    if text:
        try:
            ref = Ref.parse(text, "default")
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    elif SEED_NETWORK in inventory.networks:
        ref = SEED_NETWORK
    else:
        buildable = sorted(r for r, n in inventory.networks.items() if n.topology in TOPOLOGIES)
        if len(buildable) != 1:
            raise click.UsageError(f"say which network with --network NS/NAD (localnet and layer2 networks in the "
                                   f"manifests: {', '.join(map(str, buildable)) or 'none'})")
        ref = buildable[0]
    key = inventory.network_of(ref)  # any NAD of the network names it
    if key is None:
        raise click.UsageError(f"no NetworkAttachmentDefinition {ref} in the manifests")
    return key


def _use_manifests(lab: Lab, paths: tuple[Path, ...], network: str | None) -> tuple[Inventory, Ref]:
    inventory = _load_manifests(paths)
    ref = _network(inventory, network)
    try:
        lab.topology = topology_from_inventory(inventory, ref)
    except ValueError as exc:
        raise click.UsageError(f"cannot build a lab from these manifests: {exc}") from None
    return inventory, ref


def _render_apply(report: dict[str, Any]) -> str:
    head = (f"{report['controller']} (OVN-K {report['profile']}): {report['port_groups']} port groups, "
            f"{report['acls']} ACLs, {report['address_sets']} address sets "
            + ("already programmed, nothing written" if report["unchanged"] else "written in one transaction")
            + f"; in effect after {report['seconds']:.2f}s")
    lines = [head]
    if not report["tier_supported"]:
        lines.append("note: this OVN has no ACL tier column; ACLs were written without tier 2")
    for pg in report["written"]:
        lines.append("")
        lines.append(f"port group {pg['port_group']}  ({pg['owner']}; ports: {', '.join(pg['ports']) or 'none'})")
        for acl in pg["acls"]:
            lines.append(f"  {acl['direction']:<10} {acl['priority']:>5} {acl['action']:<13} {acl['match']}")
    if report["unplaced"]:
        lines.append("")
        lines.append(f"warning: selected but not in the lab: {', '.join(report['unplaced'])}")
    return "\n".join(lines)


_manifest_option = click.option("-f", "--filename", "paths", multiple=True, type=click.Path(path_type=Path),
                                help="Manifest file or folder (repeatable). Default: the packaged examples/seed.")
_network_option = click.option("--network", default=None, metavar="NS/NAD",
                               help="The localnet or layer2 network to build/program (default: default/tenantblue, "
                                    "or the only such network in the manifests).")

_profile_option = click.option(
    "--ovnk-version", "ovnk_version", type=click.Choice(sorted(PROFILES)), default=None,
    help=PROFILE_HELP + f" The lab writes exactly this version's NB shapes (default: the running lab's, else "
                        f"{DEFAULT_OVNK_VERSION}).")


def _recorded_cluster(lab: Lab) -> LabCluster | None:
    try:
        return LabCluster.recorded(lab.state_dir, lab.ovs_cache_dir, lab.topology)
    except ValueError as exc:
        raise LabError(f"the cluster recorded in {lab.state_dir} cannot be read: {exc}") from None


def _up_cluster(lab: Lab, inventory: Inventory, ref: Ref, nodes: int) -> LabCluster:
    try:
        return LabCluster(lab.state_dir, lab.prefix, lab.topology, nodes,
                          place(lab.topology, node_names(nodes), declared_nodes(inventory, ref)), lab.ovs_cache_dir)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@lab.command("up")
@_manifest_option
@_network_option
@_profile_option
@click.option("--no-policies", is_flag=True, help="Do not program the manifests' MultiNetworkPolicies.")
@click.option("--nodes", type=click.IntRange(1, MAX_NODES), is_flag=False, flag_value=DEFAULT_NODES, default=None,
              help=f"Build a cluster of N nodes (--nodes alone: {DEFAULT_NODES}), one OVN zone each as OpenShift "
                   "4.14 runs OVN-Kubernetes (interconnect), joined by a physical segment. Without it: one node.")
@_lab_options
def up(lab: Lab, output: str, paths: tuple[Path, ...], network: str | None, ovnk_version: str | None,
       no_policies: bool, nodes: int | None) -> None:
    """Bring the lab up from manifests (no-op when it already runs; a broken one is rebuilt), then program
    their MultiNetworkPolicies."""
    inventory, ref = _use_manifests(lab, paths, network)
    if nodes is not None:
        cluster = _up_cluster(lab, inventory, ref, nodes)
        status = cluster.up()
        if not no_policies:
            status["policies"] = {node: r.as_dict() for node, r in
                                  cluster.apply(inventory, ref, PROFILES[ovnk_version or DEFAULT_OVNK_VERSION]).items()}
        _emit(status, output, lambda s: _render_cluster_status(s) + "".join(
            f"\n\n== {node}: " + _render_apply(r) for node, r in s.get("policies", {}).items()))
        return
    if _recorded_cluster(lab) is not None:
        raise LabError(f"{lab.state_dir} holds a lab cluster: `segcheck lab down` it first, or add --nodes")
    status = lab.up()
    if not no_policies:
        status["policies"] = LabController(lab).apply(inventory, ref).as_dict()
    _emit(status, output, lambda s: _render_status(s) + (
        "\n\n" + _render_apply(s["policies"]) if "policies" in s else ""))


@lab.command("apply")
@_manifest_option
@_network_option
@_profile_option
@_lab_options
def apply(lab: Lab, output: str, paths: tuple[Path, ...], network: str | None, ovnk_version: str | None) -> None:
    """Program the manifests' MultiNetworkPolicies into the running lab exactly as OVN-Kubernetes would
    (replacing what was programmed before). The manifests must hold the NAD and the workloads too."""
    inventory, ref = _use_manifests(lab, paths, network)
    cluster = _recorded_cluster(lab)
    if cluster is not None:
        if not cluster.is_healthy():
            click.echo("error: the lab cluster is not healthy (run `segcheck lab up --nodes N -f ...`)", err=True)
            sys.exit(EXIT_FAILED)
        reports = cluster.apply(inventory, ref, PROFILES[ovnk_version or DEFAULT_OVNK_VERSION])
        _emit({node: r.as_dict() for node, r in reports.items()}, output,
              lambda d: "\n\n".join(f"== {node}: " + _render_apply(r) for node, r in d.items()))
        return
    if not lab.is_healthy():
        click.echo("error: no healthy lab built from these manifests (run `segcheck lab up -f ...` with the same "
                   "workloads first)", err=True)
        sys.exit(EXIT_FAILED)
    report: ApplyReport = LabController(lab).apply(inventory, ref)
    _emit(report.as_dict(), output, _render_apply)


@lab.command("down")
@_lab_options
def down(lab: Lab, output: str) -> None:
    """Stop the lab's daemons (by PID) and delete its namespaces and files (a cluster's: every node's)."""
    cluster = _recorded_cluster(lab)
    if cluster is None and LabCluster.has_nodes_on_disk(lab.state_dir):
        # A cluster whose record is lost: its node labs are found on disk, its namespaces by prefix.
        cluster = LabCluster(lab.state_dir, lab.prefix, lab.topology, 1, ovs_cache_dir=lab.ovs_cache_dir)
    _emit((cluster or lab).down(), output, lambda r: (
        f"lab {lab.prefix!r} down in {r['seconds']:.2f}s: stopped {len(r['stopped'])} processes, "
        f"deleted {len(r['namespaces_deleted'])} namespaces"))


@lab.command("status")
@_lab_options
def status(lab: Lab, output: str) -> None:
    """Show daemons, namespaces and sockets of the lab (a cluster's: per node and the physical segment)."""
    cluster = _recorded_cluster(lab)
    if cluster is not None:
        _emit(cluster.status(), output, _render_cluster_status)
        return
    _emit(lab.status(), output, _render_status)
