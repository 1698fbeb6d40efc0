"""External endpoints in both forms (the ExternalEndpoint resource, the ExternalEndpoints file list), their
per-port checks, and how they enter the inventory: one name once, bad objects named, good ones kept."""

from __future__ import annotations

from typing import Any

import pytest
from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.external_endpoints import parse_endpoints, parse_external_endpoint, parse_port_check
from segcheck.agent.core.fields import InvalidObject
from segcheck.agent.core.manifests import RawObject, build_inventory
from segcheck.agent.core.model import HttpCheck, PostgresCheck, Protocol, Ref, ServicePort, TcpCheck
from segcheck.agent.lab.postgres import APP_DATABASE, APP_ROLE

from tests.nb_builders import SEED

API = "segcheck.io/v1alpha1"


def resource(name: str = "db", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "ExternalEndpoint", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ips": ["192.168.200.5"], **spec}}


def file_form(*endpoints: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "ExternalEndpoints", "metadata": {"name": "x"}, "spec": {"endpoints": list(endpoints)}}


@pytest.mark.parametrize("raw,want", [
    ({"tcp": {}}, TcpCheck()),
    ({"http": {}}, HttpCheck("/")),
    ({"http": {"path": "/healthz"}}, HttpCheck("/healthz")),
    ({"postgres": {"user": "app", "database": "appdb"}}, PostgresCheck("app", "appdb", "prefer")),
    ({"postgres": {"user": "u", "database": "d", "sslmode": "require"}}, PostgresCheck("u", "d", "require")),
])
def test_port_checks(raw: dict[str, Any], want: object) -> None:
    assert parse_port_check(raw, "check") == want


@pytest.mark.parametrize("raw,message", [
    ({}, "exactly one"), ({"tcp": {}, "http": {}}, "exactly one"), ({"smtp": {}}, "unknown check"),
    ({"postgres": {"database": "d"}}, "postgres.user"), ({"postgres": {"user": "u", "database": "d", "ssl": 1}}, "ssl"),
    ({"postgres": {"user": "u", "database": "d", "sslmode": "on"}}, "sslmode"),
    ({"postgres": {"user": "x" * 64, "database": "d"}}, "63"), ({"http": {"path": "x"}}, "absolute path"),
    ({"http": {"path": "/a\r\nHost: evil"}}, "absolute path"), ({"tcp": {"retries": 3}}, "retries"),
])
def test_bad_port_checks_are_refused_with_the_field_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidObject, match=message):
        parse_port_check(raw, "check")


def test_the_resource_names_the_endpoint_and_resolves_its_network_in_its_namespace() -> None:
    endpoint = parse_external_endpoint(resource("web", "infra", network="tenantblue", description="gateway",
                                                ports=[{"port": 443, "check": {"http": {"path": "/"}}},
                                                       {"port": 53, "protocol": "UDP"}]))
    assert (endpoint.key, endpoint.network, endpoint.description) == ("ext:web", Ref("infra", "tenantblue"), "gateway")
    assert endpoint.ports == (ServicePort(443, Protocol.TCP, HttpCheck("/")), ServicePort(53, Protocol.UDP))
    assert endpoint.check_for(443, Protocol.TCP) == HttpCheck("/")
    assert endpoint.check_for(53, Protocol.UDP) is None and endpoint.check_for(443, Protocol.UDP) is None
    assert parse_external_endpoint(resource(network="default/tenantblue")).network == Ref("default", "tenantblue")
    assert parse_external_endpoint(resource()).network is None  # every network


@pytest.mark.parametrize("spec,message", [
    ({"ips": []}, "at least one"), ({"ips": ["10.0.0.300"]}, "invalid IP"), ({"ips": ["fe80::1%eth0"]}, "zone"),
    ({"ports": [{"port": 0}]}, "port must be"), ({"ports": [{"port": 5432}, {"port": 5432}]}, "twice"),
    ({"ports": [{"port": 5432, "protcol": "TCP"}]}, "protcol"), ({"network": "a/b/c"}, "NAMESPACE/NAME"),
    ({"adress": "x"}, "adress"),
])
def test_bad_resources_are_refused_with_the_field_named(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidObject, match=message):
        parse_external_endpoint(resource(**spec))


def test_the_file_form_carries_checks_too_and_the_seed_declares_the_labs_database() -> None:
    [db] = parse_endpoints(file_form({"name": "db", "ips": ["10.0.0.5"], "network": "tenantblue",
                                      "ports": [{"port": 5432, "check": {"postgres": {"user": "a", "database": "b"}}}]}))
    assert db.network == Ref("default", "tenantblue") and db.check_for(5432, Protocol.TCP) == PostgresCheck("a", "b")
    inventory, errors = load_inventory([SEED])
    assert errors == []
    [seed_db] = inventory.externals
    assert seed_db.check_for(5432, Protocol.TCP) == PostgresCheck(APP_ROLE, APP_DATABASE, "prefer")


def test_both_forms_enter_the_inventory_and_a_name_declared_twice_is_an_error_for_that_object() -> None:
    objects = [RawObject("a.yaml", file_form({"name": "db", "ips": ["10.0.0.5"]})),
               RawObject("api", resource("web", "infra")),
               RawObject("api", resource("db", "other")),  # ext:db again, from another namespace
               RawObject("api", resource("bad", ips=["nope"]))]
    inventory, errors = build_inventory(objects, None)
    assert sorted(e.key for e in inventory.externals) == ["ext:db", "ext:web"]
    assert [(e.source, e.object) for e in errors] == [("api", "ExternalEndpoint other/db"),
                                                      ("api", "ExternalEndpoint default/bad")]
    assert "declared twice" in errors[0].message and "invalid IP" in errors[1].message
