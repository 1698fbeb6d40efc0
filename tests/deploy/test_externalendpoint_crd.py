"""The ExternalEndpoint custom resource: its OpenAPI schema refuses at admission what the parser refuses.

`admit()` does what the API server does with a create, as far as this schema needs: defaults applied, unknown
fields refused (kubectl's strict field validation), the OpenAPI constraints checked (JSON schema), and
`x-kubernetes-list-type: map` keys unique. The schema must be structural and its patterns RE2 (Go's regexp).
"""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from segcheck.agent.core.external_endpoints import parse_external_endpoint
from segcheck.agent.core.fields import InvalidObject
from segcheck.agent.core.model import PostgresCheck, Protocol, Ref

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "deploy" / "daemonset" / "base" / "crd-externalendpoints.yaml").read_text())
[VERSION] = CRD["spec"]["versions"]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
EXAMPLE = yaml.safe_load((ROOT / "examples" / "cluster" / "db-externalendpoint.yaml").read_text())
Obj = dict[str, Any]


def _defaults(schema: Obj, value: Any) -> None:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _defaults(sub, value[key])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _defaults(schema["items"], item)


def _strict(schema: Obj) -> Obj:
    out = {k: _strict(v) if isinstance(v, dict) else v for k, v in schema.items() if not k.startswith("x-kubernetes")}
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        out.setdefault("additionalProperties", False)
    if schema.get("type") == "object" and "properties" not in schema and schema.get("maxProperties") == 0:
        out["additionalProperties"] = False
    return out


def _list_map_errors(schema: Obj, value: Any, path: str) -> list[str]:
    errors = []
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += _list_map_errors(sub, value[key], f"{path}.{key}")
    elif isinstance(value, list):
        if schema.get("x-kubernetes-list-type") == "map":
            keys = [tuple(item.get(k) for k in schema["x-kubernetes-list-map-keys"]) for item in value]
            errors += [f"{path}: duplicate entry {k}" for k in {k for k in keys if keys.count(k) > 1}]
        for i, item in enumerate(value):
            errors += _list_map_errors(schema.get("items", {}), item, f"{path}[{i}]")
    return errors


VALIDATOR = jsonschema.Draft7Validator(_strict(SCHEMA))


def admit(obj: Obj) -> tuple[list[str], Obj]:
    """The errors the API server would answer a create with, and the object as it would store it."""
    stored = copy.deepcopy(obj)
    _defaults(SCHEMA, stored)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(stored)]
    return errors + _list_map_errors(SCHEMA, stored, ""), stored


def with_spec(**changes: Any) -> Obj:
    obj = copy.deepcopy(EXAMPLE)
    obj["spec"].update(changes)
    return obj


def port(**fields: Any) -> list[Obj]:
    return [{"port": 5432, **fields}]


def test_the_schema_is_structural_and_its_patterns_are_re2() -> None:
    def walk(schema: Obj, path: str) -> None:
        assert "type" in schema, f"{path}: structural schemas give every node a type"
        if "pattern" in schema:
            assert not re.search(r"\(\?[=!<]|\\[1-9]", schema["pattern"]), f"{path}: lookaround or backreference"
            re.compile(schema["pattern"])
        for key, sub in schema.get("properties", {}).items():
            walk(sub, f"{path}.{key}")
        if "items" in schema:
            walk(schema["items"], f"{path}[]")

    walk(SCHEMA, "")
    assert CRD["spec"]["scope"] == "Namespaced" and CRD["spec"]["group"] == "segcheck.io"
    assert VERSION["name"] == "v1alpha1" and VERSION["served"] and VERSION["storage"]


def test_the_example_is_admitted_defaulted_and_parsed() -> None:
    errors, stored = admit(EXAMPLE)
    assert errors == []
    endpoint = parse_external_endpoint(stored)
    assert (endpoint.name, endpoint.network, [str(ip) for ip in endpoint.ips]) == (
        "db", Ref("default", "tenantblue"), ["192.168.200.5"])
    assert endpoint.check_for(5432, Protocol.TCP) == PostgresCheck("app", "appdb", "prefer")
    _, defaulted = admit(with_spec(ports=port(check={"http": {}})))
    assert defaulted["spec"]["ports"] == [{"port": 5432, "protocol": "TCP", "check": {"http": {"path": "/"}}}]


