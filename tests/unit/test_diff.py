"""`segcheck diff` truth tables: two declared states -> the cells a change opens, closes or re-attributes.

Each table is written as the exact set of changes expected (kind, pair, ports, rules after); everything else
must be unchanged."""

from __future__ import annotations

import pytest

from segcheck.agent.core.diff import ChangeKind, compare
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Ref
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.runtime.checks import UsageError
from segcheck.agent.runtime.diff import DiffReport, FailOnChange, diff_states
from segcheck.agent.runtime.status import Status
from tests.builders import endpoints, inventory, mnp, nad, pod

P414, PCURRENT = PROFILES["4.14"], PROFILES["current"]
BLUE, RED = Ref("default", "tenantblue"), Ref("default", "tenantred")
OPENED, CLOSED, RE = ChangeKind.OPENED, ChangeKind.CLOSED, ChangeKind.REATTRIBUTED

DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
DB = endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"],
                "ports": [{"port": 5432, "protocol": "TCP"}]})


def db_egress(port: int = 5432, end_port: int | None = None, network: str = "tenantblue") -> dict:
    spec = {"protocol": "TCP", "port": port, **({"endPort": end_port} if end_port else {})}
    return {"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}], "ports": [spec]}]}


def world(*policies: dict, extra: tuple[dict, ...] = ()) -> list[dict]:
    return [nad(), pod("client", "192.168.200.10"), pod("server", "192.168.200.20"), DB,
            mnp("default-deny", DENY_ALL), *policies, *extra]


def changes(report: DiffReport, *kinds: ChangeKind) -> set[tuple]:
    """(kind, from, to, ports, rules after) of every change of the given kinds (default: verdict changes)."""
    want = kinds or (OPENED, CLOSED, ChangeKind.UNKNOWN)
    return {(c.kind, str(n.diff.network), c.source, c.destination, str(c.ports),
             tuple(c.after.because) if c.after else None)
            for n in report.networks for c in n.diff.changes if c.kind in want}


def diff(base: list[dict], head: list[dict], profile=P414, **kw) -> DiffReport:
    return diff_states(inventory(*base), inventory(*head), profile, **kw)


def test_an_added_rule_opens_exactly_its_cells_and_fails():
    report = diff(world(), world(mnp("db", db_egress())))
    assert changes(report) == {
        (OPENED, "default/tenantblue", "default/client", "ext:db", "5432/TCP", ("default/db:egress[0]",)),
        (OPENED, "default/tenantblue", "default/server", "ext:db", "5432/TCP", ("default/db:egress[0]",)),
    }
    opened = report.networks[0].diff.of(OPENED)[0]
    assert opened.before is not None and opened.before.verdict.value == "denied"
    assert report.status is Status.DRIFT


def test_a_removed_rule_closes_its_cells_and_passes_unless_asked():
    base, head = world(mnp("db", db_egress())), world()
    report = diff(base, head)
    assert changes(report) == {
        (CLOSED, "default/tenantblue", "default/client", "ext:db", "5432/TCP", ("default/default-deny:egress",)),
        (CLOSED, "default/tenantblue", "default/server", "ext:db", "5432/TCP", ("default/default-deny:egress",)),
    }
    closed = report.networks[0].diff.of(CLOSED)[0]
    assert closed.before is not None and closed.before.because == ["default/db:egress[0]"]
    assert report.status is Status.MATCH
    assert diff(base, head, fail_on=FailOnChange.CHANGED).status is Status.DRIFT
    assert diff(world(), world(mnp("db", db_egress())), fail_on=FailOnChange.NEVER).status is Status.MATCH


def test_an_identical_state_changes_nothing_and_counts_every_cell():
    state = world(mnp("db", db_egress()))
    report = diff(state, state)
    net = report.networks[0].diff
    assert net.changes == [] and net.added == [] and net.removed == []
    matrix = NetworkReachability(inventory(*state), BLUE, profile=P414)
    assert net.unchanged == len(list(matrix.cells())) > 0
    assert report.status is Status.MATCH


def test_a_renamed_policy_changes_no_verdict_but_shows_its_new_name():
    report = diff(world(mnp("db", db_egress())), world(mnp("allow-postgres", db_egress())))
    assert changes(report) == set()
    assert report.status is Status.MATCH
    moved = {(c.source, c.destination, str(c.ports)): (c.before.because, c.after.because)
             for c in report.networks[0].diff.of(RE)}
    assert moved[("default/client", "ext:db", "5432/TCP")] == (["default/db:egress[0]"],
                                                              ["default/allow-postgres:egress[0]"])


def test_policy_for_moved_to_another_network_closes_there_and_opens_here():
    def state(target: str) -> list[dict]:
        red = endpoints({"name": "db-red", "network": "default/tenantred", "ips": ["192.168.200.5"]})
        red["metadata"]["name"] = "ext-red"
        return [nad(), nad("tenantred"), pod("client", "192.168.200.10"),
                pod("red-client", "192.168.200.10", network="tenantred"), DB, red,
                mnp("deny-blue", DENY_ALL), mnp("deny-red", DENY_ALL, policy_for="tenantred"),
                mnp("db", db_egress(), policy_for=target)]

    report = diff(state("tenantblue"), state("tenantred"))
    assert changes(report) == {
        (CLOSED, "default/tenantblue", "default/client", "ext:db", "5432/TCP", ("default/deny-blue:egress",)),
        (OPENED, "default/tenantred", "default/red-client", "ext:db-red", "5432/TCP", ("default/db:egress[0]",)),
    }


def test_a_widened_port_range_opens_only_the_new_ports_where_endport_is_honoured():
    base, head = world(mnp("db", db_egress())), world(mnp("db", db_egress(5432, 5440)))
    assert changes(diff(base, head, PCURRENT)) == {
        (OPENED, "default/tenantblue", src, "ext:db", "5433-5440/TCP", ("default/db:egress[0]",))
        for src in ("default/client", "default/server")}
    # OpenShift 4.14 drops endPort: the same edit changes nothing there (the finding says so).
    report = diff(base, head, P414)
    assert changes(report) == set()
    assert [f.kind.value for f in report.networks[0].new_findings] == ["end-port-ignored"]


def test_ranges_cut_differently_on_each_side_compare_on_the_union_of_cuts():
    base = world(mnp("a", db_egress(5000, 5500)))
    head = world(mnp("b", db_egress(5400, 6000)))
    got = changes(diff(base, head, PCURRENT), OPENED, CLOSED)
    for src in ("default/client", "default/server"):
        assert (CLOSED, "default/tenantblue", src, "ext:db", "5000-5399/TCP",
                ("default/b:egress", "default/default-deny:egress")) in got
        assert (OPENED, "default/tenantblue", src, "ext:db", "5501-6000/TCP", ("default/b:egress[0]",)) in got
    assert len(got) == 4
    kept = {str(c.ports): c.after.because for c in diff(base, head, PCURRENT).networks[0].diff.of(RE)
            if c.source == "default/client" and c.after.verdict.value == "allowed"}
    assert kept == {"5400-5500/TCP": ["default/b:egress[0]"]}  # still allowed, now by b


def test_an_opened_range_names_each_rule_where_the_rules_differ_inside_it():
    every_tcp = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"protocol": "TCP"}]}]}
    web = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"protocol": "TCP", "port": 80}]}]}
    report = diff(world(), world(mnp("tcp", every_tcp), mnp("web", web)))
    got = {(str(c.ports), tuple(c.after.because)) for c in report.networks[0].diff.of(OPENED)
           if (c.source, c.destination) == ("default/client", "ext:db")}
    assert got == {("1-79/TCP", ("default/tcp:egress[0]",)), ("80/TCP", ("default/tcp:egress[0]", "default/web:egress[0]")),
                   ("81-65535/TCP", ("default/tcp:egress[0]",))}


