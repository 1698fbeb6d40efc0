"""Generated worlds for the matrix benchmarks, written as manifest files the way `oc get -o json` dumps them.

One layer2 network with IPAM (so pod and namespace selectors resolve), N pods in N/100 namespaces, P policies
mixing pod-selector, namespace-selector and ipBlock peers (with excepts) over 20 TCP/UDP ports, default-deny
policies, and one external endpoint (a DB on the physical side). Two shapes, deterministic for a given seed:

- `replicas` (default), what clusters look like: each namespace runs 10 workloads of 10 replicas (one label set
  each); IPAM hands out addresses in creation order; ipBlocks name ranges off the pod subnet (the physical side)
  or cut the pod subnet at /24 boundaries.
- `scattered`, a stress case: every pod draws random labels and ipBlocks cut /28 holes all over the pod
  addresses, so nearly every pod is its own equivalence class.
- `dual`: `replicas` on a dual-stack network (subnets 10.128.0.0/14 and fd00:128::/64): every pod and the DB have
  an address of each family, and half the pod-subnet ipBlocks are IPv6 ones (fd00:128::/64 cut at /120), so a
  pair's IPv4 and IPv6 cells differ where only one family's block admits it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

NETWORK = "default/tenantblue"
SUBNET = "10.128.0.0/14"
SUBNET6 = "fd00:128::/64"
APPS = [f"app{i}" for i in range(10)]
TIERS = ["web", "api", "db"]
TEAMS = [f"t{i}" for i in range(5)]
PORTS = [22, 53, 80, 443, 1433, 2379, 3000, 3306, 5000, 5432, 5672, 6379, 8000, 8080, 8443, 9000, 9090, 9200,
         11211, 27017]


def _nad(dual: bool = False) -> dict[str, Any]:
    config = {"cniVersion": "0.3.1", "name": "tenantblue", "type": "ovn-k8s-cni-overlay", "topology": "layer2",
              "netAttachDefName": NETWORK, "subnets": f"{SUBNET},{SUBNET6}" if dual else SUBNET}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "tenantblue", "namespace": "default"}, "spec": {"config": json.dumps(config)}}


def _ip(i: int) -> str:
    n = i + 10
    return f"10.{128 + n // 65536}.{(n // 256) % 256}.{n % 256}"


def _ip6(i: int) -> str:
    return f"fd00:128::{i + 10:x}"


def _pod(i: int, namespace: str, labels: dict[str, str], dual: bool = False) -> dict[str, Any]:
    ips = [f"{_ip(i)}/14"] + ([f"{_ip6(i)}/64"] if dual else [])
    selection = [{"name": "tenantblue", "namespace": "default", "ips": ips}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"w{i}", "namespace": namespace, "labels": labels,
                         "annotations": {"k8s.v1.cni.cncf.io/networks": json.dumps(selection)}},
            "spec": {"containers": [{"name": "c", "image": "registry.example/app"}]}}


def _ports(rng: random.Random) -> list[dict[str, Any]]:
    return [{"protocol": rng.choice(["TCP", "TCP", "UDP"]), "port": p} for p in rng.sample(PORTS, rng.randint(1, 3))]


def _scattered_block(rng: random.Random) -> dict[str, Any]:
    b = rng.randrange(20)
    return {"ipBlock": {"cidr": f"10.128.{b}.0/24", "except": [f"10.128.{b}.{16 * rng.randrange(16)}/28"]}}


def _replicas_block(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:  # the physical side: a range of hosts, minus a few
        return {"ipBlock": {"cidr": "192.168.200.0/24", "except": [f"192.168.200.{16 * rng.randrange(16)}/28"]}}
    return {"ipBlock": {"cidr": SUBNET, "except": [f"10.128.{rng.randrange(20)}.0/24"]}}


def _dual_block(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:
        return _replicas_block(rng)
    return {"ipBlock": {"cidr": SUBNET6, "except": [f"fd00:128::{rng.randrange(20) << 8:x}/120"]}}


def _spec(i: int, rng: random.Random, block: Callable[[random.Random], dict[str, Any]]) -> dict[str, Any]:
    kind = i % 5
    if kind == 0:
        return {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    if kind == 1:
        return {"podSelector": {"matchLabels": {"tier": rng.choice(TIERS)}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": rng.choice(APPS)}}},
                                      {"namespaceSelector": {"matchLabels": {"team": rng.choice(TEAMS)}}}],
                             "ports": _ports(rng)}]}
    if kind == 2:
        return {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": rng.sample(APPS, 3)}]},
                "policyTypes": ["Egress"], "egress": [{"to": [block(rng)], "ports": _ports(rng)}]}
    if kind == 3:
        return {"podSelector": {"matchLabels": {"app": rng.choice(APPS)}}, "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"tier": "web"}}}],
                             "ports": _ports(rng)}],
                "egress": [{"to": [{"podSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]},
                           {"to": [{"ipBlock": {"cidr": "192.168.200.5/32"}}], "ports": [{"protocol": "TCP", "port": 5432}]}]}
    return {"podSelector": {"matchLabels": {"tier": rng.choice(TIERS)}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [block(rng), {"namespaceSelector": {"matchLabels": {"team": rng.choice(TEAMS)}},
                                                 "podSelector": {"matchLabels": {"app": rng.choice(APPS)}}}],
                         "ports": _ports(rng)}]}


def _replica_pods(attachments: int, namespaces: int, dual: bool = False) -> list[dict[str, Any]]:
    """Pods in creation order: namespace by namespace, workload by workload, 10 replicas each."""
    pods = []
    for i in range(attachments):
        ns, k = i * namespaces // attachments, i // 10
        labels = {"app": APPS[k % len(APPS)], "tier": TIERS[k % len(TIERS)], "pod-template-hash": f"h{k}"}
        pods.append(_pod(i, f"ns{ns}", labels, dual))
    return pods


SHAPES = ("replicas", "scattered")


def world_objects(attachments: int, policies: int, seed: int = 7, shape: str = "replicas") -> dict[str, list[dict[str, Any]]]:
    """The world's objects by file name."""
    rng = random.Random(seed)
    namespaces = max(1, attachments // 100)
    ns_objs = [{"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": f"ns{i}", "labels": {"team": TEAMS[i % len(TEAMS)]}}} for i in range(namespaces)]
    dual = shape == "dual"
    if shape in ("replicas", "dual"):
        pods, block = _replica_pods(attachments, namespaces, dual), _dual_block if dual else _replicas_block
    else:
        pods = [_pod(i, f"ns{i % namespaces}", {"app": rng.choice(APPS), "tier": rng.choice(TIERS)})
                for i in range(attachments)]
        block = _scattered_block
    mnps = [{"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
             "metadata": {"name": f"p{i}", "namespace": f"ns{i % namespaces}",
                          "annotations": {"k8s.v1.cni.cncf.io/policy-for": NETWORK}},
             "spec": _spec(i, rng, block)} for i in range(policies)]
    db = {"apiVersion": "segcheck.io/v1alpha1", "kind": "ExternalEndpoints", "metadata": {"name": "ext"},
          "spec": {"endpoints": [{"name": "db", "network": NETWORK,
                                  "ips": ["192.168.200.5", "fd00:200::5"] if dual else ["192.168.200.5"],
                                  "ports": [{"port": 5432, "protocol": "TCP"}]}]}}
    return {"10-network.json": [_nad(dual), db], "20-namespaces.json": ns_objs, "30-pods.json": pods,
            "40-policies.json": mnps}


def write_world(folder: Path, attachments: int, policies: int, seed: int = 7, shape: str = "replicas") -> Path:
    """Write the world as `kind: List` JSON files (one per kind, as `oc get -o json` gives them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, items in world_objects(attachments, policies, seed, shape).items():
        (folder / name).write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return folder
