"""Small builders of raw Kubernetes objects for tests (parsed through the real manifest code)."""

from __future__ import annotations

import json
from typing import Any

from segcheck.agent.adapters.manifest_files import parse_yaml
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.manifests import RawObject, build_inventory


def nad(name: str = "tenantblue", namespace: str = "default", subnets: str | None = None, **extra: Any) -> dict[str, Any]:
    config = {"cniVersion": "0.3.1", "name": name, "type": "ovn-k8s-cni-overlay", "topology": "localnet",
              "netAttachDefName": f"{namespace}/{name}", **extra}
    if subnets:
        config["subnets"] = subnets
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": json.dumps(config)}}


def pod(name: str, ip: str | None, namespace: str = "default", labels: dict[str, str] | None = None,
        network: str = "tenantblue", more_ips: tuple[str, ...] = ()) -> dict[str, Any]:
    """A pod attached by a network selection with static IPs (`ip`, then `more_ips`: dual-stack)."""
    selection: dict[str, Any] = {"name": network}
    given = [a for a in (ip, *more_ips) if a]
    if given:
        selection["ips"] = [a if "/" in a else f"{a}/{64 if ':' in a else 24}" for a in given]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": {"k8s.v1.cni.cncf.io/networks": json.dumps([selection])}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def mnp(name: str, spec: dict[str, Any], namespace: str = "default", policy_for: str | None = "tenantblue",
        api_version: str = "k8s.cni.cncf.io/v1beta1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if policy_for is not None:
        meta["annotations"] = {"k8s.v1.cni.cncf.io/policy-for": policy_for}
    return {"apiVersion": api_version, "kind": "MultiNetworkPolicy", "metadata": meta, "spec": spec}


def endpoints(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "segcheck.io/v1alpha1", "kind": "ExternalEndpoints", "metadata": {"name": "ext"},
            "spec": {"endpoints": list(items)}}


def inventory(*objects: dict[str, Any]) -> Inventory:
    inv, errors = build_inventory([RawObject("test", o) for o in objects], parse_yaml)
    assert not errors, [str(e) for e in errors]
    return inv


def allow_client_to_server(client: str = "192.168.200.10/32", server: str = "192.168.200.20/32") -> str:
    """The cluster tests' policy on top of the seed: podclient -> vm-server:8080 opened (egress in the client's
    zone, ingress in the server's), so a service path crosses the nodes."""
    return f"""
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: allow-client-to-server
  namespace: default
  annotations: {{k8s.v1.cni.cncf.io/policy-for: default/tenantblue}}
spec:
  podSelector: {{}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{{ipBlock: {{cidr: "{client}"}}}}]
    ports: [{{protocol: TCP, port: 8080}}]
  egress:
  - to: [{{ipBlock: {{cidr: "{server}"}}}}]
    ports: [{{protocol: TCP, port: 8080}}]
"""
