"""Property test of `diff`: on random pairs of worlds, every port of every pair is reported exactly as judging it
on each side says: a verdict change is listed with its kind (and only then), with the exact rules that decide
each of its ports before and after."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from segcheck.agent.core.diff import VERDICT_CHANGES, change_kind
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Protocol, Ref
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.runtime.diff import diff_states
from tests.unit.test_properties import NAMESPACES, PORTS, build_world, labels, policy

NET = Ref("default", "tenantblue")
world = st.tuples(
    st.lists(st.tuples(st.sampled_from(NAMESPACES), labels, st.integers(6, 60)), min_size=1, max_size=5,
             unique_by=lambda t: t[2]),
    st.lists(policy, max_size=4))


def _same(a, b):
    return (a is None and b is None) or (a is not None and b is not None and a.verdict is b.verdict
                                         and a.because == b.because)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=world, head=world, ipam=st.booleans(), profile=st.sampled_from(sorted(PROFILES)),
       ports=st.lists(st.sampled_from(PORTS + [1, 65535, 8001, 8100, 8101]), min_size=1, max_size=4),
       proto=st.sampled_from(list(Protocol)))
def test_every_port_is_reported_as_judging_it_says(base, head, ipam, profile, ports, proto):
    old_inv, new_inv = build_world(*base, ipam), build_world(*head, ipam)
    prof = PROFILES[profile]
    old, new = (NetworkReachability(inv, NET, profile=prof) for inv in (old_inv, new_inv))
    report = diff_states(old_inv, new_inv, prof, network=NET)
    (net,) = report.networks
    by_pair: dict = {}
    for c in net.diff.changes:
        by_pair.setdefault((c.source, c.destination, c.protocol), []).append(c)
    sides = [{e.key: e for e in m.endpoints} for m in (old, new)]
    keys = set(sides[0]) | set(sides[1])
    for src in keys:
        for dst in keys:
            if src == dst or (src.startswith("ext:") and dst.startswith("ext:")):
                continue
            for port in ports:
                judged = [m.judge(eps[src], eps[dst], port, proto) if src in eps and dst in eps else None
                          for m, eps in zip((old, new), sides)]
                kind = change_kind(*judged)
                hits = [c for c in by_pair.get((src, dst, proto), []) if port in c.ports]
                assert len(hits) <= 1, hits
                if kind in VERDICT_CHANGES:
                    assert hits and hits[0].kind is kind, (src, dst, port, proto, judged)
                elif kind is None:
                    assert not hits, (src, dst, port, proto, hits)
                if hits and hits[0].kind in VERDICT_CHANGES:  # a verdict change is listed exactly, port by port
                    assert _same(hits[0].before, judged[0]) and _same(hits[0].after, judged[1]), (src, dst, port)
                elif hits:  # a re-attribution: the same verdict on each side
                    assert hits[0].before.verdict is judged[0].verdict and hits[0].after.verdict is judged[1].verdict
