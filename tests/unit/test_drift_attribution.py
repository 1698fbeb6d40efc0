"""Which policy and which pair a drift is about, and how the agent exposes it: per-policy drift cells, the
count of drifting pairs, and the worst pairs as an info metric capped at `max_drift_pairs`."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from segcheck.agent.adapters.metrics import DEFAULT_MAX_DRIFT_PAIRS, exposition, registry_for
from segcheck.agent.core.drift import CheckedCell, DriftClass, check_points
from segcheck.agent.core.drift_attribution import NO_POLICY, deciding_policies, drifting_pairs, policy_drift
from segcheck.agent.core.model import Judgement, PortRange, Protocol, Reason, Ref, Verdict
from segcheck.agent.core.programmed import ProgrammedPlane
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.core.state import PROBE_BUCKETS, ROUND_BUCKETS, AgentState, Histogram, NetworkState

from tests.deploy.contract import METRICS
from tests.nb_builders import NET_REF, NETWORK, seed_inventory, seed_nb

LEAK, BLACKHOLE, CONTROLLER, UNKNOWN = DriftClass.LEAK, DriftClass.BLACKHOLE, DriftClass.CONTROLLER, DriftClass.UNKNOWN
POD, VM, DB = "default/podclient", "default/vm-server", "ext:db"
DENY, ALLOW_DB = "default/default-deny", "default/allow-db-egress"


@pytest.fixture(scope="module")
def widened() -> list[CheckedCell]:
    """podclient -> db on the seed, with OVN's DB ACL widened to 5432-5440: 5433-5440 leaks."""
    inv = seed_inventory()
    expected = NetworkReachability(inv, NET_REF)
    eps = {e.key: e for e in expected.endpoints}
    nb = seed_nb()
    acls = {u: replace(a, match=a.match.replace("tcp.dst==5432", "5432<=tcp.dst<=5440")) for u, a in nb.acls.items()}
    return check_points(expected, ProgrammedPlane(replace(nb, acls=acls), NETWORK), eps[POD], eps[DB])


def cell(source: str, destination: str, port: int, drift: tuple[DriftClass, ...], *refs: str,
         network: str = str(NET_REF)) -> CheckedCell:
    verdict = Verdict.DENIED if LEAK in drift else Verdict.ALLOWED
    return CheckedCell(network, source, destination, Protocol.TCP, PortRange(Protocol.TCP, port, port), port,
                       Judgement(verdict, tuple(Reason(r) for r in refs)), None, None, drift)


def test_a_leak_is_attributed_to_the_policies_that_isolate_the_denying_side(widened):
    [leaking] = [c for c in widened if c.drift]
    assert (leaking.ports.first, leaking.ports.last, leaking.drift) == (5433, 5440, (LEAK, CONTROLLER))
    assert deciding_policies(leaking) == (ALLOW_DB, DENY)
    assert policy_drift(widened) == {(ALLOW_DB, LEAK): 1, (ALLOW_DB, CONTROLLER): 1, (DENY, LEAK): 1,
                                     (DENY, CONTROLLER): 1}


def test_a_blackhole_is_attributed_to_the_allowing_rule_and_unisolated_cells_to_no_policy():
    blocked = cell(VM, DB, 5432, (BLACKHOLE,), f"{ALLOW_DB}:egress[0]", "destination:ingress-not-isolated")
    assert deciding_policies(blocked) == (ALLOW_DB,)
    open_ = cell(VM, POD, 80, (BLACKHOLE,), "source:egress-not-isolated", "destination:ingress-not-isolated")
    assert deciding_policies(open_) == (NO_POLICY,)
    assert policy_drift([blocked, open_, cell(POD, VM, 1, (), f"{DENY}:egress")]) == {
        (ALLOW_DB, BLACKHOLE): 1, (NO_POLICY, BLACKHOLE): 1}


