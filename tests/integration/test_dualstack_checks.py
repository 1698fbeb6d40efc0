"""Dual-stack end to end through segcheck's own checks on the real lab (the seed with fd00:200::/64 addresses beside
the IPv4 ones; the NAD without and with `subnets`; each OVN-K version's shapes): `verify` (use case and CLI) judges
every pair per family and the raw prober probes each family's cell in its own family, all three planes agreeing;
`probe` answers per family, or for the family a typed address picks; a policy whose verdict differs per family (an IPv4 ipBlock)
is allowed for IPv4 and denied for IPv6 on all three planes, a selector peer allows both (with subnets), a rule
with no peers allows IPv4 only (without: OVN-K's `ip4`); a drop of IPv6 TCP on
br-ex is drift on the IPv6 cell only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.drift import DriftClass, summarize
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Protocol, Ref, Verdict
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.sources import LabSources
from segcheck.agent.lab.topology import topology_from_inventory
from segcheck.agent.runtime.checks import probe_cell, verify_networks
from segcheck.agent.runtime.status import Status

from .conftest import _bring_up, _new_lab, _tear_down
from .planes import drop_flow
from .test_dualstack_lab import dual_stack_seed

pytestmark = pytest.mark.lab

NET = Ref("default", "tenantblue")
POD, VM, DB = "default/podclient", "default/vm-server", "ext:db"
SUBNETS = "192.168.200.0/24,fd00:200::/64"

# Per-family verdicts on 8080: vm-server admits only the IPv4 block (its IPv6 packets fall to the default deny);
# podclient's egress to the VM is by selector where the network has IPAM (both families; else by ipBlocks of both),
# and the VM -> podclient direction is allowed by selector peers on both sides (with IPAM only).
PER_FAMILY = """\
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: vm-ingress-ipv4-only
  namespace: default
  annotations: {k8s.v1.cni.cncf.io/policy-for: default/tenantblue}
spec:
  podSelector: {matchLabels: {app: vm-server}}
  policyTypes: [Ingress]
  ingress:
  - from: [{ipBlock: {cidr: 192.168.200.0/24}}]
    ports: [{protocol: TCP, port: 8080}]
---
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: pod-egress-to-vm
  namespace: default
  annotations: {k8s.v1.cni.cncf.io/policy-for: default/tenantblue}
spec:
  podSelector: {matchLabels: {app: podclient}}
  policyTypes: [Egress]
  egress:
  - to: PEERS
    ports: [{protocol: TCP, port: 8080}]
"""
SELECTOR_BOTH = """\
---
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: vm-to-pod-by-selector
  namespace: default
  annotations: {k8s.v1.cni.cncf.io/policy-for: default/tenantblue}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: vm-server}}}]
    ports: [{protocol: TCP, port: 8080}]
  egress:
  - to: [{podSelector: {matchLabels: {app: podclient}}}]
    ports: [{protocol: TCP, port: 8080}]
"""
# Without IPAM, VM -> podclient: an egress rule with no peers, which OVN-K writes for `ip4` only (IPv6 denied),
# towards an ingress from both families' blocks.
ALL_PEERS = """\
---
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: vm-to-pod-all-peers
  namespace: default
  annotations: {k8s.v1.cni.cncf.io/policy-for: default/tenantblue}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{ipBlock: {cidr: 192.168.200.20/32}}, {ipBlock: {cidr: "fd00:200::20/128"}}]
    ports: [{protocol: TCP, port: 8080}]
  egress:
  - ports: [{protocol: TCP, port: 8080}]
"""


def manifests(where: Path, ipam: bool) -> Path:
    where.mkdir()
    dual_stack_seed(where)
    if ipam:
        nad = where / "10-nad.yaml"
        nad.write_text(nad.read_text().replace('"topology": "localnet",',
                                               f'"topology": "localnet",\n      "subnets": "{SUBNETS}",'))
        assert SUBNETS in nad.read_text()
    return where


def load(*paths: Path) -> Inventory:
    inventory, errors = load_inventory(list(paths))
    assert not errors, errors
    return inventory


@pytest.fixture(scope="module", params=[False, True], ids=["no-subnets", "subnets"])
def ds_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Lab, Path, bool]]:
    """One dual-stack lab per NAD shape, built from its manifests and recording them (`--lab` reads them)."""
    ipam = request.param
    seed = manifests(tmp_path_factory.mktemp("ds") / "seed", ipam)
    lab = _new_lab(topology_from_inventory(load(seed), NET))
    try:
        _bring_up(lab).remember_manifests([seed])
        yield lab, seed, ipam
    finally:
        _tear_down(lab)


@pytest.fixture(scope="module", params=["4.14", "current"])
def ds(ds_lab: tuple[Lab, Path, bool], request: pytest.FixtureRequest
       ) -> Iterator[tuple[Lab, Path, bool, Inventory]]:
    """The seed's policies programmed in one OVN-K version's shapes (the lab recording that version)."""
    lab, seed, ipam = ds_lab
    inventory = load(seed)
    controller = LabController(lab)
    controller.apply(inventory, NET, PROFILES[request.param])
    try:
        yield lab, seed, ipam, inventory
    finally:
        controller.clear(NET.name)


def cells_of(cells, source, destination, port):  # type: ignore[no-untyped-def]
    """The pair's TCP cells holding `port`, by family."""
    found = {c.family: c for c in cells if c.source == source and c.destination == destination
             and c.protocol is Protocol.TCP and c.ports.first <= port <= c.ports.last}
    assert set(found) == {4, 6}, (source, destination, port, sorted(found, key=str))
    return found


