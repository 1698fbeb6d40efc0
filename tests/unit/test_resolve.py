"""What a user types (`vm-server`, `default/podclient`, `db:5432`, `[fd00::5]:5432/udp`) resolved into one network
and two endpoints, or refused with a ResolveError (a usage error, exit 2)."""

from __future__ import annotations

import ipaddress
import json

import pytest
from segcheck.agent.core.model import (
    AddressEndpoint,
    Attachment,
    ExternalEndpoint,
    Protocol,
    Ref,
)
from segcheck.agent.core.resolve import ResolveError, Target, resolve_pair, split_target

from tests.builders import endpoints, inventory, nad, namespace, pod

TCP, UDP, SCTP = Protocol.TCP, Protocol.UDP, Protocol.SCTP
BLUE, RED = Ref("default", "tenantblue"), Ref("default", "tenantred")


# ----------------------------------------------------------------------------- split_target

@pytest.mark.parametrize("text,target", [
    ("db", Target("db", None, TCP)),
    ("db:5432", Target("db", 5432, TCP)),
    ("db:5432/udp", Target("db", 5432, UDP)),
    ("db:5432/UDP", Target("db", 5432, UDP)),
    ("db:5432/sctp", Target("db", 5432, SCTP)),
    ("db:1", Target("db", 1, TCP)),
    ("db:65535", Target("db", 65535, TCP)),
    ("default/podclient:80", Target("default/podclient", 80, TCP)),
    ("192.168.200.5:5432/TCP", Target("192.168.200.5", 5432, TCP)),
    ("192.168.200.5", Target("192.168.200.5", None, TCP)),
    ("[fd00::5]:5432", Target("fd00::5", 5432, TCP)),
    ("[fd00::5]:53/udp", Target("fd00::5", 53, UDP)),
    ("[fd00::5]", Target("fd00::5", None, TCP)),
    ("fd00::5", Target("fd00::5", None, TCP)),  # an IPv6 address without brackets carries no port
])
def test_split_target(text, target):
    assert split_target(text) == target


@pytest.mark.parametrize("text", [
    "db:0", "db:65536", "db:99999", "db:-1", "db:http", "db:54 32", "db:5432/icmp", "db:5432/", "db:5432/tcp/udp",
    "[fd00::5:5432", "[fd00::5]:0", "[fd00::5]:x", ":5432", "[]:5432", "",
])
def test_split_target_refuses(text):
    with pytest.raises(ResolveError):
        split_target(text)


@pytest.mark.parametrize("text,target", [
    ("ext:db", Target("ext:db", None, TCP)),
    ("ext:db:5432", Target("ext:db", 5432, TCP)),
    ("ext:db:5432/udp", Target("ext:db", 5432, UDP)),
])
def test_split_target_keeps_the_external_prefix(text, target):
    assert split_target(text) == target


# ----------------------------------------------------------------------------- resolve_pair

def multi_pod(name: str, *attachments: tuple[str, str], ns: str = "default") -> dict:
    selections = [{"name": net, "ips": [f"{ip}/24"]} for net, ip in attachments]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "annotations": {"k8s.v1.cni.cncf.io/networks": json.dumps(selections)}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


@pytest.fixture(scope="module")
def inv():
    return inventory(
        nad("tenantblue"), nad("tenantred"), namespace("default"), namespace("other"),
        pod("client", "192.168.200.10"), pod("server", "192.168.200.20"),
        pod("client", "192.168.200.30", namespace="other", network="default/tenantblue"),
        pod("redonly", "10.0.0.10", network="tenantred"),
        multi_pod("multi", ("tenantblue", "192.168.200.40"), ("tenantred", "10.0.0.40")),
        endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"], "ports": [{"port": 5432}]},
                  {"name": "gw", "ips": ["192.168.200.1"]}))


def resolve(inv, src: str, dst: str, network: Ref | None = None, namespace: str | None = None):
    net, s, d = resolve_pair(inv, src, dst, network, namespace)
    return str(net), s.key, d.key, type(d).__name__