def test_pairs_rank_by_worst_class_then_number_of_drifting_cells_then_name():
    cells = [
        cell("default/a", DB, 10, (UNKNOWN,), f"{DENY}:egress"),
        cell("default/a", DB, 11, (UNKNOWN,), f"{DENY}:egress"),
        cell("default/b", DB, 5432, (BLACKHOLE, CONTROLLER), f"{ALLOW_DB}:egress[0]"),
        cell("default/c", DB, 22, (CONTROLLER,), f"{DENY}:egress"),
        cell("default/c", DB, 23, (LEAK, CONTROLLER), f"{DENY}:egress"),
        cell("default/d", DB, 22, (LEAK,), f"{DENY}:egress"),
        cell("default/e", DB, 1, (), f"{DENY}:egress"),
    ]
    ranked = drifting_pairs(cells)
    assert [(p.source, p.worst, p.cells, p.port, p.policies) for p in ranked] == [
        ("default/c", LEAK, 2, "23/TCP", (DENY,)),
        ("default/d", LEAK, 1, "22/TCP", (DENY,)),
        ("default/b", BLACKHOLE, 1, "5432/TCP", (ALLOW_DB,)),
        ("default/a", UNKNOWN, 2, "10/TCP", (DENY,)),
    ]


def test_the_same_pair_on_two_networks_is_two_pairs():
    cells = [cell(POD, DB, 22, (LEAK,), f"{DENY}:egress", network=n) for n in ("default/blue", "default/red")]
    assert [p.network for p in drifting_pairs(cells)] == ["default/blue", "default/red"]


def state_of(cells: list[CheckedCell]) -> AgentState:
    return AgentState(node="n1", profile="4.14", version="dev", evaluated_at=0.0,
                      networks=(NetworkState(Ref("default", "tenantblue"), tuple(cells), (), None),), sources=(),
                      probes_by_result={}, probe_durations=Histogram(PROBE_BUCKETS),
                      round_durations=Histogram(ROUND_BUCKETS), rounds=0, last_drift_change=0.0)


def samples(state: AgentState, **kwargs: int) -> dict[str, list[dict[str, str]]]:
    text = exposition(registry_for(lambda: state, **kwargs)).decode()
    out: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append({**sample.labels, "value": str(sample.value)})
    return out


def leaking_pairs(n: int) -> list[CheckedCell]:
    return [cell(f"default/w{i:03d}", DB, 22, (LEAK,), f"{DENY}:egress") for i in range(n)]


def test_metrics_cap_the_pairs_and_count_them_all():
    got = samples(state_of(leaking_pairs(DEFAULT_MAX_DRIFT_PAIRS + 5)))
    assert len(got["segcheck_drift_pair_info"]) == DEFAULT_MAX_DRIFT_PAIRS == 20
    assert got["segcheck_drift_pairs"] == [{"network": "default/tenantblue", "value": "25.0"}]
    assert got["segcheck_drift_pair_info"][0] == {
        "network": "default/tenantblue", "source": "default/w000", "destination": DB, "class": "leak",
        "policy": DENY, "port": "22/TCP", "value": "1.0"}
    assert got["segcheck_policy_drift_cells"] == [
        {"network": "default/tenantblue", "policy": DENY, "class": "leak", "value": "25.0"}]
    assert len(samples(state_of(leaking_pairs(30)), max_drift_pairs=3)["segcheck_drift_pair_info"]) == 3


def test_no_drift_means_no_pair_or_policy_series_and_a_zero_count():
    got = samples(state_of([cell(POD, DB, 5432, (), f"{ALLOW_DB}:egress[0]")]))
    assert "segcheck_drift_pair_info" not in got and "segcheck_policy_drift_cells" not in got
    assert got["segcheck_drift_pairs"] == [{"network": "default/tenantblue", "value": "0.0"}]


def test_the_agent_serves_the_metric_contract_the_deployment_relies_on():
    text = exposition(registry_for(lambda: state_of(leaking_pairs(2)))).decode()
    served = {f.name: (f.type, tuple(sorted({k for s in f.samples for k in s.labels if k != "le"})))
              for f in text_string_to_metric_families(text)}
    contract = {name.removesuffix("_total"): (kind, tuple(sorted(labels))) for name, (kind, labels) in METRICS.items()}
    # Families without samples in this state (no sources, no mapping) have no labels to compare.
    assert set(served) == set(contract)
    assert {n: v for n, v in served.items() if v[1]} == {n: contract[n] for n, v in served.items() if v[1]}
