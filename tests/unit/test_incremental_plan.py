"""A re-plan in place must equal a plan built from scratch, and rebuild only the pairs a change touches."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from segcheck.agent.core.enforcement import DEFAULT_PROFILE
from segcheck.agent.core.model import Endpoint, Judgement, Reason, Ref, Verdict, parse_ip
from segcheck.agent.core.northbound import NbSnapshot
from segcheck.agent.core.ovnk import names as ovnk_names
from segcheck.agent.core.ovnk.desired import desired_state
from segcheck.agent.core.probe import SendPoint
from segcheck.agent.runtime.cell_records import Observation, Plan
from segcheck.agent.runtime.planner import Planner
from tests.builders import endpoints, inventory, mnp, nad, namespace, pod
from tests.nb_builders import Nb, from_desired

NET = Ref("default", "tenantblue")
APPS = ("web", "api", "db")
PORTS = (22, 80, 443, 5432, 8080)


class SetLocator:
    """Claims the pods named in `names` run here."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        name = endpoint.key.rsplit("/", 1)[-1]
        return SendPoint("none", "none", parse_ip("127.0.0.1"), None) if name in self.names else None

    def why_not(self, endpoint: Endpoint) -> str | None:
        return None if self.send_point(endpoint) is not None else "elsewhere"


def _policy(app: str, port: int, direction: str, peer_app: str | None) -> dict[str, Any]:
    peer: dict[str, Any] = ({"podSelector": {"matchLabels": {"app": peer_app}}} if peer_app is not None
                            else {"ipBlock": {"cidr": "192.168.200.0/28"}})
    key, side = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": [direction],
            key: [{side: [peer], "ports": [{"protocol": "TCP", "port": port}]}]}


@dataclass
class World:
    """A small declared world that tests change step by step (and the NB that programs it, or a drifted one)."""

    pods: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (app, address suffix)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    team: str = "blue"  # the namespace's label (one policy selects peers by it)
    local: set[str] = field(default_factory=set)
    with_nb: bool = False
    dropped_acls: int = 0  # ACLs left out of NB (controller drift), counted from the first

    @classmethod
    def base(cls, with_nb: bool = False) -> "World":
        w = cls(with_nb=with_nb)
        for i in range(9):
            w.pods[f"p{i}"] = (APPS[i % 3], 10 + i)
        w.local = {"p0", "p1", "p4"}
        w.policies = {
            "deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            "db-out": {"podSelector": {}, "policyTypes": ["Egress"],
                       "egress": [{"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}],
                                   "ports": [{"protocol": "TCP", "port": 5432}]}]},
            "web-in": _policy("web", 8080, "Ingress", "api"),
            "api-out": _policy("api", 8080, "Egress", "web"),
            "team-in": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                                     "ports": [{"protocol": "TCP", "port": 5432}]}]},
        }
        return w

    def inventory(self):
        pods = [pod(n, f"192.168.200.{ip}", labels={"app": app}) for n, (app, ip) in self.pods.items()]
        ext = endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"],
                         "ports": [{"port": 5432}]})
        return inventory(nad(subnets="192.168.200.0/24"), namespace("default", {"team": self.team}), *pods,
                         *(mnp(n, spec) for n, spec in self.policies.items()), ext)

    def nb(self, inv) -> NbSnapshot | None:
        if not self.with_nb:
            return None
        lsps = {f"default/{n}": ovnk_names.pod_port(NET, Ref("default", n)) for n in self.pods}
        base = Nb(ports={})
        base.port(ovnk_names.localnet_port("tenantblue"), "unknown", type="localnet")
        for n, (_, ip) in self.pods.items():
            base.port(lsps[f"default/{n}"], f"0a:58:c0:a8:c8:{ip:02x} 192.168.200.{ip}")
        nb = from_desired(desired_state(inv, NET, lsps), base)
        if self.dropped_acls:
            groups = dict(nb.port_groups)
            dropped = 0
            for name in sorted(groups):
                pg = groups[name]
                while pg.acls and dropped < self.dropped_acls:
                    pg = replace(pg, acls=pg.acls[1:])
                    dropped += 1
                groups[name] = pg
            nb = replace(nb, port_groups=groups)
        return nb