@pytest.mark.parametrize("src,dst,want", [
    ("client", "server", ("default/tenantblue", "default/client", "default/server", "Attachment")),
    ("default/client", "default/server", ("default/tenantblue", "default/client", "default/server", "Attachment")),
    ("other/client", "server", ("default/tenantblue", "other/client", "default/server", "Attachment")),
    ("client", "db", ("default/tenantblue", "default/client", "ext:db", "ExternalEndpoint")),
    ("client", "ext:db", ("default/tenantblue", "default/client", "ext:db", "ExternalEndpoint")),
    ("client", "192.168.200.5", ("default/tenantblue", "default/client", "ext:db", "ExternalEndpoint")),
    ("client", "192.168.200.20", ("default/tenantblue", "default/client", "default/server", "Attachment")),
    ("client", "192.168.200.99", ("default/tenantblue", "default/client", "192.168.200.99", "AddressEndpoint")),
    ("db", "server", ("default/tenantblue", "ext:db", "default/server", "Attachment")),
    ("redonly", "multi", ("default/tenantred", "default/redonly", "default/multi", "Attachment")),
    ("client", "gw", ("default/tenantblue", "default/client", "ext:gw", "ExternalEndpoint")),  # gw: every network
])
def test_resolve_pair(inv, src, dst, want):
    assert resolve(inv, src, dst) == want


def test_namespace_picks_between_same_named_workloads(inv):
    assert resolve(inv, "client", "default/server", namespace="other")[1] == "other/client"
    assert resolve(inv, "client", "server", namespace="default")[1] == "default/client"
    # -n is a filter, as in kubectl: a name not in that namespace is not found (never another namespace's).
    with pytest.raises(ResolveError, match="not found.*'client'.*namespace 'nowhere'"):
        resolve(inv, "client", "server", namespace="nowhere")


def test_the_endpoints_carry_their_attachment_on_the_chosen_network(inv):
    net, src, _ = resolve_pair(inv, "multi", "redonly", None, None)
    assert net == RED
    assert isinstance(src, Attachment) and src.network == RED
    assert src.ips == (ipaddress.ip_address("10.0.0.40"),)
    net, src, _ = resolve_pair(inv, "multi", "server", None, None)
    assert (net, src.network, str(src.ip)) == (BLUE, BLUE, "192.168.200.40")


def test_several_shared_networks_need_a_choice(inv):
    with pytest.raises(ResolveError, match="several networks.*--network"):
        resolve_pair(inv, "multi", "gw", None, None)
    with pytest.raises(ResolveError, match="several networks"):
        resolve_pair(inv, "multi", "10.9.9.9", None, None)  # a bare address is on every network
    assert resolve(inv, "multi", "gw", network=RED) == ("default/tenantred", "default/multi", "ext:gw",
                                                         "ExternalEndpoint")


@pytest.mark.parametrize("src,dst,network,message", [
    ("client", "client", None, "same endpoint"),
    ("client", "192.168.200.10", None, "same endpoint"),
    ("db", "gw", None, "one end must be a pod or a VM"),
    ("db", "192.168.200.77", BLUE, "one end must be a pod or a VM"),
    ("ghost", "db", None, "neither a pod, a VM nor an external endpoint"),
    ("client", "ext:ghost", None, "neither"),
    ("client", "db", RED, "neither.*on default/tenantred"),  # db is declared on tenantblue only
    ("client", "redonly", None, "share no network"),
    ("client", "server", RED, "neither"),
])
def test_resolve_pair_refuses(inv, src, dst, network, message):
    with pytest.raises(ResolveError, match=message):
        resolve_pair(inv, src, dst, network, None)


def test_bare_addresses_resolve_to_what_holds_them(inv):
    _, _, dst = resolve_pair(inv, "server", "192.168.200.1", None, None)
    assert isinstance(dst, ExternalEndpoint) and dst.name == "gw"
    _, _, dst = resolve_pair(inv, "server", "192.168.200.250", None, None)
    assert isinstance(dst, AddressEndpoint) and str(dst.address) == "192.168.200.250"
