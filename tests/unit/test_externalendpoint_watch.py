"""ExternalEndpoint objects read by list+watch: the real client against the fake API server (list,
resourceVersion, watch), through the agent's KubernetesSource into the inventory. The file form still works
beside it, and a cluster without the CRD still works."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from segcheck.agent.adapters.kube import Backoff, KubeSource
from segcheck.agent.core.model import HttpCheck, PostgresCheck, Protocol, Ref
from segcheck.agent.runtime.declared import KubernetesSource
from tests.fake_kube import FakeKubeServer
from tests.fake_kube.seed import seeded_server

ROOT = Path(__file__).resolve().parents[2]
DB = yaml.safe_load((ROOT / "examples" / "cluster" / "db-externalendpoint.yaml").read_text())
RESOURCE = "externalendpoints.segcheck.io"
DEADLINE = 10.0


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    with seeded_server() as fake:
        yield fake


def source_for(server: FakeKubeServer, endpoint_files: list[Path] | None = None) -> KubernetesSource:
    kube = KubeSource(client.ApiClient(client.Configuration(host=server.url)), watch_timeout_seconds=2,
                      backoff=Backoff(initial=0.05, factor=2.0, cap=0.5, jitter=0.5), slow_retry_seconds=0.3)
    return KubernetesSource(kube, endpoint_files or [])


@pytest.fixture
def make_source(server: FakeKubeServer) -> Iterator[Any]:
    started: list[KubernetesSource] = []

    def make(endpoint_files: list[Path] | None = None) -> KubernetesSource:
        source = source_for(server, endpoint_files)
        source.start(lambda: None)
        started.append(source)
        return source

    yield make
    for source in started:
        source.stop()


def externals(source: KubernetesSource) -> dict[str, Any]:
    return {e.key: e for e in source.inventory()[0].externals}


def wait_for(source: KubernetesSource, predicate: Any) -> None:
    assert source.kube.wait_until(lambda: predicate(source.inventory()), DEADLINE), source.inventory()


def test_listed_endpoints_are_in_the_inventory_with_their_checks(server, make_source) -> None:
    server.create(DB)
    source = make_source()
    assert source.kube.wait_for_sync(DEADLINE)
    [db] = source.inventory()[0].externals
    assert (db.key, db.network, str(db.ip)) == ("ext:db", Ref("default", "tenantblue"), "192.168.200.5")
    assert db.check_for(5432, Protocol.TCP) == PostgresCheck("app", "appdb", "prefer")
    assert source.kube.health()[RESOURCE].synced


def test_created_updated_and_deleted_endpoints_arrive_through_the_watch_without_relisting(server, make_source) -> None:
    source = make_source()
    assert source.kube.wait_for_sync(DEADLINE) and externals(source) == {}
    server.create(DB)
    wait_for(source, lambda inv: [e.key for e in inv[0].externals] == ["ext:db"])
    web = copy.deepcopy(DB)
    web["metadata"]["name"] = "web"
    web["spec"].update(ips=["192.168.200.6"], ports=[{"port": 8443, "protocol": "TCP",
                                                      "check": {"http": {"path": "/healthz"}}}])
    server.create(web)
    moved = copy.deepcopy(DB)
    moved["spec"]["ips"] = ["192.168.200.7"]
    server.update(moved)
    wait_for(source, lambda inv: {e.key: str(e.ip) for e in inv[0].externals} == {"ext:db": "192.168.200.7",
                                                                                  "ext:web": "192.168.200.6"})
    assert externals(source)["ext:web"].check_for(8443, Protocol.TCP) == HttpCheck("/healthz")
    server.delete(moved)
    wait_for(source, lambda inv: [e.key for e in inv[0].externals] == ["ext:web"])
    lists = [r for r in server.requests() if r.path.endswith("/externalendpoints") and not r.is_watch]
    watches = [r for r in server.requests() if r.path.endswith("/externalendpoints") and r.is_watch]
    assert len(lists) == 1 and watches and all(r.query.get("resourceVersion") for r in watches)


def test_a_bad_object_is_an_error_of_its_own_and_the_rest_stays(server, make_source) -> None:
    bad = copy.deepcopy(DB)  # what admission would refuse, e.g. written before the CRD's schema existed
    bad["metadata"]["name"] = "broken"
    bad["spec"]["ips"] = ["192.168.200.300"]
    server.create(DB)
    server.create(bad)
    source = make_source()
    assert source.kube.wait_for_sync(DEADLINE)
    inventory, errors = source.inventory()
    assert [e.key for e in inventory.externals] == ["ext:db"]
    assert [(e.object, "invalid IP" in e.message) for e in errors] == [("ExternalEndpoint default/broken", True)]


def test_without_the_crd_the_rest_is_read_and_the_file_form_still_declares_endpoints(server, make_source) -> None:
    server.set_unavailable("externalendpoints")
    files = ROOT / "examples" / "seed" / "40-endpoints.yaml"
    source = make_source([files])
    assert source.kube.wait_for_sync(DEADLINE)
    assert source.kube.health()[RESOURCE].available is False and source.up()
    assert list(externals(source)) == ["ext:db"]
    assert len(source.inventory()[0].attachments) == 2


def test_the_same_name_in_a_file_and_a_resource_is_reported_not_guessed(server, make_source) -> None:
    server.create(DB)
    source = make_source([ROOT / "examples" / "seed" / "40-endpoints.yaml"])
    assert source.kube.wait_for_sync(DEADLINE)
    inventory, errors = source.inventory()
    assert [e.key for e in inventory.externals] == ["ext:db"]
    assert len(errors) == 1 and "declared twice" in errors[0].message
