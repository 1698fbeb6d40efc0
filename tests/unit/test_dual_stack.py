"""Dual-stack and IPv6 through the declared and programmed planes.

OVN-Kubernetes builds every match per family (gress_policy.go): selector peers are one address set per family
of the network (`ip4.src == {$..v4} || ip6.src == {$..v6}`), an ipBlock matches only its own family
(`getMatchFromIPBlock`, whose unit test TestGetMatchFromIPBlock has the IPv6 and mixed cases), and a rule without
peers matches `allIPsMatch()` (`ip4` when the network has no subnets). So a dual-stack pair's IPv4 and IPv6
packets can get different verdicts: each is a cell of its own (`family`), judged at the first address of that
family, the one probes use. Single-stack networks are unchanged (no `family` anywhere).
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from segcheck.agent.core.drift import check_points
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Attachment, Protocol, Ref, Verdict
from segcheck.agent.core.ovn_match import Packet, Resolver, evaluate, parse_match
from segcheck.agent.core.ovnk.desired import desired_state
from segcheck.agent.core.programmed import ProgrammedPlane
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.core.render import matrix_json
from segcheck.cli.main import cli
from tests.builders import endpoints, inventory, mnp, nad, namespace, pod
from tests.nb_builders import from_desired
from tests.oracle import naive_verdict
from tests.unit.test_networks_by_name import dual_homed
from tests.unit.test_properties import LABEL_KEYS, LABEL_VALUES, NAMESPACES, PORTS, listed_verdict, port, selector
from tests.unit.test_upstream_shapes import VERSIONS, UpstreamNb

A, D = Verdict.ALLOWED, Verdict.DENIED
TCP = Protocol.TCP
NET = Ref("default", "tenantblue")
V4_SUBNET, V6_SUBNET = "192.168.200.0/24", "fd00:200::/64"


def v6(host: int) -> str:
    return f"fd00:200::{host:x}"


# ----------------------------------------------------------------------------- the evaluator against the oracle

labels = st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), max_size=2)
v4_block = st.builds(
    lambda base, length, ex: {"cidr": f"192.168.200.{base & ~((1 << (32 - length)) - 1)}/{length}",
                              **({"except": [f"192.168.200.{(base & ~((1 << (32 - length)) - 1)) + ex}/32"]}
                                 if ex is not None and length < 31 else {})},
    st.integers(0, 255), st.integers(24, 32), st.one_of(st.none(), st.integers(0, 3)))
v6_block = st.builds(
    lambda base, length, ex: {"cidr": f"{ipaddress.ip_network(f'{v6(base)}/{length}', strict=False)}",
                              **({"except": [f"{v6((base & ~((1 << (128 - length)) - 1)) + ex)}/128"]}
                                 if ex is not None and length < 127 else {})},
    st.integers(0, 255), st.integers(120, 128), st.one_of(st.none(), st.integers(0, 3)))
peer = st.one_of(
    st.builds(lambda s: {"podSelector": s}, selector),
    st.builds(lambda s: {"namespaceSelector": s}, selector),
    st.builds(lambda b: {"ipBlock": b}, v4_block),
    st.builds(lambda b: {"ipBlock": b}, v6_block),
)
rule = st.fixed_dictionaries({}, optional={"peers": st.lists(peer, max_size=2), "ports": st.lists(port, max_size=2)})
policy = st.fixed_dictionaries({
    "ns": st.sampled_from(NAMESPACES), "selector": selector,
    "types": st.lists(st.sampled_from(["Ingress", "Egress"]), unique=True, max_size=2),
    "ingress": st.lists(rule, max_size=2), "egress": st.lists(rule, max_size=2),
})
# Which addresses a pod has: one family, both, none, or two of one family (judged at the first).
STACKS = ["v4", "v6", "dual", "dual6first", "none", "v4v4"]


def _addresses(stack: str, host: int) -> list[str]:
    return {"v4": [f"192.168.200.{host}"], "v6": [v6(host)], "dual": [f"192.168.200.{host}", v6(host)],
            "dual6first": [v6(host), f"192.168.200.{host}"], "none": [],
            "v4v4": [f"192.168.200.{host}", f"192.168.200.{host + 100}"]}[stack]


def _rules(rules: list[dict], key: str) -> list[dict]:
    return [{**({key: r["peers"]} if "peers" in r else {}), **({"ports": r["ports"]} if "ports" in r else {})}
            for r in rules]


def dual_world(pods, policies, subnets, db_stack):
    objs = [nad(subnets=subnets), namespace("default", {"team": "a"}), namespace("other", {"team": "b"}),
            endpoints({"name": "db", "network": "default/tenantblue", "ips": _addresses(db_stack, 5)})]
    for i, (ns, lab, host, stack) in enumerate(pods):
        ips = _addresses(stack, host)
        objs.append(pod(f"p{i}", ips[0] if ips else None, namespace=ns, labels=lab, network="default/tenantblue",
                        more_ips=tuple(ips[1:])))
    for i, p in enumerate(policies):
        spec = {"podSelector": p["selector"], "ingress": _rules(p["ingress"], "from"),
                "egress": _rules(p["egress"], "to")}
        if p["types"]:
            spec["policyTypes"] = p["types"]
        objs.append(mnp(f"np{i}", spec, namespace=p["ns"]))
    return inventory(*objs)


SUBNETS = [None, V4_SUBNET, V6_SUBNET, f"{V4_SUBNET},{V6_SUBNET}"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(st.tuples(st.sampled_from(NAMESPACES), labels, st.integers(6, 60), st.sampled_from(STACKS)),
                     min_size=1, max_size=6, unique_by=lambda t: t[2]),
       policies=st.lists(policy, max_size=4), subnets=st.sampled_from(SUBNETS),
       db_stack=st.sampled_from(["v4", "v6", "dual"]), profile=st.sampled_from(sorted(PROFILES)),
       probe_ports=st.lists(st.sampled_from(PORTS + [1, 65535, 8001]), min_size=1, max_size=2),
       proto=st.sampled_from(list(Protocol)))
def test_every_family_of_every_pair_equals_the_oracle(pods, policies, subnets, db_stack, profile, probe_ports, proto):
    inv = dual_world(pods, policies, subnets, db_stack)
    prof = PROFILES[profile]
    m = NetworkReachability(inv, NET, profile=prof)
    seen = {ip.version for e in m.endpoints for ip in e.ips}
    assert m.dual_stack == ({4, 6} <= seen | ({4} if subnets and "." in subnets else set())
                            | ({6} if subnets and ":" in subnets else set()))
    for src in m.endpoints:
        for dst in m.endpoints:
            if src.key == dst.key:
                continue
            families = m.pair_families(m.class_index[src.key], m.class_index[dst.key])
            common = {ip.version for ip in src.ips} & {ip.version for ip in dst.ips}
            assert families == ((tuple(sorted(common)) or (None,)) if m.dual_stack else (None,))
            cells = m.pair_cells(src, dst) if isinstance(src, Attachment) or isinstance(dst, Attachment) else []
            assert {c.family for c in cells} <= set(families)
            for family in families:
                mine = [c for c in cells if c.family == family]
                for p in probe_ports:
                    want = naive_verdict(inv, NET, src, dst, p, proto, end_port=prof.end_port_supported,
                                         named_widen=prof.named_ports_widen, api_versions=prof.served_api_versions,
                                         family=family)
                    got = m.judge(src, dst, p, proto, family)
                    assert got.verdict == want, (src.key, dst.key, family, p, proto)
                    if mine:
                        assert listed_verdict(mine, p, proto) == want


# ----------------------------------------------------------------------------- truth tables

def judged(m: NetworkReachability, src: str, dst: str, port: int, family: int | None) -> Verdict:
    eps = {e.key: e for e in m.endpoints}
    return m.judge(eps[src], eps[dst], port, TCP, family).verdict


def test_an_ipv4_ipblock_admits_a_dual_stack_clients_ipv4_packets_only() -> None:
    """The brief's example: ingress from ipBlock 192.168.200.0/24 (as upstream's "for a localnet topology when the
    multi-net policy describes the allow-list using IPBlock", on a dual-stack network): the client's IPv4 packets
    pass, its IPv6 ones meet the default deny."""
    inv = inventory(
        nad(subnets=f"{V4_SUBNET},{V6_SUBNET}"),
        pod("client", "192.168.200.10", labels={"app": "client"}, more_ips=(v6(10),)),
        pod("server", "192.168.200.20", labels={"app": "server"}, more_ips=(v6(20),)),
        mnp("allow-block", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                            "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.200.0/24"}}],
                                         "ports": [{"protocol": "TCP", "port": 9000}]}]}))
    m = NetworkReachability(inv, NET)
    assert m.dual_stack
    assert judged(m, "default/client", "default/server", 9000, 4) is A
    assert judged(m, "default/client", "default/server", 9000, 6) is D
    assert judged(m, "default/server", "default/client", 9000, 6) is A  # the client is not isolated
    for family in (4, 6):
        assert naive_verdict(inv, NET, *[e for e in m.endpoints if e.key in ("default/client",)],
                             next(e for e in m.endpoints if e.key == "default/server"), 9000, TCP,
                             family=family) is (A if family == 4 else D)
    doc = matrix_json(m, [], pairs=True)
    mine = [c for c in doc["cells"] if (c["from"], c["to"]) == ("default/client", "default/server")]
    assert {(c["family"], c["port"], c["expected"]) for c in mine} == {
        ("ipv4", None, "denied"), ("ipv4", 9000, "allowed"), ("ipv6", None, "denied")}
    grouped = matrix_json(m, [])
    assert all("family" in c for v in grouped["verdicts"] for c in v["cells"])


def test_selector_peers_admit_both_families_of_a_dual_stack_network() -> None:
    inv = inventory(
        nad(subnets=f"{V4_SUBNET},{V6_SUBNET}", topology="layer2"),
        pod("client", "192.168.200.10", labels={"app": "client"}, more_ips=(v6(10),)),
        pod("server", "192.168.200.20", labels={"app": "server"}, more_ips=(v6(20),)),
        pod("stranger", "192.168.200.30", labels={"app": "x"}, more_ips=(v6(30),)),
        mnp("allow-client", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}))
    m = NetworkReachability(inv, NET)
    for family in (4, 6):
        assert judged(m, "default/client", "default/server", 80, family) is A
        assert judged(m, "default/stranger", "default/server", 80, family) is D


def test_an_ipam_less_network_admits_ipv6_through_ipblocks_only() -> None:
    """A rule without peers is `ip4 && ...` on a network without subnets (allIPsMatch's default): it never admits
    IPv6 packets there, while an IPv6 ipBlock does (`ip6.src == fd00:200::/64`)."""
    inv = inventory(
        nad(),
        pod("client", "192.168.200.10", labels={"app": "client"}, more_ips=(v6(10),)),
        pod("server", "192.168.200.20", labels={"app": "server"}, more_ips=(v6(20),)),
        mnp("allow-all-in", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                             "ingress": [{"ports": [{"protocol": "TCP", "port": 80}]},
                                         {"from": [{"ipBlock": {"cidr": V6_SUBNET}}],
                                          "ports": [{"protocol": "TCP", "port": 443}]}]}))
    m = NetworkReachability(inv, NET)
    assert judged(m, "default/client", "default/server", 80, 4) is A
    assert judged(m, "default/client", "default/server", 80, 6) is D
    assert judged(m, "default/client", "default/server", 443, 6) is A
    assert judged(m, "default/client", "default/server", 443, 4) is D


def test_an_ipv6_only_network_works_as_ipv4_with_ip6() -> None:
    """IPv6-only (upstream's "... localnet ... with an IPv6 subnet" connectivity entries, and the seed's policies
    in IPv6): single-stack, so cells carry no family, and the ipBlock peers match the v6 addresses."""
    inv = inventory(
        nad(subnets=V6_SUBNET),
        pod("client", v6(10), labels={"app": "client"}),
        pod("server", v6(20), labels={"app": "server"}),
        endpoints({"name": "db", "network": "default/tenantblue", "ips": [v6(5)]}),
        mnp("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        mnp("allow-db", {"podSelector": {}, "policyTypes": ["Egress"],
                         "egress": [{"to": [{"ipBlock": {"cidr": f"{v6(5)}/128"}}],
                                     "ports": [{"protocol": "TCP", "port": 5432}]}]}))
    m = NetworkReachability(inv, NET)
    assert not m.dual_stack
    assert judged(m, "default/client", "ext:db", 5432, None) is A
    assert judged(m, "default/client", "ext:db", 5433, None) is D
    assert judged(m, "default/client", "default/server", 5432, None) is D
    assert all(c.family is None for c in m.cells())


def test_no_policy_dual_stack_pairs_pass_in_both_families() -> None:
    """Upstream "can communicate over a localnet secondary network with a dual stack configuration when pods are
    scheduled on different nodes" (multihoming.go): without policies both families pass."""
    inv = inventory(nad(subnets=f"{V4_SUBNET},{V6_SUBNET}"),
                    pod("a", "192.168.200.10", more_ips=(v6(10),)), pod("b", "192.168.200.20", more_ips=(v6(20),)))
    m = NetworkReachability(inv, NET)
    cells = m.pair_cells(*m.endpoints)
    assert [(c.family, c.ports, c.verdict) for c in cells] == [(4, None, A), (6, None, A)]


def test_a_single_stack_network_carries_no_family() -> None:
    inv = inventory(nad(), pod("a", "192.168.200.10"), pod("b", "192.168.200.20"),
                    endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"]}))
    m = NetworkReachability(inv, NET)
    assert not m.dual_stack
    assert "family" not in json.dumps(matrix_json(m, [])) + json.dumps(matrix_json(m, [], pairs=True))


def test_two_attachments_of_one_pod_stay_two_endpoints_on_a_dual_stack_network() -> None:
    """`ns/name@net1` (IPv4 and IPv6) and `@net2` (IPv4 only) are two endpoints; a pair is judged in the families
    both ends have, so nothing here is judged in IPv6."""
    inv = inventory(*dual_homed(), pod("peer", "192.168.200.10"))
    m = NetworkReachability(inv, NET)
    assert m.dual_stack
    assert {e.key for e in m.endpoints} == {"default/twice@net1", "default/twice@net2", "default/peer"}
    assert {(c.source, c.destination, c.family) for c in m.cells()} == {
        (a, b, 4) for a in ("default/twice@net1", "default/twice@net2", "default/peer")
        for b in ("default/twice@net1", "default/twice@net2", "default/peer") if a != b}


# ----------------------------------------------------------------------------- OVN matches in both families

def test_ip6_matches_cidrs_and_v6_address_sets() -> None:
    res = Resolver({}, {"as_v4": ("10.0.0.1",), "as_v6": ("fd00::1", "fd00::/120")}, {})
    v4 = Packet("a", "b", ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2"), "tcp", 80)
    six = Packet("a", "b", ipaddress.ip_address("fd00::1"), ipaddress.ip_address("fd00::2"), "tcp", 80)
    dual = parse_match("(ip4.src == {$as_v4} || ip6.src == {$as_v6}) && tcp && tcp.dst==80")
    assert evaluate(dual, v4, res) is True and evaluate(dual, six, res) is True
    assert evaluate(parse_match("ip4.src == {$as_v4}"), six, res) is False  # no ip4 field in an IPv6 packet
    assert evaluate(parse_match("ip6.src == fd00::/64 && ip6.src != {fd00::1}"), six, res) is False
    assert evaluate(parse_match("ip6.dst == fd00::/64 && ip6.dst != {fd00::1}"), six, res) is True
    assert evaluate(parse_match("(ip4 || ip6) && tcp"), six, res) is True
    assert evaluate(parse_match("ip4 && tcp"), six, res) is False
    # TestGetMatchFromIPBlock's "IPv6 only no except": OVN-K writes the CIDR as the policy gives it, host bits too.
    upstream = parse_match("ip6.src == fd00:10:244:3::49/32 && tcp && outport == @pg")
    inside = Packet("a", "pg-port", ipaddress.ip_address("fd00:10:ffff::1"), six.dst, "tcp", 80)
    outside = Packet("a", "pg-port", ipaddress.ip_address("fd00:11::1"), six.dst, "tcp", 80)
    groups = Resolver({"pg": frozenset({"pg-port"})}, {}, {})
    assert evaluate(upstream, inside, groups) is True and evaluate(upstream, outside, groups) is False
    mixed = parse_match("ip4.src == 0.0.0.0/0 && tcp")  # the "mixed IPv4 and IPv6" case's IPv4 ACL
    assert evaluate(mixed, v4, res) is True and evaluate(mixed, six, res) is False


# ----------------------------------------------------------------------------- NB as OVN-K writes it, both shapes

def dual_world_for_nb():
    return inventory(
        nad("l2net", "ns1", subnets="10.100.200.0/24,fd00:10:100::/64", topology="layer2"),
        pod("client", "10.100.200.10", "ns1", {"app": "client"}, "l2net", more_ips=("fd00:10:100::a",)),
        pod("server", "10.100.200.20", "ns1", {"app": "server"}, "l2net", more_ips=("fd00:10:100::14",)),
        pod("stranger", "10.100.200.30", "ns1", {"app": "other"}, "l2net", more_ips=("fd00:10:100::1e",)),
        mnp("allow-client", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                          "ports": [{"protocol": "TCP", "port": 8080}]},
                                         {"from": [{"ipBlock": {"cidr": "10.100.200.0/24",
                                                                "except": ["10.100.200.10/32"]}}],
                                          "ports": [{"protocol": "TCP", "port": 9090}]}]},
            namespace="ns1", policy_for="l2net"))


