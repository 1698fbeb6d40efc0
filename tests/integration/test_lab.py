"""The lab itself: it comes up as OVN-Kubernetes would program the seed, carries traffic, and goes away cleanly."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest

from segcheck.agent.core.ovnk import names as ovnk_names
from segcheck.agent.lab import netns, procs, state
from segcheck.agent.lab.lab import Lab

pytestmark = pytest.mark.lab

LNP = ovnk_names.localnet_port("tenantblue")


def test_bring_up_is_healthy(lab: Lab) -> None:
    status = lab.status()
    assert status["healthy"], status
    assert all(d["alive"] for d in status["daemons"].values())
    assert all(status["namespaces"].values())
    assert all(s["exists"] for s in status["sockets"].values())
    bringup = lab.measurements()["bringup"]
    assert bringup["seconds"] < 60


def test_uses_fixed_open_vswitch(lab: Lab) -> None:
    assert lab.ovs.version >= (3, 1, 3)
    assert "Open vSwitch" in lab.run_vsctl("--version")


def test_bridge_mapping_and_chassis_config(lab: Lab) -> None:
    ids = lab.run_vsctl("get", "Open_vSwitch", ".", "external_ids")
    assert '"ovn-bridge-mappings"="tenantblue:br-ex"' in ids.replace("ovn-bridge-mappings=", '"ovn-bridge-mappings"=')
    assert lab.run_vsctl("get", "Bridge", "br-int", "fail_mode").strip() == "secure"
    assert lab.run_vsctl("get", "Bridge", "br-int", "datapath_type").strip() == "netdev"
    assert lab.run_vsctl("get", "Bridge", "br-ex", "datapath_type").strip() == "netdev"


def test_localnet_patch_ports_exist(lab: Lab) -> None:
    assert ovnk_names.patch_port_from_br_int(LNP) in lab.run_vsctl("list-ports", "br-int").split()
    assert ovnk_names.patch_port_to_br_int(LNP) in lab.run_vsctl("list-ports", "br-ex").split()


def test_northbound_looks_like_ovn_kubernetes(lab: Lab) -> None:
    sw = ovnk_names.localnet_switch("tenantblue")
    assert sw == "tenantblue_ovn_localnet_switch"
    assert lab.run_nbctl("lsp-get-type", LNP).strip() == "localnet"
    assert "network_name=tenantblue" in lab.run_nbctl("lsp-get-options", LNP)
    rows = json.loads(lab.run_nbctl("--format=json", "--columns=name,addresses,port_security,external_ids",
                                    "list", "Logical_Switch_Port"))
    by_name = {row[0]: row for row in rows["data"]}
    pod_lsp = "default.tenantblue_default_podclient"  # prefix of the NAD ref "default/tenantblue"
    vm_lsp = "default.tenantblue_default_virt-launcher-vm-server-8z2cx"
    assert {pod_lsp, vm_lsp, LNP} <= set(by_name)
    assert lab.lsp_name("podclient") == pod_lsp and lab.lsp_name("vm-server") == vm_lsp
    ext = dict(by_name[pod_lsp][3][1])
    assert ext["k8s.ovn.org/nad"] == "default/tenantblue" and ext["k8s.ovn.org/network"] == "tenantblue"
    assert ext["pod"] == "true" and ext["k8s.ovn.org/topology"] == "localnet" and ext["namespace"] == "default"
    assert by_name[pod_lsp][1] == by_name[pod_lsp][2] == "0a:58:c0:a8:c8:0a 192.168.200.10"  # static `ips`
    # IPAM-less network: OVN-K knows no IP for a VM (the guest sets it), so its port holds the MAC only.
    assert by_name[vm_lsp][1] == by_name[vm_lsp][2] == "02:5e:c0:a8:c8:14"
    for lsp in (pod_lsp, vm_lsp):
        assert lab.run_nbctl("get", "Logical_Switch_Port", lsp, "up").strip() == "true"


def test_send_points_match_the_wiring(lab: Lab) -> None:
    pod = lab.send_point("podclient")
    assert (pod.interface, str(pod.ip), pod.mac) == ("net1", "192.168.200.10", "0a:58:c0:a8:c8:0a")
    vm = lab.send_point("vm-server")
    assert vm.interface.startswith("k6t-") and len(vm.interface) <= 15
    assert vm.netns == lab.launcher_netns("vm-server") and str(vm.ip) == "192.168.200.20"
    for sp in (pod, vm, lab.send_point("db")):
        assert netns.exists(sp.netns)
        procs.run(["ip", "link", "show", sp.interface], netns=sp.netns)
    guest_link = lab.run_in("vm-server", "ip", "-j", "link", "show", "eth0").stdout
    assert json.loads(guest_link)[0]["address"] == "02:5e:c0:a8:c8:14"


def test_pod_reaches_database_over_tcp_and_psql(lab: Lab, tcp: Callable[..., str]) -> None:
    tcp(lab, "podclient", "192.168.200.5", 5432, read=False)
    out = lab.run_in("podclient", "psql", "-X", "-A", "-t", lab.postgres_dsn, "-c",
                     "select current_user || '@' || current_database()", timeout=15).stdout
    assert out.strip() == "app@appdb"


def test_pod_and_guest_reach_each_other(lab: Lab, tcp: Callable[..., str]) -> None:
    assert tcp(lab, "podclient", "192.168.200.20", 8080).startswith("segcheck-lab vm-server 8080")
    assert tcp(lab, "vm-server", "192.168.200.10", 8080).startswith("segcheck-lab podclient 8080")


def test_up_is_idempotent(lab: Lab) -> None:
    before = {n: d["pid"] for n, d in lab.status()["daemons"].items()}
    started = time.monotonic()
    status = lab.up()
    assert time.monotonic() - started < 5
    assert status["healthy"]
    assert {n: d["pid"] for n, d in status["daemons"].items()} == before


def _recorded(lab: Lab) -> tuple[list[int], list[str]]:
    rec = state.load(lab.state_dir)
    pids = [p for p in (procs.read_pidfile(Path(f)) for f in rec["pidfiles"].values()) if p]
    return pids, list(rec["namespaces"])


def _assert_gone(lab: Lab, pids: list[int], namespaces: list[str]) -> None:
    assert not [p for p in pids if procs.is_alive(p)]
    present = netns.list_netns()
    assert not [n for n in present if n in namespaces or n.startswith(lab.prefix)]
    assert not lab.state_dir.exists() or not any(lab.state_dir.iterdir())


def test_down_leaves_nothing_behind(make_lab: Callable[[], Lab]) -> None:
    other = make_lab()
    pids, namespaces = _recorded(other)
    assert len(pids) >= 9 and len(namespaces) == 5
    result = other.down()
    assert result["seconds"] < 30
    _assert_gone(other, pids, namespaces)
    assert not other.status()["daemons"]
    other.down()  # a second down is harmless


def test_down_after_crash_and_partial_state(make_lab: Callable[[], Lab]) -> None:
    other = make_lab()
    pids, namespaces = _recorded(other)
    for name in ("ovs-vswitchd", "ovn-controller"):
        pid = other.daemons[name].pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert procs.stop_pid(pid, grace=5)  # SIGKILL is asynchronous: wait (bounded) until it is gone
    assert not other.is_healthy()
    # A crash mid-write leaves a truncated state file: down must still find everything.
    (other.state_dir / state.STATE_FILE).write_text('{"prefix": "sct')
    other.down()
    _assert_gone(other, pids, namespaces)


def test_up_rebuilds_a_broken_lab(make_lab: Callable[[], Lab], tcp: Callable[..., str]) -> None:
    other = make_lab()
    pid = other.daemons["ovn-northd"].pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert procs.stop_pid(pid, grace=5)  # reaped by init: wait (bounded) until it is gone
    assert not other.is_healthy()
    status = other.up()
    assert status["healthy"]
    assert tcp(other, "podclient", "192.168.200.20", 8080).startswith("segcheck-lab vm-server")


def test_command_helpers_reach_every_daemon(lab: Lab) -> None:
    assert "ovn-controller" in lab.run_appctl("ovn-controller", "version")
    assert "ovs-vswitchd" in lab.run_appctl("ovs-vswitchd", "version")
    assert "ovn-northd" in lab.run_appctl("ovn-northd", "version")
    assert "table=" in lab.run_ofctl("dump-flows", "br-int")
    assert f"{lab.prefix}node" in lab.run_sbctl("--columns=name", "list", "Chassis")
    assert lab.nb_url.startswith("unix:") and lab.sb_url.startswith("unix:") and lab.ovs_url.startswith("unix:")
    assert lab.postgres_dsn == "postgresql://app@192.168.200.5:5432/appdb"
