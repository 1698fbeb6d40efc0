"""Reading the declared world: where attachments get their addresses, and what counts as bad input."""

from __future__ import annotations

import ipaddress
import json

import pytest
from click.testing import CliRunner

from segcheck.agent.adapters.manifest_files import load_inventory, parse_yaml
from segcheck.agent.core.manifests import RawObject, build_inventory
from segcheck.agent.core.model import AttachmentKind, Ref
from segcheck.agent.core.selectors import LabelSelector, Operator, Requirement, SelectorError, parse_selector
from segcheck.cli.main import cli
from tests.builders import nad, pod

NET = Ref("default", "tenantblue")


def build(*objects):
    return build_inventory([RawObject("t", o) for o in objects], parse_yaml)


def test_network_status_wins_over_the_requested_ips():
    p = pod("c", "192.168.200.10")
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = json.dumps([
        {"name": "ovn-kubernetes", "interface": "eth0", "ips": ["10.128.0.5"], "default": True},
        {"name": "default/tenantblue", "interface": "net1", "ips": ["192.168.200.77"], "mac": "0A:58:C0:A8:C8:4D"}])
    inv, errors = build(nad(), p)
    assert not errors
    [att] = inv.attachments
    assert (att.network, att.interface, att.mac, att.ips) == (NET, "net1", "0a:58:c0:a8:c8:4d",
                                                              (ipaddress.ip_address("192.168.200.77"),))


def test_short_networks_annotation_form():
    p = pod("c", None)
    p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = "default/tenantblue@net7"
    inv, _ = build(nad(), p)
    assert inv.attachments[0].interface == "net7" and inv.attachments[0].ips == ()


def vm_objects(network_data: str):
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm1", "namespace": "default"},
          "spec": {"template": {"metadata": {"labels": {"app": "vm1"}}, "spec": {
              "domain": {"devices": {"interfaces": [{"name": "underlay", "bridge": {}, "macAddress": "02:00:00:00:00:99"}]}},
              "networks": [{"name": "underlay", "multus": {"networkName": "tenantblue"}}],
              "volumes": [{"name": "ci", "cloudInitNoCloud": {"networkData": network_data}}]}}}}
    return vm


def test_vm_addresses_from_cloud_init_v2_and_v1():
    inv, _ = build(nad(), vm_objects("version: 2\nethernets:\n  eth0:\n    addresses: [192.168.200.20/24]\n"))
    [att] = inv.attachments
    assert att.kind is AttachmentKind.VM and str(att.ip) == "192.168.200.20" and att.label_map == {"app": "vm1"}
    v1 = ("version: 1\nconfig:\n- type: physical\n  name: eth0\n  mac_address: '02:00:00:00:00:99'\n"
          "  subnets:\n  - type: static\n    address: 192.168.200.21/24\n")
    inv, _ = build(nad(), vm_objects(v1))
    assert str(inv.attachments[0].ip) == "192.168.200.21"


def test_vmi_status_wins_and_virt_launcher_pod_is_not_a_second_workload():
    vm = vm_objects("version: 2\nethernets:\n  eth0:\n    addresses: [192.168.200.20/24]\n")
    vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
           "metadata": {"name": "vm1", "namespace": "default", "labels": {"app": "vm1", "extra": "yes"}},
           "spec": vm["spec"]["template"]["spec"],
           "status": {"nodeName": "w1", "interfaces": [{"name": "underlay", "mac": "02:00:00:00:00:99",
                                                        "ipAddresses": ["192.168.200.30"]}]}}
    launcher = pod("virt-launcher-vm1-abcde", "192.168.200.30", labels={"kubevirt.io": "virt-launcher",
                                                                        "vm.kubevirt.io/name": "vm1"})
    inv, errors = build(nad(), vm, vmi, launcher)
    assert not errors
    [att] = inv.attachments
    assert (att.ref.name, str(att.ip), att.node, att.label_map["extra"]) == ("vm1", "192.168.200.30", "w1", "yes")


def test_list_kinds_and_json_files(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [nad(), pod("c", "192.168.200.10")]}))
    inv, errors = load_inventory([tmp_path])
    assert not errors and len(inv.attachments) == 1 and NET in inv.networks


@pytest.mark.parametrize("mutate,needle", [
    (lambda o: o["spec"].update(config="{not json"), "spec.config: invalid JSON"),
    (lambda o: o["spec"].update(config=json.dumps({"name": "x", "vlanID": 9999})), "vlanID"),
    (lambda o: o.update(kind="Gadget"), "unsupported kind 'Gadget'"),
    (lambda o: o["metadata"].pop("name"), "metadata.name"),
])
def test_bad_objects_are_named_with_their_problem(mutate, needle):
    obj = nad()
    mutate(obj)
    _, errors = build(obj)
    assert len(errors) == 1 and needle in str(errors[0]), errors


def test_duplicate_objects_and_keys_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("kind: Namespace\napiVersion: v1\nmetadata: {name: x}\n")
    (tmp_path / "b.yaml").write_text("kind: Namespace\napiVersion: v1\nmetadata: {name: x}\n")
    (tmp_path / "c.yaml").write_text("kind: Namespace\nkind: Pod\n")
    _, errors = load_inventory([tmp_path])
    text = "\n".join(map(str, errors))
    assert "defined twice" in text and "duplicate key 'kind'" in text


def test_missing_path_is_a_usage_error():
    result = CliRunner().invoke(cli, ["matrix", "-f", "/nonexistent/seg"])
    assert result.exit_code == 2 and "no such file or directory" in result.output


# --- label selectors, as metav1.LabelSelector defines them ---------------------------------------------------

@pytest.mark.parametrize("selector,labels,matches", [
    ({}, {}, True),
    ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "y"}, True),
    ({"matchLabels": {"app": "a"}}, {}, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}, {"app": "b"}, True),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}, {}, False),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {}, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {"app": "a"}, False),
    ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {"app": ""}, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {"app": "a"}, False),
    ({"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "a"}, False),
])
def test_selector_semantics(selector, labels, matches):
    assert parse_selector(selector).matches(labels) is matches


@pytest.mark.parametrize("selector", [
    {"matchExpressions": [{"key": "app", "operator": "In", "values": []}]},
    {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]},
    {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["a"]}]},
    {"matchLabels": {"bad key!": "a"}},
    {"matchLabels": {"app": "-bad"}},
    {"matchLabel": {"app": "a"}},
    ["not", "a", "mapping"],
])
def test_invalid_selectors_are_refused(selector):
    with pytest.raises(SelectorError):
        parse_selector(selector)


def test_selector_renders_like_kubectl():
    sel = LabelSelector((("app", "a"),), (Requirement("tier", Operator.NOT_IN, frozenset({"db"})),))
    assert str(sel) == "app=a,tier notin (db)"