GOOD = {
    "ipv4 with prefix": with_spec(ips=["192.168.200.5/24"]),
    "ipv6": with_spec(ips=["fd00::5", "fd00:0:0:1::5/64", "::1"]),
    "no network (every network)": {k: v for k, v in EXAMPLE.items() if k != "spec"} | {
        "spec": {"ips": ["10.1.2.3"]}},
    "network in another namespace": with_spec(network="infra/tenantblue"),
    "tcp check, udp port": with_spec(ports=[{"port": 53, "protocol": "UDP"}, {"port": 53, "check": {"tcp": {}}}]),
    "http check": with_spec(ports=port(check={"http": {"path": "/healthz?full=1"}})),
    "postgres verify-full": with_spec(ports=port(check={"postgres": {"user": "u", "database": "d",
                                                                     "sslmode": "verify-full"}})),
}
BAD = {
    "octet above 255": with_spec(ips=["192.168.200.256"]),
    "ipv4 prefix 33": with_spec(ips=["10.0.0.0/33"]),
    "ipv6 prefix 129": with_spec(ips=["fd00::5/129"]),
    "three octets": with_spec(ips=["10.1.2"]),
    "leading zero": with_spec(ips=["010.1.2.3"]),
    "ipv6 zone": with_spec(ips=["fe80::1%eth0"]),
    "a hostname": with_spec(ips=["db.example.com"]),
    "no address": with_spec(ips=[]),
    "port 0": with_spec(ports=port(port=0)),
    "port 65536": with_spec(ports=port(port=65536)),
    "port as a string": with_spec(ports=[{"port": "5432"}]),
    "protocol ICMP": with_spec(ports=port(protocol="ICMP")),
    "the same port twice": with_spec(ports=[{"port": 5432}, {"port": 5432, "protocol": "TCP"}]),
    "two checks on one port": with_spec(ports=port(check={"tcp": {}, "http": {}})),
    "an empty check": with_spec(ports=port(check={})),
    "an unknown check": with_spec(ports=port(check={"mysql": {}})),
    "postgres without user": with_spec(ports=port(check={"postgres": {"database": "d"}})),
    "postgres bad sslmode": with_spec(ports=port(check={"postgres": {"user": "u", "database": "d",
                                                                     "sslmode": "strict"}})),
    "tcp with options": with_spec(ports=port(check={"tcp": {"timeout": 1}})),
    "http path not absolute": with_spec(ports=port(check={"http": {"path": "healthz"}})),
    "http path with a space": with_spec(ports=port(check={"http": {"path": "/a b"}})),
    "unknown spec field": with_spec(address="192.168.200.5"),
    "network not a name": with_spec(network="Tenant_Blue"),
}


@pytest.mark.parametrize("case", GOOD, ids=str)
def test_good_endpoints_are_admitted_and_parsed(case: str) -> None:
    errors, stored = admit(GOOD[case])
    assert errors == []
    parse_external_endpoint(stored)


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_endpoints_are_refused_at_admission_and_by_the_parser(case: str) -> None:
    errors, stored = admit(BAD[case])
    assert errors, "admitted"
    with pytest.raises(InvalidObject):  # the file form has no admission: the parser refuses the same
        parse_external_endpoint(stored)


IP_PATTERN = re.compile(SCHEMA["properties"]["spec"]["properties"]["ips"]["items"]["pattern"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.ip_addresses(v=4).map(lambda a: (a, 32)), st.ip_addresses(v=6).map(lambda a: (a, 128))),
       st.booleans(), st.integers(min_value=0, max_value=128))
def test_the_address_pattern_admits_every_address_and_prefix(address: Any, with_prefix: bool, prefix: int) -> None:
    ip, longest = address
    text = f"{ip}/{prefix % (longest + 1)}" if with_prefix else str(ip)
    assert IP_PATTERN.match(text), text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF.:/%", min_size=1, max_size=43))
def test_whatever_the_address_pattern_admits_the_parser_reads(text: str) -> None:
    if IP_PATTERN.match(text):
        ipaddress.ip_interface(text)
