"""The agent does not hide manifest errors: an object that stops parsing keeps its last good version, its
error is logged once as a JSON line and exported, and /readyz says the declared state is not fresh."""

from __future__ import annotations

import json
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from segcheck.agent.adapters.jsonlog import JsonFormatter
from segcheck.agent.adapters.metrics import exposition, registry_for
from segcheck.agent.core.manifests import ManifestError, RawObject
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import FilesSource, LastGood
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.lab.seed import packaged_seed
from tests.builders import mnp, nad

DEADLINE = 10.0
POLICIES = "50-policies.yaml"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(name: str) -> dict:
    return mnp(name, {"podSelector": {}, "policyTypes": ["Ingress"]})


def docs(*objects: dict) -> list[RawObject]:
    return [RawObject(f"p.yaml#{i + 1}", o) for i, o in enumerate(objects)]


def test_an_object_that_stops_parsing_keeps_its_last_good_version():
    clock = Clock()
    last = LastGood("files", clock)
    inventory, errors = last.load(docs(nad(), policy("a"), policy("b")), [])
    assert not errors and last.staleness() == 0.0
    broken = policy("b")
    broken["spec"]["policyTypes"] = ["Sideways"]
    clock.now += 30
    inventory, errors = last.load(docs(nad(), policy("a"), broken), [])
    assert sorted(p.ref.name for p in inventory.policies) == ["a", "b"]
    [error] = last.errors
    assert (error.source, error.kind, error.kept) == ("files", "MultiNetworkPolicy", True) and "Sideways" in error.message
    clock.now += 5
    assert last.staleness() == 35.0  # since the version in use was read
    inventory, errors = last.load(docs(nad(), policy("a"), policy("b")), [])
    assert not last.errors and last.staleness() == 0.0 and len(inventory.policies) == 2


def test_a_document_that_no_longer_parses_keeps_the_objects_it_held():
    last = LastGood("files")
    last.load(docs(nad(), policy("a")), [])
    yaml_error = ManifestError("p.yaml#2", "MultiNetworkPolicy default/a", "invalid YAML at line 9: ...")
    inventory, _ = last.load(docs(nad()), [yaml_error])
    assert [p.ref.name for p in inventory.policies] == ["a"] and last.errors[0].kept
    unreadable = ManifestError("p.yaml", "-", "cannot read: permission denied")
    inventory, _ = last.load([], [unreadable])
    assert [p.ref.name for p in inventory.policies] == ["a"] and len(inventory.networks) == 1


def test_deleted_objects_go_and_never_good_ones_are_errors_without_a_kept_version():
    last = LastGood("kubernetes")
    last.load(docs(nad(), policy("a")), [])
    inventory, _ = last.load(docs(nad()), [])  # deleted, no error: gone
    assert not inventory.policies
    broken = policy("new")
    broken["spec"]["policyTypes"] = ["Sideways"]
    inventory, _ = last.load(docs(nad(), broken), [])
    assert not inventory.policies and [e.kept for e in last.errors] == [False]


def test_each_error_is_logged_once_as_a_json_line(caplog):
    last = LastGood("files")
    broken = policy("b")
    broken["spec"]["policyTypes"] = ["Sideways"]
    with caplog.at_level(logging.WARNING, logger="segcheck.agent.runtime.declared"):
        for _ in range(3):
            last.load(docs(nad(), broken), [])
    [record] = caplog.records
    event = json.loads(JsonFormatter().format(record))
    assert event["msg"] == "declared object refused" and event["kind"] == "MultiNetworkPolicy"
    assert event["source"] == "files" and "Sideways" in event["error"] and event["kept_last_good"] is False


def readyz(service: AgentService) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/readyz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    folder = tmp_path / "seed"
    shutil.copytree(packaged_seed(), folder)
    return folder


def test_the_agent_reports_a_duplicate_key_and_keeps_both_policies(manifests: Path):
    source = FilesSource([manifests], poll_seconds=0.05)
    agent = Agent(source, None, None, None, None, "node-a", interval=60.0)
    service = AgentService(agent, "127.0.0.1", 0, lambda token: "tester")
    service.start()
    try:
        assert agent.wait_for(lambda s: bool(s.networks), DEADLINE) is not None
        assert readyz(service)[0] == 200
        text = (manifests / POLICIES).read_text()
        first, second = text.split("\n---\n")
        (manifests / POLICIES).write_text(first + "\n---\n" + second.replace("spec:", "spec:\n  podSelector: {}", 1))
        state = agent.wait_for(lambda s: bool(s.declared_errors), DEADLINE)
        assert state is not None, "the duplicate key was not reported"
        [error] = state.declared_errors
        assert "duplicate key 'podSelector'" in error.message and error.kept and f"{POLICIES}#2" in error.message
        assert sorted(p.ref.name for p in source.inventory()[0].policies) == ["allow-db-egress", "default-deny"]
        metrics = exposition(registry_for(lambda: agent.state)).decode()
        assert 'segcheck_declared_errors{kind="MultiNetworkPolicy",source="files"} 1.0' in metrics
        status, why = readyz(service)
        assert status == 503 and "files: 1 object(s) served from their last good version" in why, why
        (manifests / POLICIES).write_text(text)
        assert agent.wait_for(lambda s: not s.declared_errors, DEADLINE) is not None
        assert readyz(service)[0] == 200
    finally:
        service.stop()


def test_readiness_names_a_source_that_is_down(manifests: Path):
    agent = Agent(FilesSource([manifests / "missing.yaml"], poll_seconds=0.05), None, None, None, None, "node-a",
                  interval=60.0)
    service = AgentService(agent, "127.0.0.1", 0, lambda token: "tester")
    service.start()
    try:
        assert agent.wait_for(lambda s: s.evaluated_at > 0, DEADLINE) is not None
        status, why = readyz(service)
        assert status == 503 and "files down" in why, why
    finally:
        service.stop()


def test_findings_of_no_network_reach_the_metrics_and_the_matrix(manifests: Path):
    (manifests / "60-netpol.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: default}\n"
        "spec: {podSelector: {}}\n")
    agent = Agent(FilesSource([manifests], poll_seconds=0.05), None, None, None, None, "node-a", interval=60.0)
    service = AgentService(agent, "127.0.0.1", 0, lambda token: "tester")
    service.start()
    try:
        state = agent.wait_for(lambda s: bool(s.networks), DEADLINE)
        assert state is not None
        assert [f.kind.value for f in state.unplaced_findings] == ["default-network-only"]
        metrics = exposition(registry_for(lambda: agent.state)).decode()
        assert 'segcheck_policy_findings{kind="default-network-only",network=""} 1.0' in metrics
    finally:
        service.stop()