def dual_nb(version: str):
    """Written out by hand from gress_policy.go: the selector peer's two sets in one `(ip4 || ip6)` ACL, the
    ipBlock peer its own ip4-only ACL (ip-block-index 0); LSP addresses `MAC IPv4 IPv6`."""
    nb = UpstreamNb(version, "l2net", "layer2")
    nb.lsp("ns1/l2net", "ns1", "client", "0a:58:0a:64:c8:0a 10.100.200.10/24 fd00:10:100::a/64")
    server = nb.lsp("ns1/l2net", "ns1", "server", "0a:58:0a:64:c8:14 10.100.200.20/24 fd00:10:100::14/64")
    nb.lsp("ns1/l2net", "ns1", "stranger", "0a:58:0a:64:c8:1e 10.100.200.30/24 fd00:10:100::1e/64")
    key = "ns1_LS{ML:{app: client,},}"
    as4 = nb.pod_selector_set(key, "10.100.200.10")
    as6 = nb.pod_selector_set(key, "fd00:10:100::a", family="v6")
    pg = nb.policy_pg_name("ns1", "allow-client")
    nb.policy_group("ns1", "allow-client", (server,),
                    nb.rule_acl("ds-sel", "ns1", "allow-client", "Ingress", 0, "tcp", -1,
                                f"(ip4.src == {{${as4}}} || ip6.src == {{${as6}}}) && tcp && tcp.dst==8080 && "
                                f"outport == @{pg}"),
                    nb.rule_acl("ds-block", "ns1", "allow-client", "Ingress", 1, "tcp", 0,
                                f"ip4.src == 10.100.200.0/24 && ip4.src != {{10.100.200.10/32}} && tcp && "
                                f"tcp.dst==9090 && outport == @{pg}"))
    nb.default_deny("ns1", ingress=(server,), egress=())
    return nb.build()


