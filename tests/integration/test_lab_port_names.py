"""Issue 10, the lab's port fidelity: a pod attached through its own namespace's NAD of the network (one network,
two NADs) gets the logical switch port OVN-K gives it, scoped by that NAD, with `requested-chassis` and
`iface-id-ver` (the pod's UID, also on its OVS interface as the CNI writes it); ovn-controller binds it, and the
reader, the locator and the probes find it: the three planes agree."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.drift import DriftClass, summarize
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Protocol, Ref, Verdict
from segcheck.agent.core.ovnk import ids, names, ports
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.topology import pod_uid, topology_from_inventory

from .planes import checker

pytestmark = pytest.mark.lab

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
NET = Ref("default", "tenantblue")
OWN_NAD = Ref("tenant2", "tenantblue")


def manifests(where: Path) -> Path:
    """The seed with podclient in namespace tenant2, attached through tenant2's own NAD of tenantblue."""
    shutil.copytree(SEED, where)
    nad = (SEED / "10-nad.yaml").read_text()
    (where / "11-nad-tenant2.yaml").write_text(nad.replace("namespace: default", "namespace: tenant2").replace(
        '"netAttachDefName": "default/tenantblue"', '"netAttachDefName": "tenant2/tenantblue"'))
    pod = where / "20-podclient.yaml"
    pod.write_text(pod.read_text().replace("namespace: default", "namespace: tenant2"))
    return where


@pytest.fixture(scope="module")
def own_nad_lab(tmp_path_factory) -> Iterator[tuple[Lab, Inventory]]:
    inventory, errors = load_inventory([manifests(tmp_path_factory.mktemp("own-nad") / "manifests")])
    assert not errors, errors
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-lab-", dir="/tmp"))
    os.chmod(state_dir, 0o755)
    lab = Lab(state_dir, f"sco{secrets.token_hex(2)}-", topology_from_inventory(inventory, NET))
    try:
        lab.up()
        LabController(lab).apply(inventory, NET)
        yield lab, inventory
    finally:
        lab.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def test_the_port_is_named_after_the_pods_own_nad_and_bound(own_nad_lab):
    lab, inventory = own_nad_lab
    client = next(a for a in inventory.attachments if a.ref.name == "podclient")
    assert inventory.network_of(client.nad_ref) == NET and client.nad_ref == OWN_NAD
    port = names.pod_port(OWN_NAD, Ref("tenant2", "podclient"))
    assert lab.lsp_name("podclient") == port == "tenant2.tenantblue_tenant2_podclient"
    assert lab.run_nbctl("get", "Logical_Switch_Port", port, "up").strip() == "true"
    assert lab.run_nbctl("get", "Logical_Switch_Port", port, f"external_ids:{ids.NAD}").strip().strip('"') == \
        str(OWN_NAD)
    uid = pod_uid(Ref("tenant2", "podclient"))
    options = lab.run_nbctl("get", "Logical_Switch_Port", port, "options")
    assert f"{ports.REQUESTED_CHASSIS}={lab.node_name}" in options and uid in options
    iface = lab.run_vsctl("--bare", "--columns=name", "find", "Interface", f"external_ids:iface-id={port}").strip()
    assert lab.run_vsctl("get", "Interface", iface, f"external_ids:{ports.IFACE_ID_VER}").strip().strip('"') == uid
    # The chassis the port requests is this lab's node.
    assert lab.run_sbctl("--bare", "--columns=hostname", "list", "Chassis").strip() == lab.node_name


def test_the_three_planes_agree_on_it(own_nad_lab):
    lab, inventory = own_nad_lab
    report = checker(lab, inventory).run()
    assert summarize(report.cells) == {c.value: 0 for c in DriftClass}, [c for c in report.cells if c.drift]
    mine = [c for c in report.cells if c.protocol is Protocol.TCP and c.source == "tenant2/podclient"]
    assert mine and all(c.observed is not None and c.observed.verdict is c.expected.verdict for c in mine)
    to_vm = next(c for c in mine if c.destination == "default/vm-server" and c.ports.first <= 8080 <= c.ports.last)
    assert to_vm.observed.verdict is Verdict.DENIED  # vm-server's ingress default deny (podclient is not isolated)
    assert not [f for f in report.findings if "port" in f.kind.value], report.findings
