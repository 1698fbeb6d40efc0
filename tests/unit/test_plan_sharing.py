"""Sharing work between pairs that neither plane can tell apart must not change a single cell."""

from __future__ import annotations

from segcheck.agent.core.ovnk import names as ovnk_names
from segcheck.agent.core.drift import check_points
from segcheck.agent.core.model import Ref
from segcheck.agent.core.ovnk.desired import desired_state
from segcheck.agent.runtime.checker import Checker
from tests.builders import endpoints, inventory, mnp, nad, namespace, pod
from tests.nb_builders import Nb, from_desired

NET = Ref("default", "tenantblue")


def world():
    pods = [pod(f"p{i}", f"192.168.200.{10 + i}", labels={"app": "web" if i % 2 else "api"}) for i in range(12)]
    policies = [
        mnp("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        mnp("web-in", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                                    "ports": [{"protocol": "TCP", "port": 8080}]}]}),
        mnp("api-out", {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Egress"],
                        "egress": [{"to": [{"ipBlock": {"cidr": "192.168.200.0/24", "except": ["192.168.200.16/30"]}}],
                                    "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 5432}]}]}),
    ]
    ext = endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"],
                     "ports": [{"port": 5432}]})
    return inventory(nad(subnets="192.168.200.0/24"), namespace("default"), *pods, *policies, ext)


def test_shared_plan_equals_pair_by_pair():
    inv = world()
    lsps = {f"default/p{i}": ovnk_names.pod_port(NET, Ref("default", f"p{i}")) for i in range(12)}
    base = Nb(ports={})
    base.port(ovnk_names.localnet_port("tenantblue"), "unknown", type="localnet")
    for i in range(12):
        base.port(lsps[f"default/p{i}"], f"0a:58:c0:a8:c8:{10 + i:02x} 192.168.200.{10 + i}")
    nb = from_desired(desired_state(inv, NET, lsps), base)
    checker = Checker(inv, NET, nb)
    shared = checker.plan()
    alone = [cell for s in checker.expected.endpoints for d in checker.expected.endpoints
             if s.key != d.key and (not s.key.startswith("ext:") or not d.key.startswith("ext:"))
             for cell in check_points(checker.expected, checker.programmed, s, d)]
    assert shared == alone
    assert any(c.programmed.verdict.value == "allowed" for c in shared)
    assert any(c.programmed.verdict.value == "denied" for c in shared)
    signatures = {checker.programmed.signature(e) for e in checker.expected.endpoints}
    assert 1 < len(signatures) < len(checker.expected.endpoints)  # some sharing, not everything alike