@pytest.mark.parametrize("version", VERSIONS)
def test_dual_stack_nb_in_both_shapes_is_judged_per_family(version: str) -> None:
    inv = dual_world_for_nb()
    net = inv.networks[Ref("ns1", "l2net")]
    plane = ProgrammedPlane(dual_nb(version), net)
    assert plane.findings == []
    eps = {a.ref.name: a for a in inv.attachments_on(net.ref)}
    got = {(s, f, p): plane.judge(eps[s], eps["server"], p, TCP, f).verdict
           for s in ("client", "stranger") for f in (4, 6) for p in (8080, 9090)}
    assert got == {("client", 4, 8080): A, ("client", 6, 8080): A, ("client", 4, 9090): D, ("client", 6, 9090): D,
                   ("stranger", 4, 8080): D, ("stranger", 6, 8080): D, ("stranger", 4, 9090): A,
                   ("stranger", 6, 9090): D}
    assert plane.judge(eps["client"], eps["server"], 8080, TCP, 6).because == ["acl/ds-sel"]
    # The declared plane agrees cell for cell, and so does what segcheck's writer programs (its v6 set included).
    m = NetworkReachability(inv, net.ref, profile=PROFILES[version])
    written = from_desired(desired_state(inv, net.ref, {
        f"ns1/{n}": f"ns1.l2net_ns1_{n}" for n in eps}, PROFILES[version]), base=dual_nb(version))
    v6_sets = [s for s, members in written.address_sets.items() if members and all(":" in a for a in members)]
    assert v6_sets, "the writer makes the selector's _v6 address set"
    for nb in (dual_nb(version), written):
        p = ProgrammedPlane(nb, net)
        for s in eps.values():
            for d in eps.values():
                if s is d:
                    continue
                for cell in check_points(m, p, s, d, (TCP,)):
                    assert cell.family in (4, 6)
                    assert cell.programmed is not None and cell.programmed.verdict is cell.expected.verdict, cell


