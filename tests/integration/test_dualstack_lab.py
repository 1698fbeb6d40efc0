"""A dual-stack lab (the seed with IPv6 addresses beside the IPv4 ones, an allow rule per family): both families
cross the localnet under the OVN-K ACLs, the raw prober answers for each family from the same workload, and the
check (a cell per family, each probed in its own) agrees on all three planes. segcheck's own checks per family, in
both OVN-K versions' shapes, with and without subnets: test_dualstack_checks.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.drift import DriftClass, summarize
from segcheck.agent.core.model import Ref, Verdict, parse_ip
from segcheck.agent.core.probe import Evidence, ProbeJob, SendPoint
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.lab.topology import topology_from_inventory

from .planes import checker

pytestmark = pytest.mark.lab

NET = Ref("default", "tenantblue")


def dual_stack_seed(into: Path) -> Path:
    """examples/seed with fd00:200::/64 addresses beside every IPv4 one, and the DB allowed on both."""
    for f in packaged_seed().iterdir():
        text = f.read_text()
        text = text.replace('"ips": ["192.168.200.10/24"]', '"ips": ["192.168.200.10/24", "fd00:200::10/64"]')
        text = text.replace("addresses: [192.168.200.20/24]", 'addresses: [192.168.200.20/24, "fd00:200::20/64"]')
        text = text.replace("ips: [192.168.200.5]", 'ips: [192.168.200.5, "fd00:200::5"]')
        text = text.replace("        cidr: 192.168.200.5/32\n",
                            '        cidr: 192.168.200.5/32\n    - ipBlock:\n        cidr: "fd00:200::5/128"\n')
        (into / f.name).write_text(text)
    return into


def test_dual_stack_lab(make_lab, tmp_path: Path, tcp) -> None:  # type: ignore[no-untyped-def]
    inventory, errors = load_inventory([dual_stack_seed(tmp_path)])
    assert not errors, errors
    assert all(len(a.ips) == 2 for a in inventory.attachments_on(NET)), "both families declared"
    topology = topology_from_inventory(inventory, NET)
    assert topology.network.cidrs == ("192.168.200.0/24", "fd00:200::/64")
    lab = make_lab(topology)
    LabController(lab).apply(inventory, NET)
    matches = LabController(lab).owned(NET.name).acl_matches()
    assert any(m.startswith("ip4.dst == 192.168.200.5/32") for m in matches)
    assert any(m.startswith("ip6.dst == fd00:200::5/128") for m in matches)
    lsp = lab.lsp_name("podclient")
    assert lab.run_nbctl("get", "Logical_Switch_Port", lsp, "port_security").strip() == \
        '["0a:58:c0:a8:c8:0a 192.168.200.10 fd00:200::10"]'

    # the kernel's own connections, each family: allowed to the DB, denied to the VM
    for db, vm in (("192.168.200.5", "192.168.200.20"), ("fd00:200::5", "fd00:200::20")):
        tcp(lab, "podclient", db, 5432, read=False)
        with pytest.raises(AssertionError):
            tcp(lab, "podclient", vm, 8080, attempts=1)
    assert lab.postgres().psql("app", "appdb", "select inet_client_addr()", host="fd00:200::5",
                               netns=lab.netns("vm-server")).strip() == "fd00:200::20"

    # the raw prober from the same workloads, once per family (the VM's IPv6 send point: the guest's address)
    jobs = []
    for name in ("podclient", "vm-server"):
        v4 = lab.send_point(name)
        [ipv6] = [ip for a in lab.topology.attachments if a.name == name for ip in a.ips if ":" in ip]
        v6 = SendPoint(v4.netns, v4.interface, parse_ip(ipv6), v4.mac)
        jobs += [ProbeJob(v4, parse_ip("192.168.200.5"), 5432), ProbeJob(v6, parse_ip("fd00:200::5"), 5432),
                 ProbeJob(v4, parse_ip("192.168.200.5"), 22), ProbeJob(v6, parse_ip("fd00:200::5"), 22)]
    results = RawSocketProber().run(jobs, timeout=0.5)
    assert [(r.verdict, r.evidence) for r in results] == [
        (Verdict.ALLOWED, Evidence.SYN_ACK), (Verdict.ALLOWED, Evidence.SYN_ACK),
        (Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE), (Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE)] * 2, \
        [r.detail for r in results]

    report = checker(lab, inventory).run()
    assert summarize(report.cells) == {c.value: 0 for c in DriftClass}, [c for c in report.cells if c.drift]
    assert not report.findings
    sent = [c for c in report.cells if c.protocol.value == "TCP" and c.source != "ext:db"]
    assert {c.family for c in sent} == {4, 6}
    assert all(c.observed is not None and c.observed.verdict is not Verdict.UNKNOWN for c in sent)
