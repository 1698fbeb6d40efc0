"""Property tests: the class-based evaluator equals the naive oracle on random worlds; random malformed
manifests give exit 2 with a message, never a traceback."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Protocol, Ref
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.cli.main import cli
from tests.builders import endpoints, inventory, mnp, nad, namespace, pod
from tests.oracle import naive_verdict

NAMESPACES = ["default", "other"]
LABEL_KEYS = ["app", "tier"]
LABEL_VALUES = ["a", "b", "c"]
PORTS = [22, 80, 443, 5432, 8000, 8080]

labels = st.dictionaries(st.sampled_from(LABEL_KEYS), st.sampled_from(LABEL_VALUES), max_size=2)
expression = st.one_of(
    st.builds(lambda k, v: {"key": k, "operator": "In", "values": v}, st.sampled_from(LABEL_KEYS),
              st.lists(st.sampled_from(LABEL_VALUES), min_size=1, max_size=2, unique=True)),
    st.builds(lambda k, v: {"key": k, "operator": "NotIn", "values": v}, st.sampled_from(LABEL_KEYS),
              st.lists(st.sampled_from(LABEL_VALUES), min_size=1, max_size=2, unique=True)),
    st.builds(lambda k: {"key": k, "operator": "Exists"}, st.sampled_from(LABEL_KEYS)),
    st.builds(lambda k: {"key": k, "operator": "DoesNotExist"}, st.sampled_from(LABEL_KEYS)),
)
selector = st.builds(lambda m, e: {**({"matchLabels": m} if m else {}), **({"matchExpressions": e} if e else {})},
                     labels, st.lists(expression, max_size=2))
octet = st.integers(0, 255)
ip_block = st.builds(
    lambda base, length, ex: {"cidr": f"192.168.200.{base}/{length}",
                              **({"except": [f"192.168.200.{(base & ~((1 << (32 - length)) - 1)) + ex % (1 << (32 - length))}/32"]} if ex is not None and length < 32 else {})},
    octet, st.integers(24, 32), st.one_of(st.none(), st.integers(0, 3)))
peer = st.one_of(
    st.builds(lambda s: {"podSelector": s}, selector),
    st.builds(lambda s: {"namespaceSelector": s}, selector),
    st.builds(lambda a, b: {"podSelector": a, "namespaceSelector": b}, selector, selector),
    st.builds(lambda b: {"ipBlock": b}, ip_block),
)
port = st.one_of(
    st.builds(lambda p, pr: {"port": p, "protocol": pr}, st.sampled_from(PORTS), st.sampled_from(["TCP", "UDP"])),
    st.builds(lambda p, e: {"port": p, "endPort": p + e, "protocol": "TCP"}, st.sampled_from(PORTS), st.integers(0, 100)),
    st.builds(lambda pr: {"protocol": pr}, st.sampled_from(["TCP", "UDP", "SCTP"])),
    st.just({"port": "http", "protocol": "TCP"}),
)
rule = st.fixed_dictionaries({}, optional={"peers": st.lists(peer, max_size=2), "ports": st.lists(port, max_size=2)})
policy = st.fixed_dictionaries({
    "ns": st.sampled_from(NAMESPACES),
    "selector": selector,
    "types": st.lists(st.sampled_from(["Ingress", "Egress"]), unique=True, max_size=2),
    "ingress": st.lists(rule, max_size=2),
    "egress": st.lists(rule, max_size=2),
    "for": st.sampled_from(["tenantblue", "default/tenantblue", "other/x", None]),
})


def _rules(rules, key):
    out = []
    for r in rules:
        d = {}
        if "peers" in r:
            d[key] = r["peers"]
        if "ports" in r:
            d["ports"] = r["ports"]
        out.append(d)
    return out


def build_world(pods, policies, ipam):
    objs = [nad(subnets="192.168.200.0/24" if ipam else None), namespace("default", {"team": "a"}),
            namespace("other", {"team": "b"}),
            endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"]})]
    for i, (ns, lab, host) in enumerate(pods):
        objs.append(pod(f"p{i}", f"192.168.200.{host}", namespace=ns, labels=lab, network="default/tenantblue"))
    for i, p in enumerate(policies):
        spec = {"podSelector": p["selector"], "ingress": _rules(p["ingress"], "from"), "egress": _rules(p["egress"], "to")}
        if p["types"]:
            spec["policyTypes"] = p["types"]
        objs.append(mnp(f"np{i}", spec, namespace=p["ns"], policy_for=p["for"]))
    return inventory(*objs)


def listed_verdict(cells, port, proto):
    """What a reader of the matrix takes for one port: the cell whose range holds it, else the protocol's `*`
    cell, else TCP's `*` cell (UDP and SCTP are listed only where they differ from it)."""
    mine = [c for c in cells if c.protocol is proto] or [c for c in cells if c.protocol is Protocol.TCP and c.ports is None]
    hit = [c for c in mine if c.ports is not None and port in c.ports] or [c for c in mine if c.ports is None]
    assert len(hit) == 1, hit
    return hit[0].verdict


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(st.tuples(st.sampled_from(NAMESPACES), labels, st.integers(6, 60)), min_size=1, max_size=6,
                     unique_by=lambda t: t[2]),
       policies=st.lists(policy, max_size=4), ipam=st.booleans(), profile=st.sampled_from(sorted(PROFILES)),
       probe_ports=st.lists(st.sampled_from(PORTS + [1, 65535, 8001, 8100, 8101]), min_size=1, max_size=3),
       proto=st.sampled_from(list(Protocol)))