# ----------------------------------------------------------------------------- the CLI

@pytest.fixture()
def dual_seed(tmp_path):
    objs = [nad(subnets=f"{V4_SUBNET},{V6_SUBNET}"),
            pod("podclient", "192.168.200.10", more_ips=(v6(10),)),
            endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5", v6(5)],
                       "ports": [{"port": 5432, "protocol": "TCP"}]}),
            mnp("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            mnp("allow-db-egress", {"podSelector": {}, "policyTypes": ["Egress"],
                                    "egress": [{"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}],
                                                "ports": [{"protocol": "TCP", "port": 5432}]}]})]
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    return str(path)


def test_explain_answers_per_family_and_an_address_picks_one(dual_seed: str) -> None:
    run = CliRunner().invoke
    both = run(cli, ["explain", "podclient", "db:5432", "-f", dual_seed, "-o", "json"])
    assert both.exit_code == 0, both.output
    doc = json.loads(both.output)
    assert [(c["family"], c["port"], c["expected"]) for c in doc["cells"]] == [
        ("ipv4", 5432, "allowed"), ("ipv6", 5432, "denied")]
    picked = run(cli, ["explain", "podclient", f"[{v6(5)}]:5432", "-f", dual_seed, "-o", "json"])
    assert picked.exit_code == 0, picked.output
    one = json.loads(picked.output)
    assert (one["family"], one["expected"], one["to"]) == ("ipv6", "denied", "ext:db")
    table = run(cli, ["explain", "192.168.200.10", "db:5432", "-f", dual_seed])
    assert "5432/TCP ipv4" in table.output and "allowed" in table.output and "ipv6" not in table.output
    mixed = run(cli, ["explain", "192.168.200.10", f"[{v6(5)}]:5432", "-f", dual_seed])
    assert mixed.exit_code == 2 and "IPv4 and an IPv6" in mixed.output


