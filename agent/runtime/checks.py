"""The use cases behind the one-shot commands, as functions returning typed reports (they print nothing).

- `expected_matrix`: the declared plane of each network (`segcheck matrix`);
- `explain`: one expected verdict and its rules, optionally traced through OVN (`segcheck explain`);
- `probe_cell`: one cell on all three planes, with the PostgreSQL follow-up (`segcheck probe`);
- `verify_networks`: every cell of every network on all three planes (`segcheck verify`, local `drift`).

The sources (node or lab) are given by the caller; nothing here knows which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..adapters.agent_client import AgentClient
from ..adapters.manifest_files import load_inventory
from ..adapters.port_checks import CheckAnswer, run_check
from ..adapters.trace import UNKNOWN_MAC, trace_flow
from ..core.drift import CheckedCell, has_drift
from ..core.enforcement import OvnkProfile, network_findings
from ..core.findings import Finding
from ..core.inventory import Inventory
from ..core.model import (Attachment, Endpoint, ExternalEndpoint, Judgement, PortRange, Protocol, Ref, Verdict,
                          address_of)
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.programmed import ProgrammedPlane
from ..core.reachability import Cell, NetworkReachability
from ..core.resolve import ResolveError, asked_family, resolve_pair, split_target
from ..core.sources import SnapshotReader, SourceUnavailable, Sources, Trace
from .checker import Checker, CheckReport, single_cell
from .status import Status, worst

EXAMPLE_PORT = 5432  # the port usage messages suggest


class UsageError(ValueError):
    """The request cannot be answered as asked (unknown workload, missing port...): the user must change it."""


def read_manifests(paths: Sequence[str]) -> tuple[Inventory, list[str]]:
    """The declared state from manifest files or folders, and every bad object (file and object named)."""
    inventory, errors = load_inventory(paths)
    return inventory, [str(e) for e in errors]


def _networks(inventory: Inventory, wanted: Ref | None) -> list[Ref]:
    """Every network, or the one behind the NAD asked for (any NAD of a network names it)."""
    if wanted is None:
        return sorted(inventory.networks)
    key = inventory.network_of(wanted)
    if key is None:
        raise UsageError(f"no NetworkAttachmentDefinition {wanted} in the declared state")
    return [key]


# ----------------------------------------------------------------------------- programmed plane

@dataclass
class Programmed:
    nb: NbSnapshot | None
    ovs: OvsSnapshot | None
    errors: list[str]


def _snapshot(reader: SnapshotReader[NbSnapshot] | SnapshotReader[OvsSnapshot] | None,
              errors: list[str]) -> NbSnapshot | OvsSnapshot | None:
    if reader is None:
        return None
    try:
        return reader.snapshot()
    except SourceUnavailable as exc:
        errors.append(str(exc))
        return None
    finally:
        reader.close()


def read_programmed(sources: Sources, *, ovs: bool = True, timeout: float = 5.0) -> Programmed:
    """One consistent read of each database; one that cannot be read leaves its plane unknown."""
    errors: list[str] = []
    nb = _snapshot(sources.northbound(timeout), errors)
    snap = _snapshot(sources.open_vswitch(timeout), errors) if ovs else None
    assert nb is None or isinstance(nb, NbSnapshot)
    assert snap is None or isinstance(snap, OvsSnapshot)
    return Programmed(nb, snap, errors)


def _checker(inventory: Inventory, network: Ref, sources: Sources, programmed: Programmed, profile: OvnkProfile,
             extra: Sequence[Endpoint] = ()) -> Checker:
    return Checker(inventory, network, programmed.nb, programmed.ovs, sources.prober(), sources.locator(), profile,
                   extra=tuple(extra), zone=sources.node)


# ----------------------------------------------------------------------------- matrix

@dataclass
class MatrixReport:
    matrix: NetworkReachability
    findings: list[Finding]


def expected_matrix(inventory: Inventory, profile: OvnkProfile, network: Ref | None = None,
                    namespace: str | None = None) -> list[MatrixReport]:
    """The expected reachability of each network (or the one asked for), with its policy findings."""
    if namespace is not None and not any(a.ref.namespace == namespace for a in inventory.attachments):
        raise UsageError(f"no pod or VM in namespace {namespace!r} in the declared state")
    return [MatrixReport(NetworkReachability(inventory, net, profile=profile, namespace=namespace),
                         network_findings(inventory, net, profile))
            for net in _networks(inventory, network)]


# ----------------------------------------------------------------------------- explain

@dataclass
class ExplainReport:
    network: Ref
    profile: str
    source: Endpoint
    destination: Endpoint
    port: int | None
    protocol: Protocol
    judgement: Judgement | None  # with a port: its verdict
    cells: list[Cell]  # without a port: the pair's cells
    findings: list[Finding]
    trace: Trace | None = None
    programmed: Judgement | None = None  # with a trace: segcheck's own ACL evaluation, stage by stage
    family: int | None = None  # dual-stack: the IP family of `judgement` (an address typed picks it)

    @property
    def status(self) -> Status:
        """Could not check when a trace was asked for and gave no evidence (findings are judged by the caller)."""
        if self.trace is not None and self.trace.verdict == "unknown":
            return Status.COULD_NOT_CHECK
        return Status.MATCH


def _resolve(inventory: Inventory, source: str, destination: str, network: Ref | None, namespace: str | None
             ) -> tuple[Ref, Endpoint, Endpoint, int | None, Protocol, int | None]:
    """The pair, port and protocol, and the IP family an address typed for either end picks (else None)."""
    try:
        target = split_target(destination)
        net, src, dst = resolve_pair(inventory, source, target.text, network, namespace)
        family = asked_family(source, target.text)
    except ResolveError as exc:
        raise UsageError(str(exc)) from None
    return net, src, dst, target.port, target.protocol, family


def _families(matrix: NetworkReachability, src: Endpoint, dst: Endpoint, asked: int | None) -> list[int | None]:
    """The families a pair is judged in: on a dual-stack network both it has (or the one an address picked)."""
    families = list(matrix.pair_families(matrix.class_index[src.key], matrix.class_index[dst.key]))
    if asked is None or families == [None]:
        return families
    if asked not in families:
        raise UsageError(f"{src.key} and {dst.key} have no IPv{asked} addresses to talk over")
    return [asked]


def explain(inventory: Inventory, source: str, destination: str, profile: OvnkProfile, *,
            network: Ref | None = None, namespace: str | None = None, trace_with: Sources | None = None) -> ExplainReport:
    """One expected verdict and why; with `trace_with`, also the first packet traced through that OVN."""
    net, src, dst, port, protocol, asked = _resolve(inventory, source, destination, network, namespace)
    matrix = NetworkReachability(inventory, net, extra=[src, dst], profile=profile)
    families = _families(matrix, src, dst, asked)
    traced, judged = None, None
    if trace_with is not None:
        if port is None:
            raise UsageError("--trace needs a port: TO:PORT[/PROTO]")
        traced, judged = trace_cell(inventory, net, src, dst, port, protocol, trace_with, families[0])
    findings = network_findings(inventory, net, profile)
    if port is None:
        cells = [c for c in matrix.pair_cells(src, dst) if c.family in families]
        return ExplainReport(net, profile.name, src, dst, port, protocol, None, cells, findings, traced, judged)
    if len(families) > 1:  # a dual-stack pair, no family asked: one verdict per family, as cells
        one = PortRange(protocol, port, port)
        cells = [Cell(src.key, dst.key, protocol, one, matrix.judge(src, dst, port, protocol, f), f) for f in families]
        return ExplainReport(net, profile.name, src, dst, port, protocol, None, cells, findings, traced, judged,
                             families[0])
    return ExplainReport(net, profile.name, src, dst, port, protocol, matrix.judge(src, dst, port, protocol, families[0]),
                         [], findings, traced, judged, families[0])


def trace_cell(inventory: Inventory, network: Ref, src: Endpoint, dst: Endpoint, port: int, protocol: Protocol,
               sources: Sources, family: int | None = None) -> tuple[Trace, Judgement | None]:
    """Locate both ends' logical ports and MACs in NB, then ask OVN's tracer what the pipeline does; beside it,
    segcheck's own evaluation of the same ACLs (None when NB cannot be read). The packet is of `family` (None:
    from and to the first addresses)."""
    tracer = sources.tracer()
    if tracer is None:
        return Trace("unknown", "no OVN southbound database to trace with"), None
    programmed = read_programmed(sources, ovs=False)
    if programmed.nb is None:
        return Trace("unknown", "; ".join(programmed.errors) or "OVN northbound not readable"), None
    plane = ProgrammedPlane(programmed.nb, inventory.networks[network])
    judged = plane.judge(src, dst, port, protocol, family)
    inport = plane.port_of(src)
    src_ip, dst_ip = address_of(src, family), address_of(dst, family)
    if inport is None or src_ip is None or dst_ip is None:
        return Trace("unknown", f"no logical port or address for {src.key}"), judged

    def mac(e: Endpoint) -> str:
        row = plane.port_row(e)
        return row.macs[0] if row is not None and row.macs and isinstance(e, Attachment) else UNKNOWN_MAC

    flow = trace_flow(inport, mac(src), mac(dst), str(src_ip), str(dst_ip), protocol.value, port)
    return tracer(plane.switch_name, flow), judged


# ----------------------------------------------------------------------------- probe one cell

@dataclass
class ProbeReport:
    network: Ref
    source: Endpoint
    destination: Endpoint
    port: int
    protocol: Protocol
    cell: CheckedCell  # the first family's (on a dual-stack pair, no address typed: IPv4)
    check: CheckAnswer | None  # the destination port's declared check, run when the cell is allowed
    errors: list[str]
    # Dual-stack, no address typed: every family's cell, each probed in its family (else just `cell`).
    cells: list[CheckedCell] = field(default_factory=list)

    @property
    def status(self) -> Status:
        every = self.cells or [self.cell]
        if any(has_drift(c) for c in every):
            return Status.DRIFT
        unknown = any(j is None or j.verdict is Verdict.UNKNOWN for c in every for j in (c.observed, c.programmed))
        return Status.COULD_NOT_CHECK if unknown else Status.MATCH


def probe_cell(inventory: Inventory, sources: Sources, source: str, destination: str, profile: OvnkProfile, *,
               network: Ref | None = None, namespace: str | None = None) -> ProbeReport:
    """Send a real probe for one cell and set it beside its expected and programmed verdicts (a dual-stack pair
    with no address typed: one cell per family, each probed in its own). When the (first) cell is allowed and the
    destination declares a check for the port (tcp, http, postgres), the check runs too, in that cell's family."""
    net, src, dst, port, protocol, asked = _resolve(inventory, source, destination, network, namespace)
    if port is None:
        raise UsageError(f"{destination!r}: give a port, e.g. {destination}:{EXAMPLE_PORT}")
    programmed = read_programmed(sources)
    checker = _checker(inventory, net, sources, programmed, profile, extra=(src, dst))
    families = _families(checker.expected, src, dst, asked)  # dual-stack: the asked family, else both
    observed, _ = checker.observe([single_cell(checker, src, dst, port, protocol, f) for f in families],
                                  protocols=frozenset({Protocol.TCP, Protocol.UDP}))
    cell = observed[0]
    answer = None
    check = dst.check_for(port, protocol) if isinstance(dst, ExternalEndpoint) else None
    if check is not None and cell.observed is not None and cell.observed.verdict is Verdict.ALLOWED:
        netns = sources.locator().application_netns(src)
        dst_ip = address_of(dst, cell.family)
        if netns is not None and dst_ip is not None:
            answer = run_check(check, netns, str(dst_ip), port)
    return ProbeReport(net, src, dst, port, protocol, cell, answer, programmed.errors,
                       observed if len(observed) > 1 else [])