def test_fast_evaluator_equals_naive_oracle(pods, policies, ipam, profile, probe_ports, proto):
    inv = build_world(pods, policies, ipam)
    net = Ref("default", "tenantblue")
    prof = PROFILES[profile]
    m = NetworkReachability(inv, net, profile=prof)
    for src in m.endpoints:
        for dst in m.endpoints:
            if src.key == dst.key:
                continue
            for p in probe_ports:
                want = naive_verdict(inv, net, src, dst, p, proto, end_port=prof.end_port_supported,
                                     named_widen=prof.named_ports_widen, api_versions=prof.served_api_versions)
                got = m.judge(src, dst, p, proto)
                assert got.verdict == want, (src.key, dst.key, p, proto)
                segments = m.segments(m.class_index[src.key], m.class_index[dst.key], proto)
                assert [j for rng, j in segments if p in rng] == [got]
                assert listed_verdict(m.pair_cells(src, dst), p, proto) == want


# --- malformed input ---------------------------------------------------------------------------------------

VALID = [nad(), pod("c", "192.168.200.10"),
         mnp("p", {"podSelector": {}, "policyTypes": ["Ingress"],
                   "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.200.0/24"}}], "ports": [{"port": 80, "protocol": "TCP"}]}]})]

junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=8),
              st.sampled_from(["TCP", "Ingress", "In", "10.0.0.0/33", "nope", "192.168.200.0/24"])),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=8)


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(VALID) - 1), choice=st.integers(0, 10_000), value=junk,
       raw=st.one_of(st.none(), st.text(max_size=40)))
def test_malformed_manifests_exit_2_with_a_message(tmp_path_factory, which, choice, value, raw):
    folder = tmp_path_factory.mktemp("bad")
    good = json.loads(json.dumps(VALID))
    target = good[which]
    paths = list(_paths(target))
    path = paths[choice % len(paths)]
    node = target
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (folder / "objects.yaml").write_text(yaml.safe_dump_all(good))
    if raw is not None:
        (folder / "raw.yaml").write_text(raw)
    result = CliRunner().invoke(cli, ["matrix", "-f", str(folder), "-o", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 2:
        assert "error:" in result.output


def test_one_bad_object_is_named_and_does_not_hide_the_others(tmp_path):
    (tmp_path / "good.yaml").write_text(yaml.safe_dump_all(VALID))
    bad = mnp("broken", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "Near"}]}})
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    (tmp_path / "syntax.yaml").write_text("kind: Pod\nmetadata: [unclosed\n")
    result = CliRunner().invoke(cli, ["matrix", "-f", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad.yaml: MultiNetworkPolicy default/broken:" in result.output and "Near" in result.output
    assert "syntax.yaml" in result.output and "invalid YAML" in result.output
    assert "Traceback" not in result.output
