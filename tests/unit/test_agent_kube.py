"""The agent's declared plane from the Kubernetes API: the real client against the fake API server (list, watch,
resourceVersion), driving the agent loop. No OVN, no probes: only what the API declares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from segcheck.agent.adapters.kube import Backoff, KubeSource
from segcheck.agent.core.model import Protocol, Ref, Verdict
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import KubernetesSource
from segcheck.agent.lab.seed import packaged_seed
from tests.fake_kube import FakeKubeServer
from tests.fake_kube.seed import NODE, seed_objects, seeded_server

NET = Ref("default", "tenantblue")
DEADLINE = 10.0


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    with seeded_server() as fake:
        yield fake


@pytest.fixture
def agent(server: FakeKubeServer) -> Iterator[Agent]:
    configuration = client.Configuration(host=server.url)
    kube = KubeSource(client.ApiClient(configuration), watch_timeout_seconds=2,
                      backoff=Backoff(initial=0.05, factor=2.0, cap=0.5, jitter=0.5), slow_retry_seconds=0.5)
    endpoints = Path(packaged_seed()) / "40-endpoints.yaml"
    instance = Agent(KubernetesSource(kube, [endpoints]), None, None, None, None, NODE, interval=60.0)
    instance.start()
    yield instance
    instance.stop()


def expected(state, source: str, destination: str, port: int) -> Verdict:
    net = next(n for n in state.networks if n.network == NET)
    for cell in net.cells:
        if (cell.source, cell.destination, cell.protocol) == (source, destination, Protocol.TCP) \
                and cell.ports.first <= port <= cell.ports.last:
            return cell.expected.verdict
    raise AssertionError(f"no cell {source} -> {destination}:{port}")


def has_network(state) -> bool:
    """The whole seed is evaluated: workloads, endpoint and policies (the first states may predate the list of
    some resource, e.g. workloads listed before the policies that isolate them)."""
    pairs = {(c.source, c.destination) for n in state.networks if n.network == NET for c in n.cells}
    return {("default/podclient", "ext:db"), ("default/vm-server", "ext:db")} <= pairs \
        and expected(state, "default/vm-server", "ext:db", 22) is Verdict.DENIED


def test_agent_evaluates_what_the_api_declares(agent: Agent) -> None:
    state = agent.wait_for(has_network, DEADLINE)
    assert state is not None, "no evaluation of default/tenantblue from the API"
    assert expected(state, "default/vm-server", "ext:db", 5432) is Verdict.ALLOWED
    assert expected(state, "default/podclient", "default/vm-server", 8080) is Verdict.DENIED
    assert {s.name: s.up for s in state.sources}["kubernetes"] is True
    assert all(c.programmed is None and c.observed is None for n in state.networks for c in n.cells)


def test_watched_changes_reach_the_agent(agent: Agent, server: FakeKubeServer) -> None:
    assert agent.wait_for(has_network, DEADLINE) is not None
    server.delete(seed_objects()["default-deny"])
    # Only default-deny isolated ingress: without it the DB may connect in; egress stays isolated by allow-db-egress.
    state = agent.wait_for(lambda s: has_network(s) and expected(s, "ext:db", "default/podclient", 8080)
                           is Verdict.ALLOWED, DEADLINE)
    assert state is not None, "deleting default-deny did not open ingress from the DB"
    assert expected(state, "default/podclient", "default/vm-server", 8080) is Verdict.DENIED
    assert expected(state, "default/vm-server", "ext:db", 22) is Verdict.DENIED  # allow-db-egress still isolates


def test_api_outage_is_reported_and_recovered(agent: Agent, server: FakeKubeServer) -> None:
    kube_up = lambda s: {x.name: x.up for x in s.sources}["kubernetes"]  # noqa: E731
    assert agent.wait_for(lambda s: has_network(s) and kube_up(s), DEADLINE) is not None
    server.stop()
    try:
        down = agent.wait_for(lambda s: not kube_up(s), DEADLINE)
        assert down is not None, "API outage not reported"
        assert has_network(down), "the last declared state must be kept through an outage"
        assert agent.alive()
    finally:
        server.start()
    assert agent.wait_for(kube_up, DEADLINE) is not None


def test_endpoint_config_changes_reach_the_agent(server: FakeKubeServer, tmp_path: Path) -> None:
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text((Path(packaged_seed()) / "40-endpoints.yaml").read_text())
    kube = KubeSource(client.ApiClient(client.Configuration(host=server.url)), watch_timeout_seconds=2)
    instance = Agent(KubernetesSource(kube, [endpoints]), None, None, None, None, NODE, interval=60.0)
    instance.start()
    try:
        assert instance.wait_for(has_network, DEADLINE) is not None
        config = yaml.safe_load(endpoints.read_text())
        config["spec"]["endpoints"].append({"name": "cache", "network": "default/tenantblue", "ips": ["192.168.200.6"],
                                            "ports": [{"port": 6379, "protocol": "TCP"}]})
        endpoints.write_text(yaml.safe_dump(config))  # as a ConfigMap update lands in the mounted file
        state = instance.wait_for(
            lambda s: any(c.destination == "ext:cache" for n in s.networks for c in n.cells), DEADLINE)
        assert state is not None, "a new external endpoint in the config file was not picked up"
    finally:
        instance.stop()