# ----------------------------------------------------------------------------- verify

@dataclass
class VerifyReport:
    networks: list[CheckReport] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return worst([r.status for r in self.networks])


def verify_networks(inventory: Inventory, sources: Sources, profile: OvnkProfile, *, network: Ref | None = None,
                    drift_only: bool = False, probe: bool = True) -> VerifyReport:
    """Check every cell of every network (or the one asked for) on all three planes; without `probe`, declared
    against programmed only (e.g. offline, on a support bundle's databases)."""
    out = VerifyReport()
    for net in _networks(inventory, network):
        programmed = read_programmed(sources)
        report = _checker(inventory, net, sources, programmed, profile).run(probe=probe)
        report.errors = programmed.errors
        if drift_only:
            report.cells = [c for c in report.cells if c.drift]
        out.networks.append(report)
    return out


# ----------------------------------------------------------------------------- asking a running agent

def agent_drift(client: AgentClient, network: str | None = None) -> tuple[dict[str, Any], Status]:
    """The cells that drift now on the agent's node; could-not-check when one of its sources is down."""
    data = client.drift(network)
    drifting = any(n.get("cells") for n in data.get("networks", []))
    down = any(not s.get("up") for s in data.get("sources", []))
    return data, Status.DRIFT if drifting else (Status.COULD_NOT_CHECK if down else Status.MATCH)


def agent_probe(client: AgentClient, source: str, destination: str, network: str | None = None,
                namespace: str | None = None) -> tuple[dict[str, Any], Status]:
    """One probe sent by the agent, judged on its three planes (`unknown` drift is no claim)."""
    data = client.probe(source, destination, network, namespace)
    drift = [d for d in data.get("drift", []) if d != "unknown"]
    unknown = any((data.get(p) or {}).get("verdict", "unknown") == "unknown" for p in ("observed", "programmed"))
    return data, Status.DRIFT if drift else (Status.COULD_NOT_CHECK if unknown else Status.MATCH)