# ----------------------------------------------------------------------------- diff, checks, the cluster view

def _client_server(*peers: dict) -> list[dict]:
    objs = [nad(subnets=f"{V4_SUBNET},{V6_SUBNET}"),
            pod("client", "192.168.200.10", labels={"app": "client"}, more_ips=(v6(10),)),
            pod("server", "192.168.200.20", labels={"app": "server"}, more_ips=(v6(20),))]
    objs.append(mnp("to-server", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                                  "ingress": [{"from": list(peers), "ports": [{"protocol": "TCP", "port": 80}]}]}))
    return objs


def test_diff_names_the_family_a_change_opens() -> None:
    from segcheck.agent.core.diff import compare
    base = inventory(*_client_server({"ipBlock": {"cidr": V4_SUBNET}}))
    head = inventory(*_client_server({"ipBlock": {"cidr": V4_SUBNET}}, {"ipBlock": {"cidr": V6_SUBNET}}))
    d = compare(NET, NetworkReachability(base, NET), NetworkReachability(head, NET))
    opened = [(c.source, c.destination, c.family, c.ports.first, c.ports.last) for c in d.changes
              if c.after is not None and c.after.verdict is A and (c.before is None or c.before.verdict is D)]
    assert opened == [("default/client", "default/server", 6, 80, 80)]


