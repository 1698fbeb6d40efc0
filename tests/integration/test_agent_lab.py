"""The agent on the real lab: clean on the seed, names tampering within bounds, rides out an NB outage,
serves valid metrics and an authenticated probe API, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from segcheck.agent.adapters.auth import TokenFileAuth
from segcheck.agent.adapters.ovsdb import NorthboundReader, OvsReader
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.locator import LabLocator
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.runtime.service import AgentService
from segcheck.agent.lab.seed import packaged_seed

from .planes import NET, drop_flow, owned_acl, seeded

pytestmark = pytest.mark.lab
INTERVAL = 2.0
TOKEN = "lab-probe-token"


@pytest.fixture(scope="module")
def seed_lab(lab):
    with seeded(lab) as (_, inventory):
        yield lab, inventory


@pytest.fixture
def service(seed_lab, tmp_path):
    lab, _ = seed_lab
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    agent = Agent(FilesSource([packaged_seed()], poll_seconds=0.5), NorthboundReader(lab.nb_url), OvsReader(lab.ovs_url),
                  RawSocketProber(), LabLocator(lab), "lab-node", interval=INTERVAL, jitter=0.1, only_local=False)
    svc = AgentService(agent, "127.0.0.1", 0, TokenFileAuth(token))
    svc.start()
    try:
        assert agent.wait_for(lambda s: s.rounds >= 1, timeout=15), "no probe round within 15 s"
        yield svc
    finally:
        svc.stop()


def counts(state, network=NET):
    return state.drift_counts()[network]


def get(svc, path, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{svc.port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(svc, body, token=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{svc.port}/v1/probe", data=data, method="POST")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_seed_is_clean_and_exposition_is_valid(service):
    state = service.agent.state
    assert all(v == 0 for v in counts(state).values()), counts(state)
    assert state.probes_by_result["allowed"] > 0 and state.probes_by_result["denied"] > 0
    assert {s.name: s.up for s in state.sources} == {"files": True, "ovn_nb": True, "ovs": True, "prober": True}
    status, metrics = get(service, "/metrics")
    assert status == 200 and b"_created" not in metrics
    check = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert b'segcheck_drift_cells{class="leak",network="default/tenantblue"} 0.0' in metrics
    assert b'segcheck_localnet_mapping_ok{bridge="br-ex",network="default/tenantblue"} 1.0' in metrics
    assert get(service, "/healthz")[0] == 200 and get(service, "/readyz")[0] == 200
    assert get(service, "/v1/matrix")[0] == 401 and get(service, "/v1/drift", token="wrong")[0] == 403
    matrix = json.loads(get(service, "/v1/matrix", token=TOKEN)[1])
    cells = matrix["networks"][0]["cells"]
    db = next(c for c in cells if c["from"] == "default/vm-server" and c["to"] == "ext:db" and c["port"] == 5432)
    assert (db["expected"], db["programmed"]["verdict"], db["observed"]["verdict"]) == ("allowed",) * 3


def test_tampered_acl_is_controller_drift_at_once_and_clears_after_restore(service, seed_lab):
    lab, inventory = seed_lab
    agent = service.agent
    pg, _, uuid = owned_acl(lab, "allow-db-egress", "Egress")
    started = time.monotonic()
    lab.run_nbctl("remove", "Port_Group", pg, "acls", uuid)
    state = agent.wait_for(lambda s: counts(s)["controller"] > 0, timeout=5)
    latency = time.monotonic() - started
    try:
        assert state is not None, "controller drift not reported within 5 s"
        print(f"controller drift detected after {latency:.3f} s")
        assert counts(state)["controller"] == 2  # podclient and vm-server -> db:5432
        state = agent.wait_for(lambda s: counts(s)["blackhole"] == 2 and counts(s)["dataplane"] == 0, timeout=INTERVAL + 5)
        assert state is not None, "the changed cells were not re-probed"
    finally:
        LabController(lab).apply(inventory, NET)
    assert agent.wait_for(lambda s: not any(counts(s).values()), timeout=INTERVAL + 5) is not None
    status, metrics = get(service, "/metrics")
    assert b'segcheck_drift_cells{class="controller",network="default/tenantblue"} 0.0' in metrics
    assert float(metrics.split(b"\nsegcheck_last_drift_change_timestamp_seconds ")[1].split()[0]) > 0


def test_broken_dataplane_is_dataplane_drift_within_a_round(service, seed_lab):
    lab, _ = seed_lab
    agent = service.agent
    with drop_flow(lab, "br-ex", "tcp,nw_dst=192.168.200.5,tp_dst=5432"):
        state = agent.wait_for(lambda s: counts(s)["dataplane"] > 0, timeout=2 * INTERVAL + 5)
        assert state is not None, "dataplane drift not seen within a probe round"
        assert counts(state)["blackhole"] == counts(state)["dataplane"] == 2
        assert counts(state)["controller"] == 0
    assert agent.wait_for(lambda s: not any(counts(s).values()), timeout=2 * INTERVAL + 5) is not None


def test_northbound_outage_is_reported_and_recovers(service, seed_lab):
    lab, _ = seed_lab
    agent = service.agent
    nb_up = lambda s: next(x.up for x in s.sources if x.name == "ovn_nb")  # noqa: E731
    assert lab.stop_daemon("ovsdb-server-nb")
    try:
        state = agent.wait_for(lambda s: not nb_up(s), timeout=10)
        assert state is not None, "NB outage not reported"
        assert all(c.programmed is None for n in state.networks for c in n.cells)
        assert agent.alive() and get(service, "/healthz")[0] == 200
        _, metrics = get(service, "/metrics")
        assert b'segcheck_source_up{source="ovn_nb"} 0.0' in metrics
    finally:
        lab.start_database("ovsdb-server-nb")
    assert agent.wait_for(lambda s: nb_up(s) and not any(counts(s).values()), timeout=30) is not None


def test_probe_api_requires_a_token_and_bounds_the_body(service):
    assert post(service, {"from": "vm-server", "to": "db:5432"})[0] == 401
    assert post(service, {"from": "vm-server", "to": "db:5432"}, token="wrong")[0] == 403
    assert post(service, None, token=TOKEN, raw=b"x" * 5000)[0] == 413
    assert post(service, {"from": "vm-server"}, token=TOKEN)[0] == 400
    assert post(service, {"from": "ghost", "to": "db:5432"}, token=TOKEN)[0] == 400
    status, cell = post(service, {"from": "vm-server", "to": "db:5432"}, token=TOKEN)
    assert status == 200 and cell["observed"]["verdict"] == "allowed" and cell["drift"] == []


def test_probe_api_answers_ip_targets_of_declared_endpoints_and_refuses_the_rest(service):
    # Regression: an IP target answered 500 (KeyError: the reachability was built without the extra endpoint).
    status, cell = post(service, {"from": "vm-server", "to": "192.168.200.5:5432"}, token=TOKEN)
    assert status == 200 and cell["to"] == "ext:db" and cell["observed"]["verdict"] == "allowed"
    for target in ("192.168.200.99:22", "127.0.0.1:22"):
        status, answer = post(service, {"from": "vm-server", "to": target}, token=TOKEN)
        assert status == 403 and "not a declared" in answer["error"], (target, status, answer)
    probes = sum(service.agent.state.probes_by_result.values())
    assert post(service, {"from": "192.168.200.99", "to": "vm-server:8080"}, token=TOKEN)[0] == 403
    assert sum(service.agent.state.probes_by_result.values()) == probes  # nothing was sent


def test_cli_probe_of_an_undeclared_ip_in_the_lab_reports_instead_of_crashing(seed_lab):
    # Regression: `segcheck probe vm-server 192.168.200.99:22 --lab` printed a KeyError traceback.
    lab, _ = seed_lab
    proc = subprocess.run([sys.executable, "-m", "segcheck.cli", "probe", "vm-server", "192.168.200.99:22", "--lab",
                           "--state-dir", str(lab.state_dir), "--prefix", lab.prefix, "-o", "json"],
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1, 3), proc.stderr
    cell = json.loads(proc.stdout)
    assert cell["to"] == "192.168.200.99" and cell["expected"] == "denied"  # default-deny isolates vm-server
    assert cell["observed"]["verdict"] in ("denied", "unknown")  # nobody answers there: never "allowed"


def test_agent_process_stops_cleanly_on_sigterm(seed_lab, tmp_path):
    lab, _ = seed_lab
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "segcheck.cli", "agent", "--lab", "--state-dir", str(lab.state_dir),
                             "--prefix", lab.prefix, "--listen", f"127.0.0.1:{port}", "--auth", f"token-file:{token}",
                             "--interval", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and proc.poll() is None and not ready:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                    ready = resp.status == 200
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)  # polling a server that is still starting (bounded by the deadline)
        assert ready, proc.stderr.read().decode() if proc.poll() is not None else "not ready in 30 s"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        lines = [json.loads(line) for line in proc.stderr.read().decode().splitlines() if line.startswith("{")]
        assert any(e["msg"] == "agent stopped" for e in lines), lines
        assert all({"ts", "level", "logger", "msg"} <= set(e) for e in lines)
        assert TOKEN not in json.dumps(lines)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_cli_talks_to_the_agent(service, tmp_path):
    from click.testing import CliRunner

    from segcheck.cli.main import cli

    url = f"http://127.0.0.1:{service.port}"
    token = tmp_path / "token"
    token.write_text(TOKEN)
    refused = CliRunner().invoke(cli, ["drift", "--agent", url, "-o", "json"])
    assert refused.exit_code == 3 and "401" in refused.output
    clean = CliRunner().invoke(cli, ["drift", "--agent", url, "--token-file", str(token), "-o", "json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["networks"][0]["cells"] == []
    typo = CliRunner().invoke(cli, ["drift", "--agent", url, "--network", "default/nope"], env={"SEGCHECK_TOKEN": TOKEN})
    assert typo.exit_code == 3 and "404" in typo.output  # a mistyped network is not "no drift"
    probe = CliRunner().invoke(cli, ["probe", "vm-server", "db:5432", "--agent", url, "--token-file", str(token),
                                     "-o", "json"])
    assert probe.exit_code == 0, probe.output
    assert json.loads(probe.output)["observed"]["verdict"] == "allowed"
    refused = CliRunner().invoke(cli, ["probe", "vm-server", "db:5432", "--agent", url, "--token", "wrong"])
    assert refused.exit_code == 3 and "403" in refused.output
