"""The Kubernetes manifests: rendered (test kustomize, cross-checked with `kubectl kustomize` where installed),
validated against schemas, and checked for what docs/deploy.md promises about privileges.

What is validated, and against what:
- built-in kinds: the Kubernetes 1.27 OpenAPI schemas (OpenShift 4.14 is Kubernetes 1.27) from the
  `kubernetes-validate` package, strict mode (unknown fields are errors);
- ServiceMonitor, PrometheusRule, SecurityContextConstraints: their CRDs' openAPIV3Schema (tests/deploy/schemas,
  see its README), made strict the way the API server's field validation is: unknown fields are errors unless
  the schema preserves them.
What is not: admission (SCC matching is approximated by test_scc_admits_the_agent_pod below, not run by
OpenShift), defaulting, cross-object references beyond the ones checked here, PromQL inside the PrometheusRule
(test_rules.py does that), and anything a live API server would say.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from segcheck.agent.core.manifests import parse_endpoints

from tests.deploy.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "daemonset" / "base"
OPENSHIFT = ROOT / "deploy" / "daemonset" / "overlays" / "openshift"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
KUBERNETES_VERSION = "1.27"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("security.openshift.io/v1", "SecurityContextConstraints"): "securitycontextconstraints-security-v1.json",
}
Obj = dict[str, Any]


def kubernetes_validate() -> Any:
    # In pyproject's [test] extra (>= 1.28; bundles the 1.27 schemas).
    import kubernetes_validate

    return kubernetes_validate


def _key(obj: Obj) -> tuple[str, str, str, str]:
    return obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@cache
def rendered(directory: Path) -> tuple[Obj, ...]:
    return tuple(sorted(render(directory), key=_key))


def one(objects: tuple[Obj, ...], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def agent_container(objects: tuple[Obj, ...]) -> Obj:
    [container] = one(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    return container


def _strict(schema: Any) -> Any:
    """additionalProperties: false wherever the CRD schema lists properties and does not keep unknown fields;
    OpenAPI's `nullable: true` as JSON Schema's null type."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if schema.get("nullable") is True and isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_validator(file: str) -> jsonschema.Draft7Validator:
    schema = _strict(json.loads((SCHEMAS / file).read_text()))
    # metadata is validated by the API server, not by the CRD schema; keep it out of the strict check.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


CONSOLE_DASHBOARDS = ROOT / "deploy" / "console-dashboards"
TREES = [BASE, OPENSHIFT, CONSOLE_DASHBOARDS]
AGENT_TREES = [BASE, OPENSHIFT]  # the trees that deploy the agent
ALL_OBJECTS = [(tree, obj) for tree in TREES for obj in render(tree)]


@pytest.mark.parametrize("tree", TREES, ids=lambda p: p.name)
def test_test_renderer_agrees_with_kubectl_kustomize(tree: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: rendering checked by the test renderer only")
    out = subprocess.run([kubectl, "kustomize", str(tree)], capture_output=True, text=True, timeout=60, check=True)
    theirs = sorted((o for o in yaml.safe_load_all(out.stdout) if o), key=_key)
    assert theirs == list(rendered(tree))


@pytest.mark.parametrize("tree,obj", ALL_OBJECTS, ids=lambda v: v.name if isinstance(v, Path) else f"{v['kind']}/{v['metadata']['name']}")
def test_object_is_valid_against_its_schema(tree: Path, obj: Obj) -> None:
    crd = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    if crd:
        errors = list(crd_validator(crd).iter_errors(obj))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)
    else:
        kubernetes_validate().validate(copy.deepcopy(obj), KUBERNETES_VERSION, strict=True)