class _Here:
    """Every workload sends from a namespace of its own (a stand-in for the OVS locator)."""

    def send_point(self, endpoint):
        from segcheck.agent.core.probe import SendPoint
        return SendPoint(f"ns-{endpoint.key}", "net1", endpoint.ip, endpoint.mac) if isinstance(endpoint, Attachment) \
            else None

    def why_not(self, endpoint):
        return None

    def application_netns(self, endpoint):
        return None


def test_a_dual_stack_cell_is_probed_from_and_to_its_familys_addresses() -> None:
    from segcheck.agent.adapters.probers.simulated import SimulatedProber
    from segcheck.agent.runtime.checker import Checker
    inv = inventory(*_client_server({"ipBlock": {"cidr": V4_SUBNET}}))
    # The dataplane as declared: the server admits port 80 from IPv4 addresses of the subnet only.
    server = {"192.168.200.20", v6(20)}
    prober = SimulatedProber(lambda job: A if str(job.dst_ip) not in server or
                             (job.dst_port == 80 and job.source.ip.version == 4) else D)
    checker = Checker(inv, NET, prober=prober, locator=_Here(), protocols=(TCP,))
    cells, _ = checker.observe(checker.plan())
    jobs = [j for run in prober.runs for j in run]
    assert {(j.source.ip.version, j.dst_ip.version) for j in jobs} == {(4, 4), (6, 6)}
    to_server = {c.family: c for c in cells if (c.source, c.destination) == ("default/client", "default/server")
                 and 80 in c.ports}
    assert to_server[4].observed.verdict is A and to_server[6].observed.verdict is D
    assert to_server[4].expected.verdict is A and to_server[6].expected.verdict is D
    assert all(not c.drift for c in cells), [c for c in cells if c.drift]
    from segcheck.agent.core.render import cell_json
    assert {cell_json(c)["family"] for c in cells} == {"ipv4", "ipv6"}


def test_the_cluster_view_composes_each_family_apart() -> None:
    from segcheck.agent.core.compose import compose, halves_from_agent
    base = {"from": "default/client", "to": "default/server", "port": None, "protocol": "TCP", "because": []}
    cells = [{**base, "family": "ipv4", "expected": "allowed", "programmed": {"verdict": "allowed", "reasons": []}},
             {**base, "family": "ipv6", "expected": "denied", "programmed": {"verdict": "denied", "reasons": []}}]
    composed = compose(halves_from_agent("worker-0", "default/tenantblue", cells))
    assert [(c.family, c.programmed.verdict, c.drift) for c in composed] == [(4, A, ()), (6, D, ())]