def planner(world: World, max_sentinels: int = 4) -> Planner:
    return Planner(None, SetLocator(world.local), "node-a", DEFAULT_PROFILE, only_local=True, probe_timeout=1.0,
                   probe_rate=100.0, max_sentinels=max_sentinels)


def plan(p: Planner, world: World, previous: Plan | None, incremental: bool = True) -> Plan:
    inv = world.inventory()
    return p.plan(inv, (), world.nb(inv), None, previous, incremental=incremental)


def snapshot(p: Plan) -> list[Any]:
    """Everything readers and the schedule see of a plan, in plan order."""
    out: list[Any] = [p.errors, p.unplaced, p.denied_probed, p.candidates, sorted(r.id for r in p.sentinels)]
    for net in p.networks:
        out.append((net.name, net.findings, net.mapping, net.cells()))
        out.append([(r.id, r.cell, r.probed, r.sentinel, r.observation, r.view) for r in net.records])
    out.append(sorted(p.by_id))
    return out


def observe_some(p: Plan, rng: random.Random, at: float) -> None:
    """Probe results land on some probed records (what the agent's batches do between re-plans)."""
    for record in p.by_id.values():
        if record.probed and rng.random() < 0.4:
            verdict = rng.choice([record.cell.expected.verdict, Verdict.ALLOWED, Verdict.DENIED, Verdict.UNKNOWN])
            record.observe(Observation(Judgement(verdict, (Reason("probe/test", "test"),)), at, record.planes))


# -- changes --

def flip_label(w: World, i: int) -> None:
    name = sorted(w.pods)[i % len(w.pods)]
    app, ip = w.pods[name]
    w.pods[name] = (APPS[(APPS.index(app) + 1) % 3], ip)


def add_pod(w: World, i: int) -> None:
    name = f"q{i}"
    if name not in w.pods:
        w.pods[name] = (APPS[i % 3], 100 + i)


def remove_pod(w: World, i: int) -> None:
    if len(w.pods) > 3:
        del w.pods[sorted(w.pods)[i % len(w.pods)]]


def edit_port(w: World, i: int) -> None:
    name = sorted(w.policies)[i % len(w.policies)]
    spec = w.policies[name]
    for key in ("ingress", "egress"):
        for rule in spec.get(key, []):
            for port in rule.get("ports", []):
                port["port"] = PORTS[(PORTS.index(port["port"]) + 1) % len(PORTS)] if port["port"] in PORTS else 22


def add_policy(w: World, i: int) -> None:
    w.policies[f"extra{i}"] = _policy(APPS[i % 3], PORTS[i % len(PORTS)], ["Ingress", "Egress"][i % 2],
                                      [None, "web", "db"][i % 3])


def remove_policy(w: World, i: int) -> None:
    if w.policies:
        del w.policies[sorted(w.policies)[i % len(w.policies)]]


def relabel_namespace(w: World, i: int) -> None:
    w.team = "red" if w.team == "blue" else "blue"


def toggle_local(w: World, i: int) -> None:
    name = sorted(w.pods)[i % len(w.pods)]
    w.local ^= {name}


def drop_acls(w: World, i: int) -> None:
    w.dropped_acls = (w.dropped_acls + 1 + i % 2) % 5


CHANGES = [flip_label, add_pod, remove_pod, edit_port, add_policy, remove_policy, relabel_namespace, toggle_local,
           drop_acls]


