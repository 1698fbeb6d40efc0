"""Two agents on the 2-node lab, one per node (each its own OVN zone), and the cluster composed from their
/v1/matrix through the real HTTP API (`verify --cluster`): the seed agrees everywhere; an ACL removed on worker-1
is controller drift on worker-1 and in the composed view, nowhere else; a remote half is never a leak."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from segcheck.agent.adapters.agent_client import AgentClient
from segcheck.agent.adapters.auth import TokenFileAuth
from segcheck.agent.core.drift import DriftClass
from segcheck.agent.core.enforcement import DEFAULT_PROFILE
from segcheck.agent.core.model import Protocol, Verdict
from segcheck.agent.lab.cluster_sources import LabNodeSources
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.runtime.agent_setup import make_agent
from segcheck.agent.runtime.cluster_view import cluster_view
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.runtime.status import Status

from .planes import NET, seed_inventory
from .test_lab_cluster import cluster  # noqa: F401 - the 2-node lab fixture

pytestmark = pytest.mark.lab
POD, VM = "default/podclient", "default/vm-server"


@pytest.fixture(scope="module")
def token(tmp_path_factory) -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="module")
def agents(cluster, token, tmp_path_factory) -> Iterator[dict[str, AgentService]]:  # noqa: F811
    path = tmp_path_factory.mktemp("agents") / "token"
    path.write_text(token)
    services = {}
    for node in cluster.nodes:
        agent = make_agent(LabNodeSources(cluster, node), FilesSource([packaged_seed()], poll_seconds=0.5), node,
                           DEFAULT_PROFILE, interval=2.0, jitter=0.1)
        services[node] = AgentService(agent, "127.0.0.1", 0, TokenFileAuth(path))
    for svc in services.values():
        svc.start()
    try:
        for node, svc in services.items():
            assert svc.agent.wait_for(lambda s: s.rounds >= 1, timeout=30), f"no probe round on {node}"
        yield services
    finally:
        for svc in services.values():
            svc.stop()


@pytest.fixture(scope="module")
def token_clients(agents, token) -> list[AgentClient]:
    return [AgentClient(f"http://127.0.0.1:{svc.port}", token) for svc in agents.values()]


def cell(cells, source, destination, port):
    return next(c for c in cells if (c.source, c.destination, c.protocol) == (source, destination, Protocol.TCP)
                and c.ports.first <= port <= c.ports.last)


def own_cells(svc: AgentService):
    (network,) = svc.agent.state.networks
    return network.cells


def fresh_state(svc: AgentService, predicate):
    state = svc.agent.wait_for(predicate, timeout=30)
    assert state is not None, f"the agent of {svc.agent.node} never reached the state"
    return state


def test_the_seed_agrees_across_nodes_and_no_remote_half_is_a_leak(agents, token_clients):
    for svc in agents.values():
        drifting = [c for c in own_cells(svc) if c.drift]
        assert not drifting, (svc.agent.node, drifting)
    worker1 = own_cells(agents["worker-1"])
    across = cell(worker1, POD, VM, 8080)  # podclient's egress half is judged on worker-0
    assert across.programmed.verdict in (Verdict.DENIED, Verdict.REMOTE)
    view = cluster_view(token_clients)
    assert view.status is Status.MATCH, [c for c in view.checked if c.drift]
    whole = cell(view.checked, POD, VM, 8080)
    assert whole.programmed.verdict is Verdict.DENIED
    assert dict(whole.judged_by) == {"egress": "worker-0", "ingress": "worker-1"}
    assert {r.detail.split(":")[0] for r in whole.programmed.reasons} == {"on worker-0", "on worker-1"}


def test_an_acl_removed_on_worker_1_is_drift_on_worker_1_and_in_the_cluster_view_only(cluster, agents, token_clients):
    lab = cluster.nodes["worker-1"]
    # vm-server's ingress default deny, as the zone of worker-1 holds it.
    uuid = lab.run_nbctl("--bare", "--columns=_uuid", "find", "ACL", "action=drop", "direction=to-lport").split()[0]
    group = lab.run_nbctl("--bare", "--columns=name", "find", "Port_Group", f"acls{{>=}}{uuid}").strip()
    lab.run_nbctl("remove", "Port_Group", group, "acls", uuid)
    try:
        state = fresh_state(agents["worker-1"], lambda s: any(
            DriftClass.CONTROLLER in c.drift for n in s.networks for c in n.cells))
        (network,) = state.networks
        tampered = cell(network.cells, POD, VM, 8080)
        assert DriftClass.CONTROLLER in tampered.drift and DriftClass.LEAK not in tampered.drift
        assert tampered.programmed.verdict is Verdict.REMOTE  # this half allows; worker-0's denies
        assert not any(c.drift for c in own_cells(agents["worker-0"]))
        view = cluster_view(token_clients)
        whole = cell(view.checked, POD, VM, 8080)
        assert whole.programmed.verdict is Verdict.DENIED and whole.drift == (DriftClass.CONTROLLER,)
        assert view.status is Status.DRIFT
        # ... and the CLI says the same, through the agents' HTTP API.
        urls = [a for c in token_clients for a in ("--agent", c.url)]
        done = subprocess.run([sys.executable, "-m", "segcheck.cli", "drift", "--cluster", *urls, "--token",
                               token_clients[0].token, "-o", "json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        assert any(c["from"] == POD and c["to"] == VM and c["drift"] == ["controller"]
                   for c in json.loads(done.stdout)["cells"])
    finally:
        cluster.apply(seed_inventory(), NET)
    fresh_state(agents["worker-1"], lambda s: not any(c.drift for n in s.networks for c in n.cells))