def test_an_all_peers_rule_on_an_ipam_less_network_with_ipv6_is_a_finding() -> None:
    from segcheck.agent.core.enforcement import network_findings
    from segcheck.agent.core.findings import FindingKind
    rules = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"protocol": "TCP", "port": 80}]}]}
    with_v6 = inventory(nad(), pod("a", "192.168.200.10", more_ips=(v6(10),)), mnp("open", rules))
    v4_only = inventory(nad(), pod("a", "192.168.200.10"), mnp("open", rules))
    kinds = [f.kind for f in network_findings(with_v6, NET, PROFILES["4.14"])]
    assert FindingKind.ALL_PEERS_IPV4_ONLY in kinds
    assert FindingKind.ALL_PEERS_IPV4_ONLY not in [f.kind for f in network_findings(v4_only, NET, PROFILES["4.14"])]


# ----------------------------------------------------------------------------- writer, reader and evaluator agree

WRITTEN_STACKS = ["v4", "v6", "dual", "dual6first", "v4v4"]  # addressed pods only: ACLs on addresses need them


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(st.tuples(st.sampled_from(NAMESPACES), labels, st.integers(6, 60),
                               st.sampled_from(WRITTEN_STACKS)), min_size=1, max_size=5, unique_by=lambda t: t[2]),
       policies=st.lists(policy, max_size=3), subnets=st.sampled_from(SUBNETS),
       db_stack=st.sampled_from(["v4", "v6", "dual"]), profile=st.sampled_from(sorted(PROFILES)))
def test_what_ovnk_writes_for_a_dual_stack_world_judges_as_declared(pods, policies, subnets, db_stack, profile):
    """The NB OVN-K's shapes give for random dual-stack worlds (per-family address sets, ip4/ip6 matches, the
    all-peers `ip4` of an IPAM-less network), read back by the programmed plane, judges every family of every
    pair as the declared plane does: no controller drift."""
    from segcheck.agent.core.northbound import LogicalPort, LogicalSwitch, NbSnapshot
    from segcheck.agent.core.ovnk import names as ovnk_names
    inv = dual_world(pods, policies, subnets, db_stack)
    prof = PROFILES[profile]
    localnet = ovnk_names.localnet_port("tenantblue")
    ports = {localnet: LogicalPort(localnet, "localnet", ("unknown",))}
    lsps = {}
    for i, a in enumerate(inv.attachments_on(NET)):
        name = ovnk_names.pod_port(a.nad_ref, a.ref)
        ports[name] = LogicalPort(name, "", (" ".join([f"0a:58:00:00:00:{i:02x}", *map(str, a.ips)]),))
        lsps[a.key] = name
    switch = ovnk_names.localnet_switch("tenantblue")
    base = NbSnapshot({switch: LogicalSwitch(switch, tuple(sorted(ports)))}, ports, {}, {}, {})
    nb = from_desired(desired_state(inv, NET, lsps, prof), base=base)
    m = NetworkReachability(inv, NET, profile=prof)
    plane = ProgrammedPlane(nb, inv.networks[NET])
    for s in m.endpoints:
        for d in m.endpoints:
            if s.key == d.key or not (isinstance(s, Attachment) or isinstance(d, Attachment)):
                continue
            for cell in check_points(m, plane, s, d, (TCP, Protocol.UDP)):
                if cell.family is None and {ip.version for ip in s.ips} != {ip.version for ip in d.ips}:
                    continue  # no family in common: no packet OVN could carry
                assert cell.programmed is not None and cell.programmed.verdict is cell.expected.verdict, (
                    cell, cell.programmed)


def test_two_addresses_of_one_family_that_an_ipblock_tells_apart_are_a_finding() -> None:
    from segcheck.agent.core.enforcement import network_findings
    from segcheck.agent.core.findings import FindingKind

    def world(second: str):
        return inventory(nad(), pod("a", "192.168.200.10", more_ips=(second,)), pod("b", "192.168.200.20"),
                         mnp("block", {"podSelector": {}, "policyTypes": ["Ingress"],
                                       "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.200.0/28"}}]}]}))
    split = [f for f in network_findings(world("192.168.200.50"), NET) if f.kind is FindingKind.ADDRESSES_JUDGED_APART]
    assert len(split) == 1 and "default/a" in split[0].message and "192.168.200.10" in split[0].message
    m = NetworkReachability(world("192.168.200.50"), NET)
    assert judged(m, "default/a", "default/b", 80, None) is A  # judged at its first address, inside the block
    assert not [f for f in network_findings(world("192.168.200.11"), NET) if f.kind is FindingKind.ADDRESSES_JUDGED_APART]


