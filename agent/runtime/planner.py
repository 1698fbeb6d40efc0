"""Planning: which cells this node checks, built from the declared and programmed state.

Only pairs with a local end are planned (from each local endpoint to all, and from the others to each local one),
so the work per agent does not grow with the cluster. Observations of the previous plan carry over to cells whose
expected and programmed verdicts did not change.
"""

from __future__ import annotations

from typing import Sequence

from ..core.enforcement import OvnkProfile, unplaced_findings
from ..core.inventory import Inventory
from ..core.model import Attachment, Endpoint, Protocol, Ref, Verdict
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import Prober
from ..core.state import DeclaredError
from .cell_records import CellId, CellRecord, NetworkPlan, Plan
from .checker import Checker, Locator

OVN_K_CNI = "ovn-k8s-cni-overlay"


class Planner:
    def __init__(self, prober: Prober | None, locator: Locator | None, node: str, profile: OvnkProfile, *,
                 only_local: bool, probe_timeout: float, probe_rate: float, max_sentinels: int) -> None:
        self.prober, self.locator, self.node, self.profile = prober, locator, node, profile
        self.only_local, self.probe_timeout, self.probe_rate = only_local, probe_timeout, probe_rate
        self.max_sentinels = max_sentinels
        # A cluster node's NB is its own OVN zone (interconnect): it judges only the halves it runs.
        self.zone = node if only_local else None

    def checker(self, inventory: Inventory, network: Ref, nb: NbSnapshot | None, ovs: OvsSnapshot | None,
                extra: Sequence[Endpoint] = ()) -> Checker:
        """`extra`: endpoints the declared state does not hold (an IP a user names as a probe target)."""
        return Checker(inventory, network, nb, ovs, self.prober, self.locator, self.profile, self.probe_timeout,
                       self.probe_rate, extra=tuple(extra), zone=self.zone)

    def is_local(self, endpoint: Endpoint) -> bool:
        """Whether this node checks cells with this endpoint at one end: it runs here (as the API says), or
        this node can send as it."""
        if isinstance(endpoint, Attachment) and endpoint.node:
            if endpoint.node == self.node:
                return True
            if self.only_local:
                return False
        return self.locator is not None and self.locator.send_point(endpoint) is not None

    def plan(self, inventory: Inventory, errors: tuple[DeclaredError, ...], nb: NbSnapshot | None, ovs: OvsSnapshot | None,
             previous: Plan | None) -> Plan:
        carried = previous.by_id if previous is not None else {}
        local: dict[str, bool] = {}
        networks: list[NetworkPlan] = []
        by_id: dict[CellId, CellRecord] = {}
        sentinels = 0
        for ref, net in sorted(inventory.networks.items()):
            if net.cni_type != OVN_K_CNI:
                continue
            checker = self.checker(inventory, ref, nb, ovs)
            endpoints = checker.expected.endpoints
            for e in endpoints:
                if e.key not in local:
                    local[e.key] = self.is_local(e)
            here = [e for e in endpoints if local[e.key]]
            pairs = [(s, d) for s in here for d in endpoints
                     if s.key != d.key and (isinstance(s, Attachment) or isinstance(d, Attachment))]
            pairs += [(s, d) for d in here for s in endpoints
                      if not local[s.key] and (isinstance(s, Attachment) or isinstance(d, Attachment))]
            mapping = checker.mapping()
            findings = tuple(checker.findings() + (list(mapping.findings) if mapping else []))
            network = NetworkPlan(checker, findings, mapping)
            for cell in checker.plan(pairs):
                probed = cell.protocol is Protocol.TCP and local.get(cell.source, False)
                old = carried.get((network.name, cell.key))
                record = CellRecord(network, len(network.records), cell, probed,
                                    old.observation if old is not None else None)
                # Allowed cells (the service paths) are the sentinels: re-probed often, so a blackhole shows fast.
                if probed and cell.expected.verdict is Verdict.ALLOWED and sentinels < self.max_sentinels:
                    record.sentinel = True
                    sentinels += 1
                network.records.append(record)
                network.views.append(record.view)
                by_id[record.id] = record
            networks.append(network)
        return Plan(tuple(networks), by_id, errors, tuple(unplaced_findings(inventory, self.profile)))
