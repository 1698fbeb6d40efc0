"""Manifests as users have them: a network is the CNI config `name` (NADs of one name in several namespaces are
one network), `policy-for` is matched as OVN-K's shouldApplyMultiPolicy does (the network has the NAD),
`vlanID: 0` is no VLAN, and a workload attached twice to one network is two endpoints."""

from __future__ import annotations

import ipaddress
import json

import pytest
import yaml
from click.testing import CliRunner

from segcheck.agent.adapters.manifest_files import parse_yaml
from segcheck.agent.core.enforcement import network_findings
from segcheck.agent.core.findings import FindingKind
from segcheck.agent.core.manifests import RawObject, build_inventory
from segcheck.agent.core.model import Protocol, Ref, Verdict
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.core.resolve import resolve_pair
from segcheck.cli.main import cli
from tests.builders import inventory, mnp, nad, pod

BLUE = Ref("default", "tenantblue")
OTHER_BLUE = Ref("other", "tenantblue")
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def two_namespaces(*extra):
    return inventory(nad(), nad(namespace="other"), pod("server", "192.168.200.20"), pod("peer", "192.168.200.21"),
                     pod("client", "192.168.200.10", namespace="other"), *extra)


def endpoint(m: NetworkReachability, key: str):
    return next(e for e in m.endpoints if e.key == key)


def verdict(inv, source: str, destination: str, port: int = 80) -> Verdict:
    m = NetworkReachability(inv, BLUE)
    return m.judge(endpoint(m, source), endpoint(m, destination), port, Protocol.TCP).verdict


def test_nads_of_one_name_in_several_namespaces_are_one_network():
    inv = two_namespaces()
    assert list(inv.networks) == [BLUE] and set(inv.nads) == {BLUE, OTHER_BLUE}
    assert inv.networks[BLUE].nads == (BLUE, OTHER_BLUE)
    client = inv.find_workload("other/client")[0]
    assert (client.network, client.nad_ref) == (BLUE, OTHER_BLUE)
    net, src, dst = resolve_pair(inv, "other/client", "default/server", None, None)
    assert (net, src.key, dst.key) == (BLUE, "other/client", "default/server")
    assert verdict(inv, "other/client", "default/server") is Verdict.ALLOWED


@pytest.mark.parametrize("policy_for,applies", [
    ("tenantblue", True),                # the policy's own namespace's NAD
    ("default/tenantblue", True),
    ("other/tenantblue", True),          # another namespace's NAD of the same network
    ("other/missing", False),            # no such NAD: the network does not have it
    ("other/missing, tenantblue", True),  # any NAD of the list will do
])
def test_policy_for_applies_when_the_network_has_the_nad(policy_for, applies):
    inv = two_namespaces(mnp("deny", DENY_ALL, policy_for=policy_for))
    assert (verdict(inv, "other/client", "default/server") is Verdict.DENIED) == applies
    unknown = [f for f in network_findings(inv, BLUE) if f.kind is FindingKind.UNKNOWN_NETWORK]
    assert bool(unknown) == ("missing" in policy_for)


def test_a_policy_selects_only_its_own_namespace_on_the_shared_network():
    inv = two_namespaces(mnp("deny", DENY_ALL, namespace="other", policy_for="default/tenantblue"))
    assert verdict(inv, "other/client", "default/server") is Verdict.DENIED  # the client is isolated
    assert verdict(inv, "default/server", "default/peer") is Verdict.ALLOWED  # default's pods are not


def test_conflicting_configs_under_one_name_are_a_finding():
    inv = inventory(nad(), nad(namespace="other", subnets="10.0.0.0/24"))
    [finding] = [f for f in network_findings(inv, BLUE) if f.kind is FindingKind.NETWORK_CONFIG_CONFLICT]
    assert "'tenantblue'" in finding.message and "other/tenantblue: subnets=('10.0.0.0/24',)" in finding.message
    assert finding.severity.value == "error" and finding.network == BLUE


def test_same_config_under_one_name_is_no_finding():
    assert not [f for f in network_findings(two_namespaces(), BLUE) if f.kind is FindingKind.NETWORK_CONFIG_CONFLICT]


def test_network_option_accepts_any_nad_of_the_network(tmp_path):
    objects = [nad(), nad(namespace="other"), pod("server", "192.168.200.20"), pod("client", "192.168.200.10", namespace="other")]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(objects))
    result = CliRunner().invoke(cli, ["matrix", "-f", str(tmp_path), "--network", "other/tenantblue", "-o", "json",
                                      "--pairs"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["network"] == "default/tenantblue"
    assert {c["from"] for c in data["cells"]} >= {"other/client", "default/server"}


@pytest.mark.parametrize("vlan,ok", [(0, True), (1, True), (4094, True), (4095, False), (-1, False), (True, False)])
def test_vlan_id_zero_means_no_vlan(vlan, ok):
    inv, errors = build_inventory([RawObject("t", nad(vlanID=vlan))], parse_yaml)
    assert (not errors) == ok, errors
    if ok:
        assert inv.networks[BLUE].vlan_id == (vlan or None)


def dual_homed():
    second = nad("tenantblue-b")
    config = json.loads(second["spec"]["config"])
    config.update(name="tenantblue", netAttachDefName="default/tenantblue-b")
    second["spec"]["config"] = json.dumps(config)
    p = pod("twice", None)
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = json.dumps([
        {"name": "tenantblue", "ips": ["192.168.200.30/24"]}, {"name": "tenantblue-b", "ips": ["192.168.200.31/24"]}])
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = json.dumps([
        {"name": "ovn-kubernetes", "interface": "eth0", "ips": ["10.128.0.5"], "default": True},
        {"name": "default/tenantblue", "interface": "net1", "ips": ["192.168.200.30", "fd00:200::30"]},
        {"name": "default/tenantblue-b", "interface": "net2", "ips": ["192.168.200.31"]}])
    return nad(), second, p


def test_two_attachments_of_one_pod_to_one_network_are_two_endpoints_with_every_ip():
    inv = inventory(*dual_homed(), pod("peer", "192.168.200.10"))
    assert list(inv.networks) == [BLUE]
    twice = {a.key: a for a in inv.find_workload("default/twice")}
    assert set(twice) == {"default/twice@net1", "default/twice@net2"}
    assert twice["default/twice@net1"].ips == (ipaddress.ip_address("192.168.200.30"), ipaddress.ip_address("fd00:200::30"))
    assert twice["default/twice@net2"].nad_ref == Ref("default", "tenantblue-b")
    m = NetworkReachability(inv, BLUE)
    assert {e.key for e in m.endpoints} == {"default/twice@net1", "default/twice@net2", "default/peer"}
    net, src, dst = resolve_pair(inv, "default/peer", "default/twice@net2", None, None)
    assert dst.key == "default/twice@net2"


def test_the_same_nad_twice_is_refused_as_ovn_k_refuses_the_pod():
    p = pod("twice", None)
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = "tenantblue@net1, default/tenantblue@net2"
    _, errors = build_inventory([RawObject("t", nad()), RawObject("t", p)], parse_yaml)
    [error] = errors
    assert "Pod default/twice" in str(error) and "names NAD default/tenantblue a second time" in str(error)