def test_probe_without_an_address_probes_every_family_and_an_ipv6_only_drop_is_drift() -> None:
    """`probe client server:80` on a dual-stack pair sends a probe per family (a drop of IPv6 alone is drift, not
    hidden behind the IPv4 answer); an address typed probes its family only."""
    from segcheck.agent.core.northbound import LogicalPort, LogicalSwitch, NbSnapshot
    from segcheck.agent.core.ovnk import names as ovnk_names
    from segcheck.agent.runtime.checks import probe_cell
    from segcheck.agent.runtime.status import Status
    from tests.unit.test_checks import FakeSources
    inv = inventory(*_client_server({"ipBlock": {"cidr": V4_SUBNET}}, {"ipBlock": {"cidr": V6_SUBNET}}))
    ports, lsps = {}, {}
    for i, a in enumerate(inv.attachments_on(NET)):
        name = ovnk_names.pod_port(a.nad_ref, a.ref)
        ports[name] = LogicalPort(name, "", (" ".join([f"0a:58:00:00:00:{i:02x}", *map(str, a.ips)]),))
        lsps[a.key] = name
    switch = ovnk_names.localnet_switch("tenantblue")
    base = NbSnapshot({switch: LogicalSwitch(switch, tuple(sorted(ports)))}, ports, {}, {}, {})
    nb = from_desired(desired_state(inv, NET, lsps, PROFILES["current"]), base=base)
    ipv6_dropped = FakeSources(nb, lambda job: A if job.dst_port == 80 and job.dst_ip.version == 4 else D)
    both = probe_cell(inv, ipv6_dropped, "client", "server:80", PROFILES["current"])
    assert [(c.family, c.observed.verdict) for c in both.cells] == [(4, A), (6, D)]
    assert both.cell is both.cells[0] and both.status is Status.DRIFT
    assert both.cells[1].expected.verdict is A and both.cells[1].programmed.verdict is A and both.cells[1].drift
    v4 = probe_cell(inv, ipv6_dropped, "client", "192.168.200.20:80", PROFILES["current"])
    assert (v4.cells, v4.cell.family, v4.status) == ([], 4, Status.MATCH)
    v6_only = probe_cell(inv, ipv6_dropped, "client", f"[{v6(20)}]:80", PROFILES["current"])
    assert (v6_only.cells, v6_only.cell.family, v6_only.status) == ([], 6, Status.DRIFT)


def test_the_agents_probe_api_probes_the_family_an_address_picks(tmp_path) -> None:
    """POST /v1/probe with an IPv6 address typed probes IPv6 (it probed the pair's IPv4 before), without one the
    pair's first family; a family the pair lacks is a 400, nothing sent."""
    from segcheck.agent.adapters.probers.simulated import SimulatedProber
    from segcheck.agent.runtime.agent import Agent
    from segcheck.agent.runtime.declared import FilesSource
    from segcheck.agent.runtime.service import AgentService
    objs = _client_server({"ipBlock": {"cidr": V4_SUBNET}})
    objs.append(pod("v4only", "192.168.200.30", labels={"app": "v4only"}))
    world = tmp_path / "world.json"
    world.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
    prober = SimulatedProber(lambda job: A if job.dst_ip.version == 4 else D)
    agent = Agent(FilesSource([world], poll_seconds=60), None, None, prober, _Here(), "node-a", interval=60.0,
                  only_local=False)
    service = AgentService(agent, "127.0.0.1", 0, lambda token: "tester")
    status, v6_answer = service._probe({"from": "client", "to": f"[{v6(20)}]:80"})
    assert status == 200 and v6_answer["family"] == "ipv6", v6_answer
    assert v6_answer["observed"]["verdict"] == "denied" and v6_answer["expected"] == "denied"
    status, first = service._probe({"from": "client", "to": "server:80"})
    assert status == 200 and (first["family"], first["observed"]["verdict"]) == ("ipv4", "allowed")
    assert [str(j.dst_ip) for run in prober.runs for j in run] == [v6(20), "192.168.200.20"]
    status, refused = service._probe({"from": "v4only", "to": f"[{v6(20)}]:80"})
    assert status == 400, refused
    assert len([j for run in prober.runs for j in run]) == 2
