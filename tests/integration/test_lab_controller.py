"""The lab controller against the real lab: policies programmed as OVN-K does decide real traffic.

Denials are proven by a single bounded connect that times out (a closed port without policy answers RST at
once), and ARP must keep resolving for denied peers (the probers' liveness control).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import CliRunner

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.lab import DEFAULT_OVNK_VERSION, Lab
from segcheck.cli.lab_commands import lab as lab_group

pytestmark = pytest.mark.lab

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
DB, POD, GUEST = "192.168.200.5", "192.168.200.10", "192.168.200.20"
DENY_TIMEOUT = 1.0

VM_FROM_POD = """\
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: vm-from-podclient
  namespace: default
  annotations: {k8s.v1.cni.cncf.io/policy-for: default/tenantblue}
spec:
  podSelector: {matchLabels: {app: vm-server}}
  policyTypes: [Ingress]
  ingress:
  - from: [{ipBlock: {cidr: 192.168.200.10/32}}]
    ports: [{protocol: TCP, port: 8080}]
"""


def connect_once(lab: Lab, host: str, ip: str, port: int, timeout: float = DENY_TIMEOUT) -> str:
    """One TCP connect from `host`'s namespace: "connected", "refused" or "timeout" (bounded by `timeout`)."""
    code = (
        "import socket\n"
        f"s=socket.socket(); s.settimeout({timeout})\n"
        "try:\n"
        f"    s.connect(({ip!r},{port})); print('connected')\n"
        "except socket.timeout: print('timeout')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError as e: print('error', e.errno)\n"
    )
    return lab.run_in(host, "python3", "-c", code, timeout=timeout + 5).stdout.strip()


def seed_inventory(*extra: Path, policies: bool = True) -> Inventory:
    files = sorted(p for p in SEED.glob("*.yaml") if policies or not p.name.startswith("50-"))
    inv, errors = load_inventory([*files, *extra])
    assert not errors, [str(e) for e in errors]
    return inv


@pytest.fixture(scope="module", params=["4.14", "current"])
def controller(lab: Lab, request: pytest.FixtureRequest) -> Iterator[LabController]:
    """The session lab with policies programmed per test in one OVN-K version's NB shapes; cleared afterwards,
    so other modules see an open lab."""
    lab.remember_ovnk_version(request.param)
    ctl = LabController(lab)
    try:
        yield ctl
    finally:
        ctl.clear("tenantblue")
        lab.remember_ovnk_version(DEFAULT_OVNK_VERSION)


@pytest.fixture
def seeded(lab: Lab, controller: LabController) -> Lab:
    report = controller.apply(seed_inventory())
    assert (report.port_groups, report.acls, report.address_sets) == (4, 5, 0)
    assert report.tier_supported  # the lab's OVN has ACL tiers (trixie's when the system's has none)
    return lab


def test_nb_holds_exactly_one_versions_shapes(seeded: Lab) -> None:
    rows = json.loads(seeded.run_nbctl("--format=json", "--columns=name,external_ids", "list", "Port_Group"))
    ids = [dict(row[1][1]) for row in rows["data"]]
    legacy = [i for i in ids if "name" in i and "k8s.ovn.org/owner-type" not in i]
    owned = [i for i in ids if i.get("k8s.ovn.org/owner-controller") == "tenantblue-network-controller"]
    if seeded.ovnk_version == "4.14":
        assert len(legacy) == 4 and owned == [] and all(i["k8s.ovn.org/network"] == "tenantblue" for i in legacy)
    else:
        assert len(owned) == 4 and legacy == []
    tiers = seeded.run_nbctl("--bare", "--columns=tier", "list", "ACL").split()
    assert tiers and set(tiers) == {"2"}


def test_seed_allows_pod_to_db_and_psql(seeded: Lab, tcp: Callable[..., str]) -> None:
    tcp(seeded, "podclient", DB, 5432, read=False)
    out = seeded.run_in("podclient", "psql", "-X", "-A", "-t", seeded.postgres_dsn, "-c",
                        "select current_user || '@' || current_database()", timeout=15).stdout
    assert out.strip() == "app@appdb"