def test_the_strict_schemas_do_catch_mistakes() -> None:
    daemonset = copy.deepcopy(one(rendered(BASE), "DaemonSet"))
    daemonset["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilitie"] = {}
    validator = kubernetes_validate()
    with pytest.raises(validator.ValidationError):
        validator.validate(daemonset, KUBERNETES_VERSION, strict=True)
    monitor = copy.deepcopy(one(rendered(BASE), "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    assert list(crd_validator(CRD_SCHEMAS[("monitoring.coreos.com/v1", "ServiceMonitor")]).iter_errors(monitor))


def test_base_objects() -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered(BASE))
    assert kinds == [("ClusterRole", "segcheck-agent"), ("ClusterRole", "segcheck-prober"),
                     ("ClusterRole", "segcheck-reader"), ("ClusterRoleBinding", "segcheck-agent"),
                     ("ConfigMap", "segcheck-endpoints"), ("CustomResourceDefinition", "externalendpoints.segcheck.io"),
                     ("DaemonSet", "segcheck-agent"), ("Namespace", "segcheck"),
                     ("NetworkPolicy", "default-deny"), ("NetworkPolicy", "segcheck-agent"),
                     ("PriorityClass", "segcheck-node-checker"), ("PrometheusRule", "segcheck"),
                     ("Service", "segcheck"), ("ServiceAccount", "segcheck"), ("ServiceMonitor", "segcheck")]
    assert {o["metadata"].get("namespace") for o in rendered(BASE) if o["kind"] not in
            ("Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "CustomResourceDefinition")} == {"segcheck"}


def test_cluster_role_is_read_only_plus_the_two_reviews() -> None:
    rules = one(rendered(BASE), "ClusterRole", "segcheck-agent")["rules"]
    grants = {(group, resource): tuple(rule["verbs"])
              for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}
    read = ("get", "list", "watch")
    assert grants == {
        ("", "pods"): read, ("", "namespaces"): read,
        ("k8s.cni.cncf.io", "network-attachment-definitions"): read, ("k8s.cni.cncf.io", "multi-networkpolicies"): read,
        ("kubevirt.io", "virtualmachineinstances"): read, ("segcheck.io", "externalendpoints"): read,
        ("authentication.k8s.io", "tokenreviews"): ("create",),
        ("authorization.k8s.io", "subjectaccessreviews"): ("create",),
    }
    assert all("resourceNames" not in rule and "nonResourceURLs" not in rule for rule in rules)
    binding = one(rendered(BASE), "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "segcheck-agent"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "segcheck", "namespace": "segcheck"}]


def test_api_roles_name_the_resources_the_agent_authorises() -> None:
    from segcheck.agent.adapters.auth import GROUP, READ_CELLS, SEND_PROBES

    def grants(name: str) -> set[tuple[str, str, str]]:
        rules = one(rendered(BASE), "ClusterRole", name)["rules"]
        return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}

    read = (GROUP, READ_CELLS.resource, READ_CELLS.verb)
    assert grants("segcheck-reader") == {read}
    assert grants("segcheck-prober") == {read, (GROUP, SEND_PROBES.resource, SEND_PROBES.verb)}


def test_namespace_admits_the_agent_under_pod_security() -> None:
    labels = one(rendered(BASE), "Namespace")["metadata"]["labels"]
    # host PID, hostPath and added capabilities are admitted by the "privileged" level only
    assert {labels[f"pod-security.kubernetes.io/{mode}"] for mode in ("enforce", "audit", "warn")} == {"privileged"}
    assert one(rendered(OPENSHIFT), "Namespace")["metadata"]["labels"]["security.openshift.io/scc.podSecurityLabelSync"] == "false"


def test_network_policy_closes_the_namespace_but_the_agent_port_and_the_api_server() -> None:
    for tree in AGENT_TREES:
        objects = rendered(tree)
        deny = one(objects, "NetworkPolicy", "default-deny")["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        agent = one(objects, "NetworkPolicy", "segcheck-agent")["spec"]
        pod_labels = one(objects, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
        assert agent["podSelector"]["matchLabels"].items() <= pod_labels.items()
        [ingress] = agent["ingress"]
        assert ingress["ports"] == [{"protocol": "TCP", "port": agent_container(objects)["ports"][0]["containerPort"]}]
        [egress] = agent["egress"]
        assert "to" not in egress and {p["port"] for p in egress["ports"]} <= {6443, 443}
    [peer] = one(rendered(OPENSHIFT), "NetworkPolicy", "segcheck-agent")["spec"]["ingress"][0]["from"]
    assert peer == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-monitoring"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}


def test_openshift_overlay_serves_metrics_with_the_service_ca_and_authenticated_scrapes() -> None:
    objects = rendered(OPENSHIFT)
    service = one(objects, "Service")
    secret = service["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"]
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    container = agent_container(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    [mount] = [m for m in container["volumeMounts"] if volumes[m["name"]].get("secret", {}).get("secretName") == secret]
    args = container["args"]
    assert f"--tls-cert-file={mount['mountPath']}/tls.crt" in args and f"--tls-key-file={mount['mountPath']}/tls.key" in args
    assert "--metrics-auth" in args and args[args.index("--auth") + 1] == "tokenreview"
    assert container["livenessProbe"]["httpGet"]["scheme"] == container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    [endpoint] = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {"caFile": "/etc/prometheus/configmaps/serving-certs-ca-bundle/service-ca.crt",
                                     "serverName": f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"}
    metrics = one(objects, "ClusterRole", "segcheck-metrics-reader")["rules"]
    assert metrics == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    binding = one(objects, "ClusterRoleBinding", "segcheck-metrics-reader")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "openshift-monitoring"}]


@pytest.mark.parametrize("tree", AGENT_TREES, ids=lambda p: p.name)
def test_the_agent_accepts_the_daemonsets_arguments(tree: Path) -> None:
    from segcheck.cli.agent_commands import agent

    args = [a.replace("$(NODE_NAME)", "worker-0") for a in agent_container(rendered(tree))["args"]]
    context = agent.make_context("agent", args)  # parses only; a misspelt option raises here
    assert context.params["auth"] == "tokenreview"


def test_daemonset_runs_the_agent_as_documented() -> None:
    daemonset = one(rendered(BASE), "DaemonSet")
    pod = daemonset["spec"]["template"]["spec"]
    container = agent_container(rendered(BASE))
    assert daemonset["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/worker": ""}
    assert pod["hostPID"] is True and "hostNetwork" not in pod
    assert pod["serviceAccountName"] == "segcheck"
    assert pod["priorityClassName"] == "segcheck-node-checker"
    assert not pod["priorityClassName"].startswith("system-")
    assert all(t.get("effect") != "NoExecute" for t in pod["tolerations"])
    assert container["args"] == ["--node", "$(NODE_NAME)", "--listen", "0.0.0.0:9470",
                                 "--nb", "unix:/var/run/ovn-ic/ovnnb_db.sock", "--ovs", "unix:/var/run/openvswitch/db.sock",
                                 "--endpoints", "/etc/segcheck/endpoints.yaml", "--auth", "tokenreview"]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9470, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "96Mi"},
                                      "limits": {"cpu": "500m", "memory": "192Mi"}}


def test_daemonset_security_context_is_minimal() -> None:
    context = agent_container(rendered(BASE))["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW", "SYS_ADMIN", "SYS_PTRACE"]}
    assert context["runAsUser"] == 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    pod = one(rendered(BASE), "DaemonSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_daemonset_host_mounts() -> None:
    pod = one(rendered(BASE), "DaemonSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in agent_container(rendered(BASE))["volumeMounts"]}
    host = {path: volumes[m["name"]]["hostPath"]["path"] for path, m in mounts.items() if "hostPath" in volumes[m["name"]]}
    assert host == {"/var/run/ovn-ic": "/var/run/ovn-ic", "/var/run/openvswitch": "/var/run/openvswitch",
                    "/run/netns": "/run/netns"}
    assert all(mounts[path].get("readOnly") is True for path in host)
    assert mounts["/run/netns"]["mountPropagation"] == "HostToContainer"
    assert volumes[mounts["/etc/segcheck"]["name"]]["configMap"]["name"] == "segcheck-endpoints"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_endpoints_configmap_is_in_segchecks_format() -> None:
    data = one(rendered(BASE), "ConfigMap", "segcheck-endpoints")["data"]
    assert set(data) == {"endpoints.yaml"}
    shipped = yaml.safe_load(data["endpoints.yaml"])
    endpoints = parse_endpoints(shipped)
    assert [e.name for e in endpoints] == ["db"]
    assert shipped == yaml.safe_load((ROOT / "examples" / "seed" / "40-endpoints.yaml").read_text())


def test_service_and_servicemonitor_reach_the_agent_pods() -> None:
    objects = rendered(BASE)
    pod_labels = one(objects, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9470, "targetPort": "metrics", "protocol": "TCP"}]
    monitor = one(objects, "ServiceMonitor")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["labels"][monitor["jobLabel"]] == "segcheck"  # job="segcheck" in rules/dashboards
    [endpoint] = monitor["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"} \
        in endpoint["relabelings"]


def test_openshift_overlay_adds_monitoring_label_scc_and_selinux() -> None:
    objects = rendered(OPENSHIFT)
    assert one(objects, "Namespace")["metadata"]["labels"]["openshift.io/cluster-monitoring"] == "true"
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["seLinuxOptions"] == {"type": "spc_t"}
    assert agent_container(objects)["securityContext"]["capabilities"]["add"] == ["NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "DAC_OVERRIDE"]
    use = one(objects, "ClusterRole", "segcheck-agent-scc")["rules"]
    assert use == [{"apiGroups": ["security.openshift.io"], "resources": ["securitycontextconstraints"],
                    "resourceNames": ["segcheck-agent"], "verbs": ["use"]}]
    binding = one(objects, "RoleBinding", "segcheck-agent-scc")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "segcheck", "namespace": "segcheck"}]
    prometheus = one(objects, "RoleBinding", "prometheus-k8s")
    assert prometheus["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "openshift-monitoring"}]


def test_scc_admits_the_agent_pod_and_nothing_broader() -> None:
    objects = rendered(OPENSHIFT)
    scc = one(objects, "SecurityContextConstraints")
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    context = agent_container(objects)["securityContext"]
    assert sorted(scc["allowedCapabilities"]) == sorted(context["capabilities"]["add"])
    assert scc["allowHostPID"] is pod["hostPID"] is True
    assert scc["allowHostDirVolumePlugin"] is True
    assert not any(scc[k] for k in ("allowPrivilegedContainer", "allowHostNetwork", "allowHostIPC", "allowHostPorts",
                                     "allowPrivilegeEscalation"))
    assert scc["runAsUser"]["type"] == "RunAsAny"  # uid 0
    assert scc["readOnlyRootFilesystem"] is context["readOnlyRootFilesystem"] is True
    volume_types = {next(k for k in v if k != "name") for v in pod["volumes"]}
    assert volume_types <= set(scc["volumes"]), volume_types - set(scc["volumes"])
    assert "runtime/default" in scc["seccompProfiles"]
    assert scc["users"] == [] and scc["groups"] == []
