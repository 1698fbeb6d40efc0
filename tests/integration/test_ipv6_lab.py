"""The IPv6 seed on the real lab (examples/seed-ipv6, fd00:200::/64): OVN forwards neighbour discovery and TCP
over IPv6 on the localnet through br-ex under the OVN-K ACLs, and the three planes agree, in each OVN-K
version's shapes; the raw prober's IPv6 frames (neighbour solicitations from the send point, SYNs) get there."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.ovsdb import NorthboundReader, OvsReader
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.adapters.probers.scapy_prober import ScapyProber
from segcheck.agent.core.drift import DriftClass, summarize
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Protocol, Ref, Verdict, parse_ip
from segcheck.agent.core.probe import Evidence, ProbeJob, ProbeProtocol
from segcheck.agent.lab import procs
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.devices import launcher_bridge
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.locator import LabLocator
from segcheck.agent.lab.seed import packaged_seed_ipv6
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import FilesSource

from .planes import checker, drop_flow

pytestmark = pytest.mark.lab

NET = Ref("default", "tenantblue")
DB = "fd00:200::5"


def _inventory() -> Inventory:
    inventory, errors = load_inventory([packaged_seed_ipv6()])
    assert not errors, errors
    return inventory


@pytest.fixture(scope="module", params=["4.14", "current"])
def v6_lab(lab_ipv6: Lab, request: pytest.FixtureRequest) -> Iterator[tuple[Lab, Inventory]]:
    """The IPv6 seed's policies programmed in one OVN-K version's shapes, the lab recording that version."""
    inventory = _inventory()
    controller = LabController(lab_ipv6)
    controller.apply(inventory, NET, PROFILES[request.param])
    try:
        yield lab_ipv6, inventory
    finally:
        controller.clear(NET.name)


def cell(report, source, destination, port, protocol=Protocol.TCP):  # type: ignore[no-untyped-def]
    for c in report.cells:
        if c.source == source and c.destination == destination and c.protocol is protocol \
                and c.ports.first <= port <= c.ports.last:
            return c
    raise AssertionError(f"no cell {source} -> {destination} {port}")


def segcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segcheck.cli", *args], capture_output=True, text=True, timeout=120)


def test_the_lab_is_ipv6_only_where_addresses_live(lab_ipv6: Lab) -> None:
    for name in ("podclient", "vm-server", "db"):
        shown = lab_ipv6.run_in(name, "ip", "-6", "-o", "addr", "show").stdout
        assert "fd00:200::" in shown and "tentative" not in shown, shown  # nodad: usable at once
        assert "inet " not in lab_ipv6.run_in(name, "ip", "-4", "-o", "addr", "show", "scope", "global").stdout
    # OVS's and the virt-launcher's namespaces hold no address: IPv6 stays off there (no chatter into br-int)
    for ns in (lab_ipv6.ovs_netns, lab_ipv6.launcher_netns("vm-server")):
        assert procs.run(["ip", "-6", "-o", "addr", "show"], netns=ns).stdout.strip() == ""


def test_neighbour_discovery_and_tcp_cross_the_localnet(v6_lab, tcp):  # type: ignore[no-untyped-def]
    lab, _ = v6_lab
    tcp(lab, "podclient", DB, 5432, read=False)  # a kernel handshake over IPv6 to PostgreSQL behind br-ex
    neighbours = lab.run_in("podclient", "ip", "-6", "neigh", "show", DB).stdout
    assert lab.topology.hosts[0].mac in neighbours, neighbours  # learnt by ND, through the ACLs ("arp || nd")
    # PostgreSQL itself, over IPv6: the server sees the pod's address
    assert lab.postgres().psql("app", "appdb", "select inet_client_addr()", host=DB,
                               netns=lab.netns("podclient")).strip() == "fd00:200::10"
    acls = [a for a in LabController(lab).owned(NET.name).acl_matches() if "fd00:200::5/128" in a]
    assert acls and all(a.startswith("ip6.dst == fd00:200::5/128") for a in acls), acls


def test_raw_ipv6_probes_from_a_pod_and_as_the_vm(v6_lab: tuple[Lab, Inventory]) -> None:
    lab, _ = v6_lab
    pod, vm = lab.send_point("podclient"), lab.send_point("vm-server")
    assert vm.interface == launcher_bridge("underlay") and vm.ip == parse_ip("fd00:200::20")
    db = parse_ip(DB)
    results = RawSocketProber().run([ProbeJob(pod, db, 5432), ProbeJob(vm, db, 5432), ProbeJob(pod, db, 22),
                                     ProbeJob(vm, parse_ip("fd00:200::10"), 8080)], timeout=0.5)
    assert [(r.verdict, r.evidence) for r in results] == [
        (Verdict.ALLOWED, Evidence.SYN_ACK), (Verdict.ALLOWED, Evidence.SYN_ACK),
        (Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE), (Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE)], \
        [r.detail for r in results]
    assert "neighbour discovery answered" in results[2].detail


def test_scapy_agrees_with_raw_over_ipv6(v6_lab: tuple[Lab, Inventory]) -> None:
    """The second prober, built on scapy's own IPv6 layers, as the cross-check of the raw one's frames."""
    lab, _ = v6_lab
    pod, vm, db = lab.send_point("podclient"), lab.send_point("vm-server"), parse_ip(DB)
    jobs = [ProbeJob(pod, db, 5432), ProbeJob(vm, db, 5432), ProbeJob(vm, db, 5433),
            ProbeJob(pod, db, None, ProbeProtocol.ICMP),  # the default deny drops ICMPv6 echo (only ND passes)
            ProbeJob(pod, parse_ip("fd00:200::99"), 5432)]  # nobody there: no advertisement
    raw = RawSocketProber().run(jobs, timeout=0.5)
    scapy = ScapyProber().run(jobs, timeout=0.5)
    expected = [Verdict.ALLOWED, Verdict.ALLOWED, Verdict.DENIED, Verdict.DENIED, Verdict.UNKNOWN]
    assert [r.verdict for r in raw] == expected, [r.detail for r in raw]
    assert [r.verdict for r in scapy] == expected, [r.detail for r in scapy]
    assert [r.evidence for r in scapy] == [r.evidence for r in raw]


def test_ipv6_seed_agrees_on_all_three_planes(v6_lab: tuple[Lab, Inventory]) -> None:
    lab, inventory = v6_lab
    report = checker(lab, inventory).run()
    assert summarize(report.cells) == {c.value: 0 for c in DriftClass}, [c for c in report.cells if c.drift]
    tcp = [c for c in report.cells if c.protocol is Protocol.TCP]
    assert tcp and all(c.observed is not None and c.observed.verdict is not Verdict.UNKNOWN for c in tcp)
    for source in ("default/podclient", "default/vm-server"):
        db = cell(report, source, "ext:db", 5432)
        assert (db.expected.verdict, db.programmed.verdict, db.observed.verdict) == (Verdict.ALLOWED,) * 3
        assert "ip6.dst == fd00:200::5/128" in db.programmed.reasons[0].detail
        assert cell(report, source, "ext:db", 22).observed.verdict is Verdict.DENIED
    assert cell(report, "default/podclient", "default/vm-server", 8080).observed.verdict is Verdict.DENIED
    assert report.mapping is not None and report.mapping.ok
    assert not report.findings


def test_ipv6_drop_flow_on_the_physical_bridge_is_dataplane_drift(v6_lab: tuple[Lab, Inventory]) -> None:
    lab, inventory = v6_lab
    with drop_flow(lab, "br-ex", f"tcp6,ipv6_dst={DB},tp_dst=5432"):
        report = checker(lab, inventory).run()
        db = cell(report, "default/vm-server", "ext:db", 5432)
        assert db.programmed.verdict is Verdict.ALLOWED and db.observed.verdict is Verdict.DENIED
        assert set(db.drift) == {DriftClass.DATAPLANE, DriftClass.BLACKHOLE}
    assert not cell(checker(lab, inventory).run(), "default/vm-server", "ext:db", 5432).drift


def test_probe_and_verify_commands_on_the_ipv6_lab(v6_lab: tuple[Lab, Inventory]) -> None:
    lab, _ = v6_lab
    where = ["--lab", "--state-dir", str(lab.state_dir), "--prefix", lab.prefix]  # no -f: the lab's own manifests
    ok = segcheck("probe", "podclient", "db:5432", *where, "-o", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads(ok.stdout)
    assert data["status"] == "match" and data["observed"]["verdict"] == "allowed"
    assert data["observed"]["because"] == ["probe/syn-ack"]
    assert data["check"]["kind"] == "postgres" and "AuthenticationOk" in data["check"]["answer"]
    denied = segcheck("probe", "podclient", "db:5433", *where, "-o", "json")
    assert denied.returncode == 0, denied.stdout + denied.stderr
    data = json.loads(denied.stdout)
    assert (data["status"], data["observed"]["verdict"]) == ("match", "denied")
    assert data["observed"]["because"] == ["probe/no-answer-target-alive"]
    verify = segcheck("verify", *where)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "leak=0, blackhole=0, controller=0, dataplane=0, unknown=0" in verify.stdout
    trace = segcheck("explain", "vm-server", "db:5432", "--trace", *where, "-o", "json")
    assert trace.returncode == 0, trace.stderr
    assert json.loads(trace.stdout)["trace"]["verdict"] == "delivered"


def test_the_agent_on_the_ipv6_lab_is_clean_and_sees_a_v6_blackhole(v6_lab: tuple[Lab, Inventory]) -> None:
    lab, _ = v6_lab
    agent = Agent(FilesSource([packaged_seed_ipv6()], poll_seconds=0.5), NorthboundReader(lab.nb_url),
                  OvsReader(lab.ovs_url), RawSocketProber(), LabLocator(lab), "lab-node",
                  profile=PROFILES[lab.ovnk_version], interval=2.0, jitter=0.1, only_local=False)
    agent.start()
    try:
        state = agent.wait_for(lambda s: s.rounds >= 1, timeout=15)
        assert state is not None, "no probe round within 15 s"
        assert not any(state.drift_counts()[NET].values()), state.drift_counts()
        with drop_flow(lab, "br-ex", f"tcp6,ipv6_dst={DB},tp_dst=5432"):
            # the sentinels (allowed cells, every second) see the path to the DB go dark
            state = agent.wait_for(lambda s: s.drift_counts()[NET]["blackhole"] == 2
                                   and s.drift_counts()[NET]["dataplane"] == 2, timeout=10)
            assert state is not None, "the v6 blackhole was not seen within 10 s"
        assert agent.wait_for(lambda s: not any(s.drift_counts()[NET].values()), timeout=10) is not None
    finally:
        agent.stop()


def test_lab_up_from_the_ipv6_manifests_on_the_command_line() -> None:
    """`segcheck lab up -f examples/seed-ipv6` as a user runs it (private state dir and prefix), then `probe` and
    `verify` with `--lab` and no `-f`: the lab's own manifests, its own OVN-K version."""
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-lab-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # PostgreSQL runs as user postgres
    where = ["--state-dir", str(state_dir), "--prefix", f"sct{secrets.token_hex(3)}-"]
    try:
        up = segcheck("lab", "up", "-f", str(packaged_seed_ipv6()), "--ovnk-version", "current", *where, "-o", "json")
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(up.stdout)
        assert status["healthy"] and status["policies"]["profile"] == "current" and status["policies"]["acls"] == 5
        probe = segcheck("probe", "vm-server", "db:5432", "--lab", *where, "-o", "json")
        assert probe.returncode == 0, probe.stdout + probe.stderr
        data = json.loads(probe.stdout)
        assert data["status"] == "match" and data["programmed"]["verdict"] == "allowed"
        assert "ip6.dst == fd00:200::5/128" in data["programmed"]["reasons"][0]["detail"]
        verify = segcheck("verify", "--lab", *where)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "owner-based ids (OVN-K 4.16+)" in verify.stdout  # the lab's own version, recorded by `lab up`
        assert "leak=0, blackhole=0, controller=0, dataplane=0, unknown=0" in verify.stdout
    finally:
        down = segcheck("lab", "down", *where)
        shutil.rmtree(state_dir, ignore_errors=True)
    assert down.returncode == 0, down.stderr