def verdicts(cell):  # type: ignore[no-untyped-def]
    return cell.expected.verdict, cell.programmed.verdict, cell.observed.verdict


def segcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segcheck.cli", *args], capture_output=True, text=True, timeout=120)


def test_verify_judges_and_probes_every_pair_per_family(ds) -> None:  # type: ignore[no-untyped-def]
    lab, _, _, inventory = ds
    [report] = verify_networks(inventory, LabSources(lab), PROFILES[lab.ovnk_version], network=NET).networks
    assert report.status is Status.MATCH, [c for c in report.cells if c.drift]
    assert summarize(report.cells) == {c.value: 0 for c in DriftClass}
    assert not report.findings and not report.errors
    pairs = {(c.source, c.destination) for c in report.cells}
    assert len(pairs) == 6  # podclient, vm-server, db: every ordered pair
    for src, dst in pairs:
        assert {c.family for c in report.cells if (c.source, c.destination) == (src, dst)} == {4, 6}, (src, dst)
    probed = [c for c in report.cells if c.protocol is Protocol.TCP and c.source != DB]  # db is no send point
    assert probed and all(c.observed is not None and c.observed.verdict is not Verdict.UNKNOWN for c in probed), \
        [(c.source, c.destination, c.ports, c.family, c.observed) for c in probed]
    # each family's cell probed in its own family: from the source's address of it to the destination's
    sent = {(str(r.job.source.ip), str(r.job.dst_ip)) for r in report.probes}
    assert {("192.168.200.10", "192.168.200.5"), ("fd00:200::10", "fd00:200::5"),
            ("192.168.200.20", "192.168.200.10"), ("fd00:200::20", "fd00:200::10")} <= sent, sent
    assert all((":" in s) == (":" in d) for s, d in sent)
    for source in (POD, VM):
        db = cells_of(report.cells, source, DB, 5432)
        assert verdicts(db[4]) == verdicts(db[6]) == (Verdict.ALLOWED,) * 3
        assert "ip4.dst == 192.168.200.5/32" in db[4].programmed.reasons[0].detail
        assert "ip6.dst == fd00:200::5/128" in db[6].programmed.reasons[0].detail
        assert {c.observed.verdict for c in cells_of(report.cells, source, DB, 22).values()} == {Verdict.DENIED}


def test_verify_and_probe_commands_per_family(ds) -> None:  # type: ignore[no-untyped-def]
    lab = ds[0]
    where = ["--lab", "--state-dir", str(lab.state_dir), "--prefix", lab.prefix]  # no -f: the lab's own manifests
    verify = segcheck("verify", *where, "-o", "json")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    [net] = [json.loads(line) for line in verify.stdout.splitlines()]  # JSON Lines: one object per network
    assert net["network"] == str(NET) and not any(net["drift"].values()), net["drift"]
    tcp = [c for c in net["cells"] if c["protocol"] == "TCP" and c["from"] != DB]
    assert {c["family"] for c in tcp} == {"ipv4", "ipv6"}
    assert all(c["observed"]["verdict"] in ("allowed", "denied") for c in tcp), tcp
    assert all(not c.get("drift") for c in net["cells"])
    for family in ("ipv4", "ipv6"):
        assert {c["observed"]["verdict"] for c in tcp if c["family"] == family} == {"allowed", "denied"}
    both = segcheck("probe", "podclient", "db:5432", *where, "-o", "json")  # no address typed: each family
    assert both.returncode == 0, both.stdout + both.stderr
    data = json.loads(both.stdout)
    assert data["status"] == "match" and data["check"]["kind"] == "postgres", data
    assert [(c["family"], c["observed"]["verdict"], c["observed"]["because"]) for c in data["cells"]] == [
        ("ipv4", "allowed", ["probe/syn-ack"]), ("ipv6", "allowed", ["probe/syn-ack"])]
    for target, family, address in (("[fd00:200::5]:5432", "ipv6", "fd00:200::5"),
                                    ("192.168.200.5:5432", "ipv4", "192.168.200.5")):
        probe = segcheck("probe", "podclient", target, *where, "-o", "json")
        assert probe.returncode == 0, probe.stdout + probe.stderr
        data = json.loads(probe.stdout)
        assert (data["status"], data["family"], data["observed"]["verdict"]) == ("match", family, "allowed"), data
        assert data["observed"]["because"] == ["probe/syn-ack"]
        assert address in data["programmed"]["reasons"][0]["detail"]
        assert data["check"]["kind"] == "postgres" and "AuthenticationOk" in data["check"]["answer"]
    denied = segcheck("probe", "vm-server", "[fd00:200::10]:8080", *where, "-o", "json")
    assert denied.returncode == 0, denied.stdout + denied.stderr
    data = json.loads(denied.stdout)
    assert (data["status"], data["family"], data["observed"]["verdict"]) == ("match", "ipv6", "denied")
    assert data["observed"]["because"] == ["probe/no-answer-target-alive"]


