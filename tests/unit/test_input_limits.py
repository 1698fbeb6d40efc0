"""Untrusted manifests: every parse problem of any depth, key type or number size is a named error (exit 2),
never a traceback; aliases, nesting and size are bounded; a YAML error costs only its document."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from segcheck.agent.adapters import manifest_files
from segcheck.agent.adapters.manifest_files import load_inventory, read_objects
from segcheck.agent.core.enforcement import network_findings
from segcheck.agent.core.findings import FindingKind
from segcheck.agent.core.input_limits import MAX_DEPTH, check_shape
from segcheck.agent.core.manifests import RawObject, build_inventory
from segcheck.agent.core.model import Ref
from segcheck.cli.main import cli
from tests.builders import endpoints, inventory, mnp, nad, namespace, pod

DEEP = 100_000


def run_matrix(*paths):
    result = CliRunner().invoke(cli, ["matrix", *[a for p in paths for a in ("-f", str(p))], "-o", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def errors_of(*texts, tmp_path, suffix=".yaml"):
    for i, text in enumerate(texts):
        (tmp_path / f"f{i}{suffix}").write_text(text)
    _, errors = load_inventory([tmp_path])
    return [str(e) for e in errors]


# --- regressions of the defects found by the adversarial set ------------------------------------------------

@pytest.mark.parametrize("suffix,text", [
    (".json", "[" * DEEP + "]" * DEEP),
    (".yaml", "[" * DEEP + "]" * DEEP),
    (".yaml", "- " * DEEP + "x\n"),
    (".yaml", "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 300)) + "  " * 300 + "c: 1\n"),
])
def test_deep_nesting_is_exit_2_naming_the_file(tmp_path, suffix, text):
    (tmp_path / f"deep{suffix}").write_text(text)
    result = run_matrix(tmp_path)
    assert result.exit_code == 2 and f"deep{suffix}" in result.output, result.output
    assert "deeper than" in result.output or "exceeded maximum nesting depth" in result.output, result.output


def embedded(where: str, text: str):
    if where == "networks":
        p = pod("deep", None)
        p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = text
        return p
    if where == "network-status":
        p = pod("deep", "192.168.200.10")
        p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"] = text
        return p
    n = nad("deep")
    n["spec"]["config"] = text
    return n


@pytest.mark.parametrize("where", ["networks", "network-status", "config"])
@pytest.mark.parametrize("text,needle", [
    ("[" * DEEP + "]" * DEEP, "nested deeper"),
    ("[" + "9" * 5000 + "]", "5,000 digits"),
    (json.dumps([{"name": "x", "a": [[[[[[[[[[[[1]]]]]]]]]]]] * 1}]).replace("1]", "1" * 60 + "]"), "digits"),
])
def test_embedded_json_is_bounded_and_named(where, text, needle):
    _, errors = build_inventory([RawObject("f.yaml", embedded(where, text))], manifest_files.parse_yaml)
    [err] = errors
    assert str(err).startswith("f.yaml: ") and "deep" in err.object and needle in err.message, err


@pytest.mark.parametrize("text,needle", [
    ("? [a, b]\n: 1\n", "mapping key must be a plain value"),
    ("? {a: 1}\n: 1\n", "mapping key must be a plain value"),
    ("kind: Namespace\napiVersion: v1\nmetadata:\n  name: x\n  labels:\n    a: " + "9" * 5000 + "\n", "5,000 digits"),
    ("kind: Namespace\napiVersion: v1\nmetadata:\n  name: x\n  labels:\n    1: a\n", "is a int, not a string"),
    ("kind: Namespace\napiVersion: v1\nmetadata:\n  name: x\n  labels:\n    a: [1]\n", "label value must be a string"),
    ("kind: Namespace\napiVersion: v1\nmetadata: !!python/object:os.system {}\n", "unsupported YAML tag"),
    ("a: &a [*a]\n", "recursive YAML alias"),
])
def test_keys_numbers_and_tags_are_named_errors(tmp_path, text, needle):
    errors = errors_of(text, tmp_path=tmp_path)
    assert len(errors) == 1 and needle in errors[0], errors


def billion_laughs(levels: int = 9) -> str:
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lol\n  labels:\n    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for prev, name in zip("abcdefghij", "bcdefghijk"[:levels - 1]):
        text += f"    {name}: &{name} [{', '.join(['*' + prev] * 9)}]\n"
    return text


def test_billion_laughs_is_refused_without_expanding(tmp_path):
    errors = errors_of(billion_laughs(), tmp_path=tmp_path)
    assert len(errors) == 1 and "Pod lol" in errors[0] and "YAML aliases expand" in errors[0], errors


def test_small_alias_use_and_merge_keys_still_work(tmp_path):
    text = ("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a, labels: &l {team: x}}}\n"
            "- apiVersion: v1\n  kind: Namespace\n  metadata:\n    name: b\n    labels:\n      <<: *l\n      env: prod\n")
    (tmp_path / "ns.yaml").write_text(text)
    inv, errors = load_inventory([tmp_path])
    assert not errors and inv.namespace_labels("b")["team"] == "x" and inv.namespace_labels("b")["env"] == "prod"


def test_a_yaml_error_loses_only_its_document(tmp_path):
    good = yaml.safe_dump(namespace("kept-before"))
    later = yaml.safe_dump(namespace("kept-after"))
    (tmp_path / "all.yaml").write_text(f"{good}---\nkind: Namespace\nmetadata: {{name: [broken\n---\n{later}"
                                       "---\nkind: Namespace\nkind: Pod\n")
    inv, errors = load_inventory([tmp_path])
    assert set(inv.namespaces) == {"kept-before", "kept-after"}
    text = [str(e) for e in errors]
    assert len(text) == 2, text
    assert text[0].startswith(f"{tmp_path / 'all.yaml'}#2: Namespace ?: invalid YAML at line 8")
    assert text[1].startswith(f"{tmp_path / 'all.yaml'}#4: ") and "duplicate key 'kind'" in text[1]


def test_documents_are_split_at_markers_only():
    text = "# c\n---\nx: |\n  --- not a marker\n...\n%YAML 1.1\n---\ny: 2\n---\n"
    assert [(d.first_line, d.text) for d in manifest_files._documents(text)] == [
        (1, "---\nx: |\n  --- not a marker\n"), (5, "%YAML 1.1\n---\ny: 2\n"), (8, "---\n")]


def test_oversized_document_and_input_are_refused_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_files, "MAX_YAML_DOCUMENT_BYTES", 1000)
    monkeypatch.setattr(manifest_files, "MAX_INPUT_BYTES", 3000)
    big = yaml.safe_dump({**namespace("big"), "data": {"x": "y" * 2000}})
    (tmp_path / "a.yaml").write_text(f"{yaml.safe_dump(namespace('small'))}---\n{big}")
    (tmp_path / "b.json").write_text(json.dumps({**namespace("json"), "data": {"x": "y" * 2000}}))
    objects, errors = read_objects([tmp_path])
    assert [o.data["metadata"]["name"] for o in objects] == ["small"]
    text = [str(e) for e in errors]
    assert "a.yaml#2: Namespace big: document of" in text[0] and "split it" in text[0]
    assert "b.json: -: cannot read:" in text[1] and "the file is skipped" in text[1]


# --- fuzz categories, as properties ---------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=30)
KINDS = ["Pod", "NetworkAttachmentDefinition", "MultiNetworkPolicy", "VirtualMachine", "VirtualMachineInstance",
         "Namespace", "ExternalEndpoints", "List", "NetworkPolicy", "Service", "Gadget"]


def _is_bounded(value, depth=0):
    if isinstance(value, dict):
        return depth < MAX_DEPTH and all(_is_bounded(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return depth < MAX_DEPTH and all(_is_bounded(v, depth + 1) for v in value)
    return not isinstance(value, int) or isinstance(value, bool) or -(1 << 63) <= value < (1 << 64)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), body=st.dictionaries(st.sampled_from(["metadata", "spec", "items", "status"]),
                                                         json_values, max_size=4))
def test_any_json_shaped_object_is_parsed_or_named(kind, body):
    obj = {"apiVersion": "v1", "kind": kind, **body}
    _, errors = build_inventory([RawObject("f.yaml", obj)], manifest_files.parse_yaml)
    assert all(str(e).startswith("f.yaml") and e.message for e in errors)


@settings(max_examples=150, deadline=None)
@given(value=json_values, depth=st.integers(0, 3 * MAX_DEPTH))
def test_check_shape_refuses_exactly_what_exceeds_the_limits(value, depth):
    for _ in range(depth):
        value = [value]
    assert (check_shape(value) is None) == _is_bounded(value)


yaml_junk = st.text(alphabet=st.sampled_from(list("[]{}:,-?&*!|>'\"#%@` \n\tab01.<")), max_size=200)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_junk)
def test_any_text_is_loaded_or_named(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("junk")
    (folder / "junk.yaml").write_text(text)
    (folder / "junk.json").write_text(text)
    _, errors = load_inventory([folder])
    assert all(e.source.split("#")[0].endswith(("junk.yaml", "junk.json")) or "items[" in e.source for e in errors)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(levels=st.integers(2, 12), width=st.integers(2, 12))
def test_alias_chains_are_bounded_by_their_expansion(tmp_path_factory, levels, width):
    folder = tmp_path_factory.mktemp("lol")
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    (folder / "lol.yaml").write_text("\n".join(lines) + "\n")
    _, errors = read_objects([folder])
    size = 1 + width  # a0 written out, then each level `width` copies of the one below
    sizes = [size]
    for _ in range(1, levels):
        size = 1 + width * size
        sizes.append(size)
    written = 1 + 2 * levels + width  # the mapping, its keys, one sequence per level, a0's scalars
    added = 1 + levels + sum(sizes) - written
    assert any("YAML aliases expand" in str(e) for e in errors) == (added > manifest_files.MAX_ALIAS_EXPANSION)


# --- nothing the user gave is dropped without a word ----------------------------------------------------------

def write_all(tmp_path, *objects):
    (tmp_path / "objects.yaml").write_text(yaml.safe_dump_all(list(objects)))
    return run_matrix(tmp_path)


def test_workloads_and_policies_naming_a_missing_nad_are_findings(tmp_path):
    result = write_all(tmp_path, pod("a", "192.168.200.10"), mnp("p", {"podSelector": {}, "policyTypes": ["Ingress"]}),
                       endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.5"]}))
    assert result.exit_code == 1, result.output
    assert "nad-missing: default/a, ext:db attach to default/tenantblue" in result.output
    assert "policy-for-unknown-network: default/p" in result.output


@pytest.mark.parametrize("second", [
    pod("b", "192.168.200.10"),
    endpoints({"name": "db", "network": "default/tenantblue", "ips": ["192.168.200.10"]}),
    endpoints({"name": "db", "ips": ["192.168.200.10"]}),  # on every network
])
def test_one_address_held_twice_is_a_finding(second):
    inv = inventory(nad(), pod("a", "192.168.200.10"), second)
    findings = network_findings(inv, Ref("default", "tenantblue"))
    [conflict] = [f for f in findings if f.kind is FindingKind.ADDRESS_CONFLICT]
    assert conflict.message.startswith("192.168.200.10 is held by default/a, ") and conflict.severity.value == "error"


def test_the_same_address_on_two_networks_is_no_conflict():
    inv = inventory(nad(), nad("tenantred"), pod("a", "192.168.200.10"), pod("b", "192.168.200.10", network="tenantred"))
    assert not [f for net in inv.networks for f in network_findings(inv, net) if f.kind is FindingKind.ADDRESS_CONFLICT]


def test_kinds_that_do_not_bear_on_secondary_networks_are_skipped_with_a_notice(tmp_path):
    other = [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "default"},
              "spec": {"podSelector": {}}},
             {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "default"}},
             {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1", "namespace": "default"}},
             {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d2", "namespace": "default"}},
             {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}}]
    result = write_all(tmp_path, nad(), pod("a", "192.168.200.10"), *other)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("notice:")]
    assert lines == ["notice: skipped 2 Deployment (default/d1, default/d2): it does not bear on secondary networks",
                     "notice: skipped 1 NetworkPolicy (default/np): it applies to the default network only",
                     "notice: skipped 1 Secret (default/s): it does not bear on secondary networks",
                     "notice: skipped 1 Service (default/svc): it does not bear on secondary networks"]
    assert "default-network-only: default/np: a NetworkPolicy applies to the cluster's default network only" in result.output


@pytest.mark.parametrize("obj,needle", [
    ({"apiVersion": "v1", "kind": "Pdo", "metadata": {"name": "x"}}, "unsupported kind 'Pdo' in v1"),
    ({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinitions", "metadata": {"name": "x"}},
     "unsupported kind 'NetworkAttachmentDefinitions'"),
    ({"kind": "Deployment", "metadata": {"name": "x"}}, "without an apiVersion"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}}, "metadata.name"),
])
def test_a_bad_object_of_a_skipped_kind_is_still_an_error(obj, needle):
    _, errors = build_inventory([RawObject("f.yaml", obj)], manifest_files.parse_yaml)
    assert len(errors) == 1 and needle in str(errors[0]), errors


def _nodes(node) -> int:
    stack, count = [node], 0
    while stack:
        n = stack.pop()
        count += 1
        if isinstance(n, yaml.MappingNode):
            stack.extend(x for pair in n.value for x in pair)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return count


@settings(max_examples=200, deadline=None)
@given(value=json_values, flow=st.sampled_from([None, True, False]))
def test_the_node_bound_holds_before_parsing(value, flow):
    text = yaml.safe_dump(value, default_flow_style=flow)
    bound = 1 + 2 * sum(text.count(c) for c in manifest_files._NODE_STARTS)
    assert _nodes(yaml.compose(text, Loader=yaml.SafeLoader)) <= bound


def test_a_dense_document_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest_files, "MAX_YAML_NODES", 1000)
    errors = errors_of("a: [" + ",".join(["1"] * 600) + "]\n", tmp_path=tmp_path)
    assert len(errors) == 1 and "may hold more than 1,000 values" in errors[0] and "give it as JSON" in errors[0]