def test_seed_allows_guest_to_db(seeded: Lab, tcp: Callable[..., str]) -> None:
    tcp(seeded, "vm-server", DB, 5432, read=False)


def test_seed_denies_other_ports_and_peers(seeded: Lab) -> None:
    assert connect_once(seeded, "podclient", DB, 22) == "timeout"  # no listener: without policy, "refused"
    assert connect_once(seeded, "podclient", GUEST, 8080) == "timeout"
    assert connect_once(seeded, "vm-server", POD, 8080) == "timeout"
    assert connect_once(seeded, "db", POD, 8080) == "timeout"  # ingress default deny


def test_arp_resolves_for_denied_peers(seeded: Lab) -> None:
    vm_mac = seeded.topology.vms[0].mac
    seeded.run_in("podclient", "ip", "neigh", "flush", "to", GUEST, "dev", "net1")
    assert connect_once(seeded, "podclient", GUEST, 8080) == "timeout"
    entry = json.loads(seeded.run_in("podclient", "ip", "-j", "neigh", "show", "to", GUEST, "dev", "net1").stdout)
    assert entry and entry[0].get("lladdr") == vm_mac, entry
    assert set(entry[0].get("state", [])) & {"REACHABLE", "STALE", "DELAY", "PROBE"}, entry


def test_other_policies_replace_the_seed(lab: Lab, controller: LabController, tmp_path: Path,
                                         tcp: Callable[..., str]) -> None:
    (tmp_path / "vm.yaml").write_text(VM_FROM_POD)
    report = controller.apply(seed_inventory(tmp_path / "vm.yaml", policies=False))
    assert (report.port_groups, report.acls) == (3, 5)  # policy PG + both default-deny PGs (4 deny/ARP + 1 allow)
    assert tcp(lab, "podclient", GUEST, 8080).startswith("segcheck-lab vm-server 8080")
    assert tcp(lab, "vm-server", POD, 8080).startswith("segcheck-lab podclient 8080")  # pod not isolated now
    assert connect_once(lab, "db", GUEST, 8080) == "timeout"  # the guest's ingress admits only podclient
    tcp(lab, "podclient", DB, 5432, read=False)


def test_apply_is_idempotent(lab: Lab, controller: LabController) -> None:
    inv = seed_inventory()
    controller.apply(inv)
    first = controller.owned("tenantblue")
    again = controller.apply(inv)
    assert again.unchanged and again.write_seconds == 0
    second = controller.owned("tenantblue")
    assert first == second and first.acl_matches() == second.acl_matches()
    assert len(first.acl_matches()) == 5


def test_clear_removes_every_owned_row(lab: Lab, controller: LabController, tcp: Callable[..., str]) -> None:
    controller.apply(seed_inventory())
    counts = controller.clear("tenantblue")
    assert counts == {"port_groups": 4, "acls": 5, "address_sets": 0}
    assert controller.owned("tenantblue").empty
    listed = lab.run_nbctl("--bare", "--columns=external_ids", "list", "Port_Group")
    assert "tenantblue-network-controller" not in listed
    assert tcp(lab, "podclient", GUEST, 8080).startswith("segcheck-lab vm-server 8080")


def test_cli_apply_and_up(lab: Lab, controller: LabController) -> None:
    common = ["--state-dir", str(lab.state_dir), "--prefix", lab.prefix, "-o", "json"]
    result = CliRunner().invoke(lab_group, ["apply", "-f", str(SEED), *common])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["port_groups"], report["acls"], report["controller"]) == (4, 5, "tenantblue-network-controller")
    result = CliRunner().invoke(lab_group, ["up", "-f", str(SEED), *common])  # healthy lab: no rebuild
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["policies"]["unchanged"] is True


def test_cli_apply_rejects_bad_manifests(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: k8s.cni.cncf.io/v1beta1\nkind: MultiNetworkPolicy\n"
                                       "metadata: {name: broken, namespace: default}\nspec: {podSelector: 3}\n")
    result = CliRunner().invoke(lab_group, ["apply", "-f", str(SEED), "-f", str(tmp_path / "bad.yaml"),
                                            "--state-dir", str(lab.state_dir), "--prefix", lab.prefix])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "broken" in result.output