def test_a_verdict_that_differs_per_family_holds_on_all_three_planes(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab, seed, ipam, inventory = ds
    peers = "[{podSelector: {matchLabels: {app: vm-server}}}]" if ipam else \
        '[{ipBlock: {cidr: 192.168.200.20/32}}, {ipBlock: {cidr: "fd00:200::20/128"}}]'
    extra = tmp_path / "60-per-family.yaml"
    extra.write_text(PER_FAMILY.replace("PEERS", peers) + (SELECTOR_BOTH if ipam else ALL_PEERS))
    policies = load(seed, extra)
    controller = LabController(lab)
    controller.apply(policies, NET, PROFILES[lab.ovnk_version])
    try:
        [report] = verify_networks(policies, LabSources(lab), PROFILES[lab.ovnk_version], network=NET).networks
        assert summarize(report.cells) == {c.value: 0 for c in DriftClass}, [c for c in report.cells if c.drift]
        assert [(f.kind.value, str(f.policy)) for f in report.findings] == \
            ([] if ipam else [("all-peers-ipv4-only", "default/vm-to-pod-all-peers")]), report.findings
        to_vm = cells_of(report.cells, POD, VM, 8080)
        assert verdicts(to_vm[4]) == (Verdict.ALLOWED,) * 3, to_vm[4]
        assert verdicts(to_vm[6]) == (Verdict.DENIED,) * 3, to_vm[6]
        assert any("vm-ingress-ipv4-only" in r.ref + r.detail for r in to_vm[4].expected.reasons), \
            to_vm[4].expected.reasons
        assert "ip4.src == 192.168.200.0/24" in " ".join(r.detail for r in to_vm[4].programmed.reasons)
        assert to_vm[4].observed.reasons[0].ref == "probe/syn-ack"
        assert to_vm[6].observed.reasons[0].ref == "probe/no-answer-target-alive"
        if ipam:  # selector peers: both families' address sets
            back = cells_of(report.cells, VM, POD, 8080)
            for family in (4, 6):
                assert verdicts(back[family]) == (Verdict.ALLOWED,) * 3, back[family]
                assert any("vm-to-pod-by-selector" in r.ref + r.detail for r in back[family].expected.reasons)
            assert "ip6.src == {$" in " ".join(r.detail for r in back[6].programmed.reasons)
        else:  # a rule with no peers on an IPAM-less network: ip4 only, so the VM's IPv6 egress is denied
            back = cells_of(report.cells, VM, POD, 8080)
            assert verdicts(back[4]) == (Verdict.ALLOWED,) * 3, back[4]
            assert verdicts(back[6]) == (Verdict.DENIED,) * 3, back[6]
            assert "ip4 && tcp" in " ".join(r.detail for r in back[4].programmed.reasons), back[4].programmed
    finally:
        controller.apply(inventory, NET, PROFILES[lab.ovnk_version])


def test_an_ipv6_only_drop_on_br_ex_is_drift_on_the_ipv6_cell_only(ds) -> None:  # type: ignore[no-untyped-def]
    lab, _, _, inventory = ds
    profile = PROFILES[lab.ovnk_version]
    with drop_flow(lab, "br-ex", "tcp6,ipv6_dst=fd00:200::5,tp_dst=5432"):
        [report] = verify_networks(inventory, LabSources(lab), profile, network=NET).networks
        drifting = {(c.source, c.destination, c.family, c.sample_port): set(c.drift) for c in report.cells if c.drift}
        assert drifting == {(POD, DB, 6, 5432): {DriftClass.DATAPLANE, DriftClass.BLACKHOLE},
                            (VM, DB, 6, 5432): {DriftClass.DATAPLANE, DriftClass.BLACKHOLE}}, drifting
        for source in (POD, VM):
            db = cells_of(report.cells, source, DB, 5432)
            assert verdicts(db[4]) == (Verdict.ALLOWED,) * 3
            assert verdicts(db[6]) == (Verdict.ALLOWED, Verdict.ALLOWED, Verdict.DENIED)
        probed = probe_cell(inventory, LabSources(lab), "podclient", "db:5432", profile)  # no address: each family
        assert probed.status is Status.DRIFT
        assert [(c.family, c.observed.verdict, bool(c.drift)) for c in probed.cells] == [
            (4, Verdict.ALLOWED, False), (6, Verdict.DENIED, True)]
    [clean] = verify_networks(inventory, LabSources(lab), profile, network=NET).networks
    assert not any(c.drift for c in clean.cells)
