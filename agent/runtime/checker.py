"""One three-way check: declared (manifests or API) vs programmed (OVN NB) vs observed (probes).

Used by `segcheck probe`, `segcheck verify` and each round of the agent. Sources that cannot be read make a
plane `None` (not known) instead of failing the whole check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

from ..core.drift import CheckedCell, check_points, classify, has_drift, pairs as all_pairs
from ..core.enforcement import DEFAULT_PROFILE, OvnkProfile, network_findings
from ..core.findings import Finding
from ..core.inventory import Inventory
from ..core.model import (FAMILY_NAMES, Attachment, Endpoint, Judgement, PortRange, Protocol, Reason, Ref, Verdict,
                          address_of)
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import Evidence, ProbeJob, ProbeProtocol, ProbeResult, Prober
from ..core.programmed import MappingStatus, ProgrammedPlane, Unattributed, check_localnet_mapping, detect_ovnk
from ..core.reachability import NetworkReachability
from ..core.selectors import MatchMemo
from ..core.sources import Locator
from .status import Status


@dataclass
class CheckReport:
    network: Ref
    cells: list[CheckedCell]
    findings: list[Finding] = field(default_factory=list)
    mapping: MappingStatus | None = None
    ovnk: list[str] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    duration_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # sources that could not be read
    status: Status = Status.MATCH  # of every cell checked (also when `cells` is later narrowed)
    probed: bool = True  # False: declared vs programmed only
    # NB ports no declared workload claims, and declared workloads without a port: their cells are unknown.
    unattributed: list[Unattributed] = field(default_factory=list)


def cells_status(cells: Sequence[CheckedCell], observed: bool = True) -> Status:
    """Drift beats everything; cells whose programmed plane was not read, or (when probing) none observed:
    could not check."""
    if any(has_drift(c) for c in cells):
        return Status.DRIFT
    cannot = any(c.programmed is None for c in cells) or (observed and not any(c.observed for c in cells))
    return Status.COULD_NOT_CHECK if cannot else Status.MATCH


def observed_judgement(result: ProbeResult) -> Judgement:
    if result.job.protocol is ProbeProtocol.UDP and result.evidence is Evidence.NO_ANSWER_TARGET_ALIVE:
        # A UDP service may simply not answer our payload: silence is no evidence of a drop.
        return Judgement(Verdict.UNKNOWN, (Reason("probe/udp-silence", "no UDP reply and no ICMP port unreachable; "
                                                  "the host is alive, but a silent service looks the same as a drop"),))
    return Judgement(result.verdict, (Reason(f"probe/{result.evidence.value}", result.detail or result.evidence.value),))


def not_probed(reason: str) -> Judgement:
    return Judgement(Verdict.UNKNOWN, (Reason("probe/not-sent", reason),))


@dataclass
class Checker:
    inventory: Inventory
    network: Ref
    nb: NbSnapshot | None = None
    ovs: OvsSnapshot | None = None
    prober: Prober | None = None
    locator: Locator | None = None
    profile: OvnkProfile = DEFAULT_PROFILE
    probe_timeout: float = 1.0
    probe_rate: float = 2000.0
    protocols: Sequence[Protocol] = tuple(Protocol)
    extra: Sequence[Endpoint] = ()  # endpoints outside the declared state (an IP target) to check too
    zone: str | None = None  # interconnect: the node whose OVN zone `nb` is (None: one zone holds every workload)
    # The expected plane of this very inventory, network, extra endpoints and profile, when the caller has it already.
    reuse_expected: NetworkReachability | None = None
    matches: MatchMemo | None = None  # selector answers kept across re-plans (the agent's planner owns it)

    def __post_init__(self) -> None:
        self.network = self.inventory.network_of(self.network) or self.network  # any NAD of the network names it
        net = self.inventory.networks.get(self.network)
        if net is None:
            raise KeyError(f"no NetworkAttachmentDefinition {self.network}")
        self.net = net
        self.expected = self.reuse_expected or NetworkReachability(self.inventory, self.network, extra=self.extra,
                                                                   profile=self.profile, matches=self.matches)
        self.programmed = ProgrammedPlane(self.nb, net, zone=self.zone) if self.nb is not None else None

    def findings(self, declared: Sequence[Finding] | None = None) -> list[Finding]:
        """`declared`: the inventory's `declared_findings`, when the caller has them (one per plan, not per network)."""
        found = list(network_findings(self.inventory, self.network, self.profile, enforcement=self.expected.findings,
                                      declared=declared))
        if self.programmed is not None:
            found += self.programmed.findings
            selecting = sorted({i for side in self.expected.sides for i in side.policies})
            found += self.programmed.policy_findings(self.expected.policies[i] for i in selecting)
            found += self.ovnk_detected()[1]
        return found

    def ovnk_detected(self) -> tuple[list[str], list[Finding]]:
        """What OVN NB reveals about the OVN-K version (nothing without NB)."""
        if self.nb is None:
            return [], []
        return detect_ovnk(self.nb, self.net, self.profile.name, self.profile.end_port_supported,
                           self.profile.nb_shapes)

    def mapping(self) -> MappingStatus | None:
        if self.ovs is None or self.net.topology != "localnet":
            return None  # only a localnet leaves the node through a bridge mapping
        return check_localnet_mapping(self.net, self.ovs)

    def plan(self, endpoint_pairs: Iterable[tuple[Endpoint, Endpoint]] | None = None) -> list[CheckedCell]:
        chosen = list(endpoint_pairs) if endpoint_pairs is not None else all_pairs(self.expected)
        cells: list[CheckedCell] = []
        memo: dict[tuple[object, ...], Any] = {}
        for src, dst in chosen:
            cells.extend(check_points(self.expected, self.programmed, src, dst, self.protocols, memo))
        return cells

    def endpoint(self, key: str) -> Endpoint:
        if not hasattr(self, "_by_key"):
            self._by_key = {e.key: e for e in self.expected.endpoints}
        return self._by_key[key]

    def observe(self, cells: Sequence[CheckedCell], timeout: float | None = None,
                protocols: frozenset[Protocol] = frozenset({Protocol.TCP})) -> tuple[list[CheckedCell], list[ProbeResult]]:
        """Probe every cell of `protocols` whose source this node can send as; other cells stay unobserved (None).
        Rounds probe TCP only: UDP silence proves nothing, and SCTP is not probed."""
        if self.prober is None or self.locator is None:
            return list(cells), []
        jobs: list[ProbeJob] = []
        index: dict[int, int] = {}
        notes: dict[int, Judgement] = {}
        for i, cell in enumerate(cells):
            if cell.protocol not in protocols or cell.protocol is Protocol.SCTP:
                continue
            try:
                src, dst = self.endpoint(cell.source), self.endpoint(cell.destination)
            except KeyError:  # a cell of a plan that has since dropped the endpoint (a batch in flight)
                notes[i] = not_probed("no longer declared")
                continue
            point = self.locator.send_point(src)
            if point is None:
                if self.zone is not None and isinstance(src, Attachment) and src.node == self.zone:
                    # Declared on this node but not positively identified: no probe, and say why.
                    notes[i] = not_probed(self.locator.why_not(src) or f"{src.key} not found on this node")
                continue
            # A dual-stack cell is probed in its family: from the source's address of it, to the destination's.
            dst_ip, src_ip = address_of(dst, cell.family), address_of(src, cell.family)
            if dst_ip is None:
                what = f"{FAMILY_NAMES[cell.family]} address" if cell.family is not None else "address"
                notes[i] = not_probed(f"{dst.key} has no {what}")
                continue
            if cell.family is not None:
                if src_ip is None:
                    notes[i] = not_probed(f"{src.key} has no {FAMILY_NAMES[cell.family]} address")
                    continue
                point = replace(point, ip=src_ip)
            index[i] = len(jobs)
            jobs.append(ProbeJob(point, dst_ip, cell.sample_port, ProbeProtocol(cell.protocol.value), tag=str(i)))
        wait = self.probe_timeout if timeout is None else timeout
        results = self.prober.run(jobs, timeout=wait, rate=self.probe_rate) if jobs else []
        out = []
        for i, cell in enumerate(cells):
            if i in index:
                out.append(cell.with_observed(observed_judgement(results[index[i]])))
            elif i in notes:
                out.append(cell.with_observed(notes[i]))
            else:
                out.append(cell)
        return out, results

    def run(self, endpoint_pairs: Iterable[tuple[Endpoint, Endpoint]] | None = None, *,
            probe: bool = True) -> CheckReport:
        """Plan the check points, probe them (unless `probe` is off: declared vs programmed only), judge."""
        started = time.monotonic()
        planned = self.plan(endpoint_pairs)
        cells, probes = self.observe(planned) if probe else (planned, [])
        mapping = self.mapping()
        findings = self.findings() + (list(mapping.findings) if mapping is not None else [])
        return CheckReport(self.network, cells, findings, mapping, self.ovnk_detected()[0], probes,
                           time.monotonic() - started, status=cells_status(cells, observed=probe), probed=probe,
                           unattributed=self.programmed.unattributed(self.expected.endpoints) if self.programmed else [])


def single_cell(checker: Checker, source: Endpoint, destination: Endpoint, port: int, protocol: Protocol,
                family: int | None = None) -> CheckedCell:
    """The check point of one pair that holds `port`, narrowed to exactly that port (on a dual-stack network: in
    `family`, default the pair's first)."""
    for cell in checker.plan([(source, destination)]):
        if family is not None and cell.family not in (None, family):
            continue
        if cell.protocol is protocol and cell.ports.first <= port <= cell.ports.last:
            narrowed = replace(cell, ports=PortRange(protocol, port, port), sample_port=port)
            return replace(narrowed, drift=classify(narrowed.expected, narrowed.programmed, None, narrowed.expected_here))
    raise KeyError(f"no check point for {source.key} -> {destination.key} {port}/{protocol.value}")


