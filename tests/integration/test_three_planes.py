"""Declared vs programmed vs observed on the real lab: the seed agrees; tampering is named for what it is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from segcheck.agent.core.drift import DriftClass, summarize
from segcheck.agent.core.findings import FindingKind
from segcheck.agent.core.model import Protocol, Verdict
from segcheck.agent.lab.controller import LabController

from segcheck.agent.lab.seed import packaged_seed

from .planes import NET, checker, drop_flow, owned_acl, seeded

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module", params=["4.14", "current"])
def seed_lab(lab, request):
    """The seed in the NB shapes of each OVN-K version, the lab recording the version it writes (so checks
    expect it, as `--lab` does)."""
    was = lab.ovnk_version
    lab.remember_ovnk_version(request.param)
    try:
        with seeded(lab, request.param) as (_, inventory):
            yield lab, inventory
    finally:
        lab.remember_ovnk_version(was)


def cell(report, source, destination, port, protocol=Protocol.TCP):
    for c in report.cells:
        if c.source == source and c.destination == destination and c.protocol is protocol \
                and c.ports.first <= port <= c.ports.last:
            return c
    raise AssertionError(f"no cell {source} -> {destination} {port}")


def test_seed_policies_agree_on_all_three_planes(seed_lab):
    lab, inventory = seed_lab
    report = checker(lab, inventory).run()
    assert summarize(report.cells) == {c.value: 0 for c in DriftClass}, [c for c in report.cells if c.drift]
    tcp = [c for c in report.cells if c.protocol is Protocol.TCP]
    assert tcp and all(c.observed is not None and c.observed.verdict is not Verdict.UNKNOWN for c in tcp)
    db = cell(report, "default/vm-server", "ext:db", 5432)
    assert (db.expected.verdict, db.programmed.verdict, db.observed.verdict) == (Verdict.ALLOWED,) * 3
    assert db.expected.because == ["default/allow-db-egress:egress[0]"]
    assert "default:allow-db-egress" in db.programmed.reasons[0].detail
    assert cell(report, "default/podclient", "default/vm-server", 8080).observed.verdict is Verdict.DENIED
    assert report.mapping is not None and report.mapping.ok
    assert not report.findings


def test_deleted_allow_acl_is_controller_drift_and_a_blackhole(seed_lab):
    lab, inventory = seed_lab
    pg, _, uuid = owned_acl(lab, "allow-db-egress", "Egress")
    lab.run_nbctl("remove", "Port_Group", pg, "acls", uuid)
    try:
        lab.sync_hv()
        report = checker(lab, inventory).run()
        db = cell(report, "default/podclient", "ext:db", 5432)
        assert db.programmed.verdict is Verdict.DENIED and db.observed.verdict is Verdict.DENIED
        assert set(db.drift) == {DriftClass.CONTROLLER, DriftClass.BLACKHOLE}
        other = cell(report, "default/podclient", "ext:db", 22)
        assert not other.drift
    finally:
        LabController(lab).apply(inventory, NET)


def test_foreign_acl_opening_a_port_is_a_leak_and_unowned(seed_lab):
    lab, inventory = seed_lab
    # The egress default-deny port group, found by its drop ACL's ids (its name is a hash in current OVN-K).
    [deny] = lab.run_nbctl("--bare", "--columns=_uuid", "find", "ACL", "external_ids:type=defaultDeny",
                           "external_ids:direction=Egress").split()
    pg = lab.run_nbctl("--bare", "--columns=name", "find", "Port_Group", f"acls{{>=}}{deny}").strip()
    # apply-after-lb, like every OVN-K egress ACL: a pre-LB allow would still meet the after-LB default deny.
    lab.run_nbctl("--type=port-group", "--apply-after-lb", "acl-add", pg, "from-lport", "1001",
                  f"inport == @{pg} && ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==22", "allow-related")
    try:
        lab.sync_hv()
        report = checker(lab, inventory).run()
        ssh = cell(report, "default/podclient", "ext:db", 22)
        assert ssh.ports.first == ssh.ports.last == 22, "the ACL's port must become its own check point"
        assert ssh.expected.verdict is Verdict.DENIED and ssh.programmed.verdict is Verdict.ALLOWED
        assert ssh.observed.verdict is Verdict.ALLOWED  # the DB host answers (RST or SYN-ACK): it got through
        assert set(ssh.drift) == {DriftClass.LEAK, DriftClass.CONTROLLER}
        assert FindingKind.UNOWNED_ACL in {f.kind for f in report.findings}
        assert not cell(report, "default/podclient", "ext:db", 23).drift
    finally:
        lab.run_nbctl("--type=port-group", "acl-del", pg, "from-lport", "1001",
                      f"inport == @{pg} && ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==22")


def test_drop_flow_on_the_physical_bridge_is_dataplane_drift(seed_lab):
    lab, inventory = seed_lab
    with drop_flow(lab, "br-ex", "tcp,nw_dst=192.168.200.5,tp_dst=5432"):
        report = checker(lab, inventory).run()
        db = cell(report, "default/vm-server", "ext:db", 5432)
        assert db.programmed.verdict is Verdict.ALLOWED and db.observed.verdict is Verdict.DENIED
        assert set(db.drift) == {DriftClass.DATAPLANE, DriftClass.BLACKHOLE}
    report = checker(lab, inventory).run()
    assert not cell(report, "default/vm-server", "ext:db", 5432).drift


def test_unmapped_localnet_is_reported(seed_lab):
    lab, inventory = seed_lab
    lab.run_vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=othernet:br-ex")
    try:
        report = checker(lab, inventory).run()
        assert report.mapping is not None and not report.mapping.ok
        assert FindingKind.LOCALNET_UNMAPPED in {f.kind for f in report.findings}
    finally:
        lab.run_vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=tenantblue:br-ex")
        lab.sync_hv()


def segcheck(*args):
    return subprocess.run([sys.executable, "-m", "segcheck.cli", *args], capture_output=True, text=True, timeout=120)


def test_probe_command_on_the_lab(seed_lab):
    lab, _ = seed_lab
    where = ["--lab", "--state-dir", str(lab.state_dir), "--prefix", lab.prefix]
    ok = segcheck("probe", "vm-server", "db:5432", *where, "-o", "json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["status"] == "match" and data["observed"]["verdict"] == "allowed"
    assert data["check"]["kind"] == "postgres" and "AuthenticationOk" in data["check"]["answer"]
    denied = segcheck("probe", "podclient", "vm-server:8080", *where, "-o", "json")
    assert denied.returncode == 0, denied.stdout + denied.stderr
    assert json.loads(denied.stdout)["observed"]["verdict"] == "denied"
    verify = segcheck("verify", *where)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "leak=0, blackhole=0, controller=0, dataplane=0, unknown=0" in verify.stdout


def test_explain_trace_agrees_with_the_expected_verdicts(seed_lab):
    lab, _ = seed_lab
    where = ["-f", str(packaged_seed()), "--trace", "--lab", "--state-dir", str(lab.state_dir), "--prefix", lab.prefix,
             "-o", "json"]
    for source, destination, verdict in (("vm-server", "db:5432", "delivered"), ("podclient", "db:5432", "delivered"),
                                         ("podclient", "vm-server:8080", "dropped"), ("vm-server", "db:22", "dropped")):
        done = segcheck("explain", source, destination, *where)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["trace"]["verdict"] == verdict, (source, destination, done.stdout)
