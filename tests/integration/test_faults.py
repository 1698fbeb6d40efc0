"""Fault injection on a lab of its own: kill -9 each daemon by the PID in the lab's pidfile and expect the
agent to name it (`segcheck_source_up{source=...} 0`, `/readyz` 503 with the source), then to recover when the
daemon is back. Waits are on published states (bounded), never fixed sleeps."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request

import pytest

from segcheck.agent.adapters.auth import TokenFileAuth
from segcheck.agent.adapters.ovsdb import NorthboundReader, OvsReader
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.lab import daemons as dmn
from segcheck.agent.lab import procs
from segcheck.agent.lab.locator import LabLocator
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.runtime.liveness import agent_liveness
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.lab.sources import LabSources

from .conftest import _bring_up, _new_lab, _tear_down

pytestmark = pytest.mark.lab
TOKEN = "fault-token"
WAIT = 20.0


@pytest.fixture(scope="module")
def faulty_lab():
    lab = _new_lab()
    try:
        yield _bring_up(lab)
    finally:
        _tear_down(lab)


@pytest.fixture(scope="module")
def service(faulty_lab, tmp_path_factory):
    lab = faulty_lab
    token = tmp_path_factory.mktemp("faults") / "token"
    token.write_text(TOKEN)
    declared = FilesSource([packaged_seed()], poll_seconds=0.5)
    locator = LabLocator(lab)
    liveness = agent_liveness(LabSources(lab), declared, interval=0.5, endpoint_interval=0.5)
    agent = Agent(declared, NorthboundReader(lab.nb_url), OvsReader(lab.ovs_url), RawSocketProber(), locator,
                  "lab-node", interval=2.0, jitter=0.1, only_local=False, liveness=liveness)
    svc = AgentService(agent, "127.0.0.1", 0, TokenFileAuth(token))
    svc.start()
    try:
        assert agent.wait_for(lambda s: all_up(s) and s.rounds >= 1, timeout=30), agent.state and agent.state.sources
        yield svc
    finally:
        svc.stop()


def sources(state):
    return {s.name: s for s in state.sources}


def all_up(state):
    names = sources(state)
    return {"ovs_vswitchd", "ovn_controller", "ext:db"} <= set(names) and all(s.up for s in names.values())


def get(svc, path):
    req = urllib.request.Request(f"http://127.0.0.1:{svc.port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def kill9(lab, pidfile):
    pid = procs.read_pidfile(pidfile)
    assert pid and procs.is_ours(pid, str(lab.state_dir)), pidfile
    os.kill(pid, signal.SIGKILL)
    assert procs.wait_until(lambda: not procs.is_alive(pid), timeout=5)


def expect_down(svc, source):
    state = svc.agent.wait_for(lambda s: source in sources(s) and not sources(s)[source].up, timeout=WAIT)
    assert state is not None, f"{source} still reported up"
    status, why = get(svc, "/readyz")
    assert status == 503 and source in why, (status, why)
    _, metrics = get(svc, "/metrics")
    assert f'segcheck_source_up{{source="{source}"}} 0.0' in metrics
    assert get(svc, "/healthz")[0] == 200  # the agent itself is fine: not a reason to restart it


def expect_recovered(svc):
    assert svc.agent.wait_for(all_up, timeout=WAIT) is not None, svc.agent.state.sources
    assert get(svc, "/readyz") == (200, "ok\n")


def test_all_sources_up_and_ready_on_a_healthy_lab(service):
    assert get(service, "/readyz") == (200, "ok\n")
    _, metrics = get(service, "/metrics")
    for source in ("ovs_vswitchd", "ovn_controller", "ext:db"):
        assert f'segcheck_source_up{{source="{source}"}} 1.0' in metrics


def test_ovs_vswitchd_killed(service, faulty_lab):
    lab = faulty_lab
    daemon = lab.daemons["ovs-vswitchd"]
    kill9(lab, daemon.pidfile)
    expect_down(service, "ovs_vswitchd")
    assert sources(service.agent.state)["ovs"].up  # its database still answers: that alone proved nothing
    dmn.start_vswitchd(lab.ovs, lab.paths, lab.ovs_netns, daemon)
    expect_recovered(service)


def test_ovn_controller_killed(service, faulty_lab):
    lab = faulty_lab
    daemon = lab.daemons["ovn-controller"]
    kill9(lab, daemon.pidfile)
    expect_down(service, "ovn_controller")
    dmn.start_controller(lab.paths, lab.ovs_netns, daemon)
    expect_recovered(service)


def test_postgresql_killed(service, faulty_lab):
    kill9(faulty_lab, faulty_lab.postgres().pidfile)
    expect_down(service, "ext:db")
    detail = sources(service.agent.state)["ext:db"].detail
    assert "5432" in detail or "refused" in detail.lower(), detail
