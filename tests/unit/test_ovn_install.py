"""Choosing the lab's OVN: the system's when it has ACL tiers, else trixie's in the OVS prefix, run through
that prefix's loader; without the Debian archive, the system's (and the lab says it has no tiers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segcheck.agent.core.model import AttachmentKind
from segcheck.agent.core.ovnk.ports import pod_port_addresses
from segcheck.agent.lab import ovn_install
from segcheck.agent.lab.errors import LabUnavailable
from segcheck.agent.lab.ovn_install import OvnInstall, schema_has_tiers
from segcheck.agent.lab.ovs_install import OvsInstall


def schema(folder: Path, acl_columns: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ovn-nb.ovsschema").write_text(json.dumps(
        {"name": "OVN_Northbound", "tables": {"ACL": {"columns": {c: {} for c in acl_columns}}}}))
    return folder


def test_tiers_are_read_from_the_nb_schema(tmp_path: Path) -> None:
    assert schema_has_tiers(schema(tmp_path / "new", ["match", "tier"]))
    assert not schema_has_tiers(schema(tmp_path / "old", ["match"]))
    assert not schema_has_tiers(tmp_path / "missing")


def test_prefix_binaries_run_through_the_prefix_loader(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    ovs = OvsInstall((3, 5, 0), {}, prefix=tree)
    ovn = OvnInstall({"ovn-nbctl": tree / "usr/bin/ovn-nbctl"}, tree / "usr/share/ovn", ovs,
                     {"ovn-nbctl": tmp_path / "bin" / "ovn-nbctl"})
    assert ovn.argv("ovn-nbctl", "show") == [
        str(tmp_path / "bin" / "ovn-nbctl"), "--library-path", str(tree / "usr/lib/x86_64-linux-gnu"),
        "--argv0", "ovn-nbctl", str(tree / "usr/bin/ovn-nbctl"), "show"]
    assert OvnInstall({"ovn-nbctl": Path("/usr/bin/ovn-nbctl")}, tmp_path).argv("ovn-nbctl", "show") == [
        "/usr/bin/ovn-nbctl", "show"]


def test_without_the_archive_the_system_ovn_without_tiers_is_used(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    old = OvnInstall({}, schema(tmp_path / "system", ["match"]))
    monkeypatch.setattr(ovn_install, "system_ovn", lambda: old)
    monkeypatch.setattr(ovn_install, "prefix_install", lambda cache: None)
    chosen = ovn_install.locate_or_provision(OvsInstall((3, 1, 0), {}), tmp_path / "cache", allow_download=False)
    assert chosen is old and not chosen.tiers
    monkeypatch.setattr(ovn_install, "system_ovn", lambda: None)
    with pytest.raises(LabUnavailable):
        ovn_install.locate_or_provision(OvsInstall((3, 1, 0), {}), tmp_path / "cache", allow_download=False)


def test_a_system_ovn_with_tiers_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new = OvnInstall({}, schema(tmp_path / "system", ["match", "tier"]))
    monkeypatch.setattr(ovn_install, "system_ovn", lambda: new)
    assert ovn_install.locate_or_provision(OvsInstall((3, 1, 0), {}), tmp_path / "cache") is new


def test_vm_ports_hold_their_mac_only_without_ipam() -> None:
    mac, ips = "02:5e:c0:a8:c8:14", ["192.168.200.20"]
    assert pod_port_addresses(AttachmentKind.VM, mac, ips, ipam=False) == mac
    assert pod_port_addresses(AttachmentKind.VM, mac, ips, ipam=True) == f"{mac} 192.168.200.20"
    assert pod_port_addresses(AttachmentKind.POD, mac, ips, ipam=False) == f"{mac} 192.168.200.20"  # static ips


def test_a_tool_added_later_gets_its_launcher_without_a_download(tmp_path: Path) -> None:
    from segcheck.agent.lab.ovs_install import add_to_prefix

    loader = tmp_path / "tree" / "usr/lib/x86_64-linux-gnu" / "ld-linux-x86-64.so.2"
    loader.parent.mkdir(parents=True)
    loader.write_text("")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ovn-nbctl").symlink_to(loader)
    (tmp_path / "ready.json").write_text(json.dumps({"version": [3, 5, 0], "extra": list(ovn_install.TRIXIE_PACKAGES)}))
    add_to_prefix(tmp_path, ovn_install.TRIXIE_PACKAGES, ["ovn-nbctl", "ovn-trace"])  # would fail if it downloaded
    assert (tmp_path / "bin" / "ovn-trace").resolve() == loader.resolve()
    assert (tmp_path / "bin" / "ovn-nbctl").resolve() == loader.resolve()