# SEGCHECK_PLAN_EXAMPLES: more examples for a local soak (e.g. 2000); the suite runs 40.
@settings(max_examples=int(os.environ.get("SEGCHECK_PLAN_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=[Phase.explicit, Phase.generate])
@given(with_nb=st.booleans(), seed=st.integers(0, 2**16), sentinels=st.sampled_from([0, 4, 1000]),
       steps=st.lists(st.tuples(st.sampled_from(CHANGES), st.integers(0, 50)), min_size=1, max_size=7))
def test_incremental_plan_equals_a_plan_from_scratch(with_nb, seed, sentinels, steps):
    """`sentinels`: none, fewer than the allowed cells (chosen in plan order), more (every allowed cell)."""
    rng = random.Random(seed)
    world = World.base(with_nb)
    p = planner(world, sentinels)
    current = plan(p, world, None)
    observe_some(current, rng, 1.0)
    for n, (change, arg) in enumerate(steps):
        change(world, arg)
        p.locator.names = world.local
        full = plan(p, world, current, incremental=False)  # reads `current`, leaves it as it was
        updated = plan(p, world, current)
        assert snapshot(updated) == snapshot(full), change.__name__
        for net in updated.networks:  # the sentinel walk skips chunks by these counts
            assert all(c.candidates == sum(len(b.candidates) for b in c.blocks if b is not None)
                       for c in net.chunks or ())
        current = updated
        observe_some(current, rng, 2.0 + n)


def test_an_address_conflict_appears_and_goes_with_the_re_plan():
    from segcheck.agent.core.findings import FindingKind

    world = World.base()
    p = planner(world)
    before = plan(p, world, None)
    assert not any(f.kind is FindingKind.ADDRESS_CONFLICT for f in before.declared)
    world.pods["p1"] = (world.pods["p1"][0], world.pods["p0"][1])  # p1 takes p0's address
    world.pods["p3"] = (world.pods["p3"][0], world.pods["p2"][1])  # p3 takes p2's
    after = plan(p, world, before)
    conflicts = [f.message for f in after.declared if f.kind is FindingKind.ADDRESS_CONFLICT]
    assert [m.split()[0] for m in conflicts] == ["192.168.200.10", "192.168.200.12"]  # in address order
    assert snapshot(after) == snapshot(plan(p, world, None, incremental=False))
    world.pods["p1"], world.pods["p3"] = ("api", 11), ("web", 13)
    assert not any(f.kind is FindingKind.ADDRESS_CONFLICT for f in plan(p, world, after).declared)


# -- what a change rebuilds --

def cells_by_pair(p: Plan) -> dict[tuple[str, str], list[Any]]:
    return {pk: [r.cell for r in block.records] for net in p.networks for pk, block in net.blocks.items()}


def rebuilt_pairs(p: Plan) -> set[tuple[str, str]]:
    assert p.change is not None, "re-planned from scratch"
    return {(r.cell.source, r.cell.destination) for r in p.change.added}


def check_only_touched(change, with_nb: bool = False, *, own: str | None = None) -> Plan:
    """Re-plans after `change`; the pairs rebuilt must be exactly those whose cells changed (plus, with `own`,
    every pair of the endpoint that changed itself), and the plan's `built` counts their cells."""
    world = World.base(with_nb)
    p = planner(world)
    before = plan(p, world, None)
    old_cells = cells_by_pair(before)
    change(world)
    new_cells = cells_by_pair(plan(p, world, None))
    updated = plan(p, world, before)
    differ = {pk for pk, cells in new_cells.items() if old_cells.get(pk) != cells}
    if own is not None:
        differ |= {pk for pk in new_cells if own in pk}
    assert differ, "the change touched nothing: the test proves nothing"
    assert len(differ) < len(new_cells)
    assert rebuilt_pairs(updated) == differ
    assert updated.built == sum(len(new_cells[pk]) for pk in differ)
    return updated


def test_editing_a_policy_port_rebuilds_only_the_pairs_it_opens():
    def change(w: World) -> None:
        w.policies["web-in"] = _policy("web", 443, "Ingress", "api")
        w.policies["api-out"] = _policy("api", 443, "Egress", "web")
    updated = check_only_touched(change)
    assert all(s.endswith(("p1", "p4", "p7")) or d.endswith(("p1", "p4", "p7")) for s, d in rebuilt_pairs(updated))


def test_adding_and_removing_a_policy_rebuild_only_what_it_selects():
    check_only_touched(lambda w: w.policies.update({"web-ssh": _policy("web", 22, "Ingress", None)}))
    check_only_touched(lambda w: w.policies.pop("team-in"))


def test_a_label_flip_rebuilds_the_pairs_of_that_pod_only():
    def change(w: World) -> None:
        w.pods["p5"] = ("web", w.pods["p5"][1])  # p5: db -> web, not local
    updated = check_only_touched(change, own="default/p5")
    assert all("default/p5" in pk for pk in rebuilt_pairs(updated))


def test_adding_and_removing_a_pod():
    updated = check_only_touched(lambda w: w.pods.update({"q1": ("api", 99)}), own="default/q1")
    assert all("default/q1" in pk for pk in rebuilt_pairs(updated))
    world = World.base()
    p = planner(world)
    before = plan(p, world, None)
    total = len(before.by_id)
    gone = {r.id for r in before.by_id.values() if "default/p3" in (r.cell.source, r.cell.destination)}
    del world.pods["p3"]
    updated = plan(p, world, before)
    assert updated.built == 0 and {r.id for r in updated.change.removed} == gone
    assert len(updated.by_id) == total - len(gone)


def test_an_acl_removed_from_nb_rebuilds_only_the_pairs_it_decided():
    updated = check_only_touched(lambda w: setattr(w, "dropped_acls", 1), with_nb=True)
    assert updated.built > 0


def test_an_nb_change_alone_reuses_the_expected_plane_and_equals_a_plan_from_scratch():
    world = World.base(with_nb=True)
    p = planner(world)
    inv = world.inventory()
    before = p.plan(inv, (), world.nb(inv), None, None)
    expected = before.networks[0].checker.expected
    world.dropped_acls = 2
    nb = world.nb(inv)
    full = p.plan(inv, (), nb, None, before, incremental=False)
    updated = p.plan(inv, (), nb, None, before)
    assert snapshot(updated) == snapshot(full)
    assert updated.networks[0].checker.expected is expected  # the same inventory: classes not computed again
    assert 0 < updated.built < len(updated.by_id)


def test_an_unchanged_world_rebuilds_nothing_and_keeps_every_record():
    world = World.base(with_nb=True)
    p = planner(world)
    before = plan(p, world, None)
    records = {id(r) for r in before.by_id.values()}
    updated = plan(p, world, before)
    assert updated is before and updated.built == 0 and not updated.change.removed
    assert {id(r) for r in updated.by_id.values()} == records


def test_a_network_change_plans_from_scratch():
    world = World.base()
    p = planner(world)
    before = plan(p, world, None)
    inv = world.inventory()
    net = inv.networks[NET]
    inv.networks[NET] = replace(net, mtu=1400)
    after = p.plan(inv, (), None, None, before)
    assert after is not before and after.change is None and after.built == len(after.by_id)


# -- the agent on top --

def test_the_agent_keeps_untouched_schedule_entries_and_probes_what_a_change_rebuilt():
    from segcheck.agent.adapters.probers.simulated import SimulatedProber
    from segcheck.agent.runtime.agent import Agent
    from tests.memory_declared import StaticDeclared

    world = World.base()
    now = [1000.0]
    prober = SimulatedProber(lambda job: Verdict.ALLOWED if job.dst_port in (5432, 8080) else Verdict.DENIED)
    source = StaticDeclared(world.inventory())
    agent = Agent(source, None, None, prober, SetLocator(world.local), "node-a", interval=30.0, jitter=0.0,
                  clock=lambda: now[0], sentinel_interval=1.0, max_sentinels=4)
    agent.step()  # plans and probes every local TCP cell once
    before = agent.plan
    assert before is not None and all(r.observation is not None for r in before.by_id.values() if r.probed)
    tickets = {r.id: r.ticket for r in before.by_id.values() if r.probed}
    world.policies["web-in"] = _policy("web", 443, "Ingress", "api")
    world.policies["api-out"] = _policy("api", 443, "Egress", "web")
    source.set(world.inventory())
    planes = {r.id: r.planes for r in before.by_id.values()}
    sent = sum(len(run) for run in prober.runs)
    now[0] += 0.5  # nothing is due yet
    state = agent.step()
    plan = agent.plan
    assert plan is before and plan.change is not None and 0 < plan.built < len(plan.by_id)
    rebuilt = {r.id for r in plan.change.added}
    kept = [r for r in plan.by_id.values() if r.probed and r.id not in rebuilt and r not in plan.change.resentineled]
    assert kept and all(r.ticket == tickets[r.id] for r in kept)  # the same schedule entry, not a new one
    # Only rebuilt cells whose planes changed lost their observation: exactly those were probed again.
    fresh = [r for r in plan.change.added if r.probed and planes.get(r.id) != r.planes]
    assert fresh and all(r.observation is not None and r.observation.at == now[0] for r in fresh)
    assert sum(len(run) for run in prober.runs) - sent == len(fresh)
    published = {(c.source, c.destination, c.ports.first, c.protocol): c for n in state.networks for c in n.cells}
    assert len(published) == len(plan.by_id)
    full = planner(world).plan(world.inventory(), (), None, None, None)
    assert [c.expected for n in full.networks for c in n.cells()] == \
        [c.expected for n in state.networks for c in n.cells]
