"""Planning: which cells this node checks, built from the declared and programmed state.

Only pairs with a local end are planned (from each local endpoint to all, and from the others to each local one),
so the work per agent does not grow with the cluster. Observations of the previous plan carry over to cells whose
expected and programmed verdicts did not change.

A re-plan updates the previous plan in place and rebuilds only the pairs a change touches. A pair's cells follow
from its two endpoints and their groups: endpoints of one expected class with one programmed signature get the
same check points towards any peer (what `check_points` shares). So the re-plan groups the endpoints again, splits
them by (previous group, new group), compares the check points of each pair of such groups with the previous
plan's (one representative pair each), and rebuilds the pairs of the groups whose check points differ, plus every
pair of an endpoint that itself changed (labels, addresses, node, whether it is local). Everything else — records,
observations, schedule entries — stays as it was. The result equals a plan built from scratch (tests compare them).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..core.consistency import declared_findings
from ..core.drift import Piece, cells_of_pieces, pair_pieces
from ..core.enforcement import OvnkProfile, unplaced_findings
from ..core.findings import Finding
from ..core.inventory import Inventory
from ..core.model import Attachment, Endpoint, Network, Protocol, Ref, Verdict
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import Prober
from ..core.selectors import MatchMemo
from ..core.state import DeclaredError
from .cell_records import CellId, CellRecord, Member, NetworkPlan, PairBlock, PairKey, Plan, PlanChange
from .checker import Checker, Locator

OVN_K_CNI = "ovn-k8s-cni-overlay"


class _Group:
    """Endpoints of one (previous group, new group, local) in a re-plan; `old` is None for endpoints that are new
    or changed themselves (each such endpoint is a group of its own, every pair of it rebuilt)."""

    __slots__ = ("old", "new", "local", "workload", "members")

    def __init__(self, old: int | None, new: int, local: bool, first: Endpoint) -> None:
        self.old, self.new, self.local = old, new, local
        self.workload = isinstance(first, Attachment)
        self.members: list[Endpoint] = []


def pair_order(endpoints: Sequence[Endpoint], local: dict[str, bool]) -> list[tuple[Endpoint, Endpoint]]:
    """The planned pairs in plan order: from each local endpoint to all, then from the others to each local one."""
    here = [e for e in endpoints if local[e.key]]
    pairs = [(s, d) for s in here for d in endpoints
             if s.key != d.key and (isinstance(s, Attachment) or isinstance(d, Attachment))]
    pairs += [(s, d) for d in here for s in endpoints
              if not local[s.key] and (isinstance(s, Attachment) or isinstance(d, Attachment))]
    return pairs


class Planner:
    def __init__(self, prober: Prober | None, locator: Locator | None, node: str, profile: OvnkProfile, *,
                 only_local: bool, probe_timeout: float, probe_rate: float, max_sentinels: int) -> None:
        self.prober, self.locator, self.node, self.profile = prober, locator, node, profile
        self.only_local, self.probe_timeout, self.probe_rate = only_local, probe_timeout, probe_rate
        self.max_sentinels = max_sentinels
        self.incremental = True  # off: every re-plan builds from scratch (the baseline benchmarks compare with)
        # Selector answers of the previous world: a re-plan matches only new selectors and label sets again.
        self.matches = MatchMemo()
        # A cluster node's NB is its own OVN zone (interconnect): it judges only the halves it runs.
        self.zone = node if only_local else None

    def checker(self, inventory: Inventory, network: Ref, nb: NbSnapshot | None, ovs: OvsSnapshot | None,
                extra: Sequence[Endpoint] = (), reuse: Checker | None = None,
                matches: MatchMemo | None = None) -> Checker:
        """`extra`: endpoints the declared state does not hold (an IP a user names as a probe target). `reuse`: a
        checker of the same network; when it read this very inventory (only NB or OVS changed), its expected plane
        is used again. `matches`: the planner's selector memo (planning only: it belongs to the loop thread)."""
        same = reuse is not None and reuse.inventory is inventory and not extra and not reuse.extra
        return Checker(inventory, network, nb, ovs, self.prober, self.locator, self.profile, self.probe_timeout,
                       self.probe_rate, extra=tuple(extra), zone=self.zone,
                       reuse_expected=reuse.expected if same and reuse is not None else None, matches=matches)

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
             previous: Plan | None, *, incremental: bool = True) -> Plan:
        """The plan for these planes. With `previous` (and `incremental`), `previous` is updated in place and
        returned, its `change` saying what changed; a change of the networks themselves (a NAD added, removed
        or re-configured) is not bounded cheaply, so it builds a new plan from scratch (carrying observations),
        as `incremental=False` does."""
        nets = [(ref, net) for ref, net in sorted(inventory.networks.items()) if net.cni_type == OVN_K_CNI]
        # A full re-plan (incremental off) matches every selector afresh: the baseline, and what tests compare with.
        memo = self.matches if incremental and self.incremental else None
        if memo is not None and (previous is None or previous.inventory is not inventory):
            memo.next_round()
        if previous is not None and previous.inventory is inventory:  # only NB or OVS changed
            declared, unplaced = previous.declared, previous.unplaced
        else:
            declared = declared_findings(inventory)
            unplaced = tuple(unplaced_findings(inventory, self.profile, declared=declared))
        if incremental and self.incremental and previous is not None and self._same_networks(previous, nets):
            plan = self._update(previous, inventory, errors, nb, ovs, unplaced, declared, memo)
        else:
            plan = self._build(inventory, errors, nb, ovs, previous, nets, unplaced, declared, memo)
        plan.inventory, plan.declared = inventory, declared
        return plan

    @staticmethod
    def _same_networks(previous: Plan, nets: list[tuple[Ref, Network]]) -> bool:
        return [(n.checker.network, n.checker.net) for n in previous.networks] == nets

    def _prepare(self, inventory: Inventory, ref: Ref, nb: NbSnapshot | None, ovs: OvsSnapshot | None,
                 local: dict[str, bool], declared: list[Finding], reuse: Checker | None = None,
                 memo: MatchMemo | None = None) -> tuple[Checker, tuple, object, dict[str, Member]]:
        """One network's checker, findings, mapping, and its endpoints with their local flag and group."""
        checker = self.checker(inventory, ref, nb, ovs, reuse=reuse, matches=memo)
        expected, programmed = checker.expected, checker.programmed
        groups: dict[object, int] = {}
        members: dict[str, Member] = {}
        for e in expected.endpoints:
            if e.key not in local:
                local[e.key] = self.is_local(e)
            cls = expected.class_index[e.key]
            if programmed is None:
                group: object = cls
            else:
                signature = programmed.signature(e)
                # No signature: the plane cannot say whom it treats alike; the endpoint is a group of its own.
                group = (cls, signature) if signature is not None else ("alone", e.key)
            members[e.key] = (e, local[e.key], groups.setdefault(group, len(groups)))
        mapping = checker.mapping()
        findings = tuple(checker.findings(declared) + (list(mapping.findings) if mapping else []))
        return checker, findings, mapping, members

    def _block(self, network: NetworkPlan, src: Endpoint, dst: Endpoint, pieces: list[Piece],
               carried: dict[CellId, CellRecord], local: dict[str, bool]) -> PairBlock:
        block = PairBlock()
        for cell in cells_of_pieces(network.name, src, dst, pieces):
            probed = cell.protocol is Protocol.TCP and local.get(cell.source, False)
            old = carried.get((network.name, cell.key))
            record = CellRecord(network, block, cell, probed, old.observation if old is not None else None)
            block.records.append(record)
            if probed and cell.expected.verdict is Verdict.ALLOWED:
                block.candidates.append(record)
        return block

    @staticmethod
    def _pieces(network: NetworkPlan, src: Endpoint, dst: Endpoint) -> list[Piece]:
        key = (network.members[src.key][2], network.members[dst.key][2])
        found = network.pieces.get(key)
        if found is None:
            found = network.pieces[key] = pair_pieces(network.checker.expected, network.checker.programmed, src, dst)
        return found

    def _build(self, inventory: Inventory, errors: tuple[DeclaredError, ...], nb: NbSnapshot | None,
               ovs: OvsSnapshot | None, previous: Plan | None, nets: list[tuple[Ref, Network]],
               unplaced: tuple, declared: list[Finding], memo: MatchMemo | None) -> Plan:
        carried = previous.by_id if previous is not None else {}
        local: dict[str, bool] = {}
        networks: list[NetworkPlan] = []
        by_id: dict[CellId, CellRecord] = {}
        for ref, _ in nets:
            checker, findings, mapping, members = self._prepare(inventory, ref, nb, ovs, local, declared, memo=memo)
            network = NetworkPlan(checker, findings, mapping, members=members)
            for src, dst in pair_order(checker.expected.endpoints, local):
                block = network.blocks[(src.key, dst.key)] = self._block(
                    network, src, dst, self._pieces(network, src, dst), carried, local)
                for record in block.records:
                    by_id[record.id] = record
            networks.append(network)
        plan = Plan(tuple(networks), by_id, errors, unplaced, built=len(by_id))
        plan.denied_probed = _denied(by_id.values())
        plan.candidates = _candidates(by_id.values())
        self._mark_sentinels(plan)
        return plan

    def _mark_sentinels(self, plan: Plan) -> None:
        """Allowed cells (the service paths) are the sentinels, re-probed often so a blackhole shows fast: the
        first `max_sentinels` probed allowed cells in plan order (all of them when there are no more: a re-plan
        then keeps the set without a walk). Walks blocks, not cells (skipping chunks of blocks without any), and
        stops there."""
        for record in plan.sentinels:
            record.sentinel = False
        chosen: list[CellRecord] = []
        room = self.max_sentinels
        if room > 0:
            for network in plan.networks:
                for block in network.candidate_blocks():
                    chosen += block.candidates[:room - len(chosen)]
                    if len(chosen) >= room:
                        break
                if len(chosen) >= room:
                    break
        for record in chosen:
            record.sentinel = True
        plan.sentinels = chosen

    # -- re-planning in place --

    def _update(self, plan: Plan, inventory: Inventory, errors: tuple[DeclaredError, ...], nb: NbSnapshot | None,
                ovs: OvsSnapshot | None, unplaced: tuple, declared: list[Finding], memo: MatchMemo | None) -> Plan:
        change = PlanChange()
        local: dict[str, bool] = {}
        for network in plan.networks:
            self._update_network(network, inventory, nb, ovs, local, plan.by_id, change, declared, memo)
        by_id = plan.by_id
        for record in change.removed:
            if by_id.get(record.id) is record:
                del by_id[record.id]
        for record in change.added:
            by_id[record.id] = record
        plan.denied_probed += (_denied(change.added) - _denied(change.removed))
        all_before = plan.candidates <= self.max_sentinels
        plan.candidates += _candidates(change.added) - _candidates(change.removed)
        before = plan.sentinels
        if all_before and plan.candidates <= self.max_sentinels:  # every candidate is a sentinel, before and now
            dropped = {id(r) for r in change.removed}
            plan.sentinels = [r for r in before if id(r) not in dropped] + \
                [r for r in change.added if r.probed and r.cell.expected.verdict is Verdict.ALLOWED]
            for record in plan.sentinels:
                record.sentinel = True
        else:
            self._mark_sentinels(plan)
        was, now, built = ({id(r) for r in rs} for rs in (before, plan.sentinels, change.added))
        change.resentineled = [r for r in before if id(r) not in now and by_id.get(r.id) is r] + \
                              [r for r in plan.sentinels if id(r) not in was and id(r) not in built]
        plan.errors, plan.unplaced, plan.change, plan.built = errors, unplaced, change, len(change.added)
        return plan

    def _update_network(self, network: NetworkPlan, inventory: Inventory, nb: NbSnapshot | None,
                        ovs: OvsSnapshot | None, local: dict[str, bool], by_id: dict[CellId, CellRecord],
                        change: PlanChange, declared: list[Finding], memo: MatchMemo | None) -> None:
        previous, old_blocks, old_pieces = network.members, network.blocks, network.pieces
        checker, findings, mapping, members = self._prepare(inventory, network.checker.network, nb, ovs, local,
                                                            declared, reuse=network.checker, memo=memo)
        network.checker, network.findings, network.mapping = checker, findings, mapping
        network.members, network.pieces = members, {}
        groups: dict[tuple[object, ...], _Group] = {}
        changed_keys: list[str] = [k for k in previous if k not in members]  # gone
        reorder = False
        for key, (endpoint, here, new) in members.items():
            before = previous.get(key)
            if before is None or before[1] != here or before[0] != endpoint:
                # Local or not decides where the pair sits in plan order, too.
                reorder |= before is not None and before[1] != here
                gkey: tuple[object, ...] = ("changed", key)
                old: int | None = None
                if before is not None:
                    changed_keys.append(key)
            else:
                old = before[2]
                gkey = (old, new, here)
            group = groups.get(gkey)
            if group is None:
                group = groups[gkey] = _Group(old, new, here, endpoint)
            group.members.append(endpoint)
        rebuilt: set[PairKey] = set()
        same: dict[tuple[int, int, int, int], bool] = {}
        here_groups = [g for g in groups.values() if g.local]
        there_groups = [g for g in groups.values() if not g.local]
        for a, b in [(a, b) for a in here_groups for b in groups.values()] + \
                    [(a, b) for b in here_groups for a in there_groups]:
            if not (a.workload or b.workload):
                continue
            if a is b and len(a.members) < 2:
                continue  # a pair needs two endpoints
            src, dst = a.members[0], (b.members[1] if a is b else b.members[0])
            pieces = self._pieces(network, src, dst)
            if a.old is not None and b.old is not None:
                change.compared += 1
                key = (a.old, b.old, a.new, b.new)
                unchanged = same.get(key)
                if unchanged is None:
                    unchanged = same[key] = old_pieces.get((a.old, b.old)) == pieces
                if unchanged:
                    continue
            for s in a.members:
                for d in b.members:
                    if s is d:
                        continue
                    pk = (s.key, d.key)
                    block = self._block(network, s, d, self._pieces(network, s, d), by_id, local)
                    stale = network.replace_block(pk, block)
                    if stale is not None:
                        change.removed += stale.records
                    else:
                        reorder = True  # a pair not planned before: it went to the end
                    change.added += block.records
                    rebuilt.add(pk)
        # Pairs of endpoints that are gone or changed and are no longer planned (many such endpoints: one scan of
        # the blocks rather than a look-up per pair).
        gone = set(changed_keys)
        if 2 * len(gone) * len(previous) > len(old_blocks):
            candidates = [pk for pk in old_blocks if pk[0] in gone or pk[1] in gone]
        else:
            candidates = [pk for key in gone for other in previous for pk in ((key, other), (other, key))]
        for pk in candidates:
            if pk not in rebuilt:
                stale = network.remove_block(pk)
                if stale is not None:
                    change.removed += stale.records
        common_before = [k for k in previous if k in members]
        if reorder or common_before != [k for k in members if k in previous]:
            order = pair_order(checker.expected.endpoints, local)
            network.reordered({(s.key, d.key): old_blocks[(s.key, d.key)] for s, d in order})


def _denied(records: Iterable[CellRecord]) -> int:
    return sum(1 for r in records if r.probed and r.cell.expected.verdict is Verdict.DENIED)


def _candidates(records: Iterable[CellRecord]) -> int:
    """Records that may be sentinels: probed, expected allowed."""
    return sum(1 for r in records if r.probed and r.cell.expected.verdict is Verdict.ALLOWED)