def test_a_new_workload_opens_what_it_may_reach_and_a_gone_one_closes_it():
    base = world(mnp("db", db_egress()))
    head = world(mnp("db", db_egress()), extra=(pod("newcomer", "192.168.200.30"),))
    report = diff(base, head)
    net = report.networks[0].diff
    assert net.added == ["default/newcomer"] and net.removed == []
    assert changes(report) == {
        (OPENED, "default/tenantblue", "default/newcomer", "ext:db", "5432/TCP", ("default/db:egress[0]",))}
    assert net.of(OPENED)[0].before is None
    back = diff(head, base)
    assert back.networks[0].diff.removed == ["default/newcomer"]
    assert changes(back) == {(CLOSED, "default/tenantblue", "default/newcomer", "ext:db", "5432/TCP", None)}


def test_an_unisolated_protocol_opening_is_reported_per_protocol():
    udp = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}]}
    got = changes(diff(world(), world(mnp("dns", udp))))
    assert ("default/client", "ext:db", "53/UDP") in {(s, d, p) for _, _, s, d, p, _ in got}
    assert all(p == "53/UDP" for *_, p, _ in got)


def test_a_network_only_in_one_state_is_all_opened_or_all_closed():
    base = [nad(), pod("client", "192.168.200.10"), DB]
    head = base + [nad("tenantred"), pod("red", "192.168.200.11", network="tenantred"),
                   pod("red2", "192.168.200.12", network="tenantred")]
    report = diff(base, head)
    red = next(n.diff for n in report.networks if n.diff.network == RED)
    assert (red.in_before, red.in_after) == (False, True)
    assert {(c.source, c.destination) for c in red.of(OPENED)} == {("default/red", "default/red2"),
                                                                   ("default/red2", "default/red")}


def test_unknown_filters_are_usage_errors():
    state = world()
    with pytest.raises(UsageError):
        diff(state, state, network=Ref("default", "nosuch"))
    with pytest.raises(UsageError):
        diff(state, state, namespace="nosuch")


def test_compare_without_either_state_is_empty():
    assert compare(BLUE, None, None).changes == []


def test_change_kind_truth_table():
    from segcheck.agent.core.diff import change_kind
    from segcheck.agent.core.model import Judgement, Reason, Verdict

    def j(verdict: str, *rules: str) -> Judgement:
        return Judgement(Verdict(verdict), tuple(Reason(r, "wording is not part of the decision") for r in rules))

    table = {
        (None, j("allowed", "a")): OPENED, (j("denied", "d"), j("allowed", "a")): OPENED,
        (j("allowed", "a"), j("denied", "d")): CLOSED, (j("allowed", "a"), None): CLOSED,
        (j("unknown", "u"), j("allowed", "a")): ChangeKind.UNKNOWN, (j("denied", "d"), j("unknown", "u")): ChangeKind.UNKNOWN,
        (j("allowed", "a"), j("allowed", "b")): RE, (j("denied", "d"), j("denied", "e")): RE,
        (None, j("denied", "d")): None, (j("denied", "d"), None): None, (None, None): None,
        (j("allowed", "a"), Judgement(Verdict.ALLOWED, (Reason("a", "other words"),))): None,
    }
    assert {k: change_kind(*k) for k in table} == table
