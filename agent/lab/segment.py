"""The physical L2 network of a lab cluster: what joins the nodes' br-ex, with the physical hosts on it.

A Linux bridge in a namespace of its own stands for the top-of-rack switch; each node's br-ex gets one uplink
veth into it, and each physical host (the seed's PostgreSQL `db`) a namespace with an `eth0` on it. Localnet
traffic between nodes leaves one node's br-ex, crosses this bridge and enters the other node's br-ex, as on a
real cluster. Everything lives inside namespaces this segment makes; nothing touches the root namespace.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Callable

from . import devices, listener, netns, procs
from .postgres import PostgresServer
from .topology import LabTopology, PhysicalHost

BRIDGE = "br-phys"
UPLINK = "ex-uplink"  # the uplink's end on a node's br-ex (one per node namespace)


class PhysicalSegment:
    """The bridge namespace `<prefix>phys` and one namespace `<prefix><host>` per physical host."""

    def __init__(self, root: Path, prefix: str, topology: LabTopology) -> None:
        self.root = root  # <cluster state dir>/segment
        self.prefix = prefix
        self.topology = topology

    @property
    def netns(self) -> str:
        return f"{self.prefix}phys"

    @property
    def hosts(self) -> tuple[PhysicalHost, ...]:
        return self.topology.hosts

    def host(self, name: str) -> PhysicalHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no physical host {name!r} on the segment")

    def host_netns(self, name: str) -> str:
        return f"{self.prefix}{self.host(name).name}"

    def namespaces(self) -> list[str]:
        return [self.netns, *(self.host_netns(h.name) for h in self.hosts)]

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def pg_dir(self) -> Path:
        return self.root / "pg"

    def owned_dirs(self) -> list[Path]:
        return [self.root, self.log_dir, self.run_dir, self.pg_dir]

    def postgres(self, name: str | None = None) -> PostgresServer:
        hosts = [h for h in self.hosts if h.postgres and (name is None or h.name == name)]
        if not hosts:
            raise KeyError("no PostgreSQL host on the segment")
        h = hosts[0]
        return PostgresServer(self.pg_dir / h.name, self.host_netns(h.name), h.ip, self.topology.network.cidr,
                              h.ips[1:], self.topology.network.more_cidrs)

    def listener_pidfile(self, name: str) -> Path:
        return self.run_dir / f"listener-{name}.pid"

    def pidfiles(self) -> dict[str, Path]:
        """Every process this segment runs, by name."""
        out = {f"postgres-{h.name}": self.postgres(h.name).pidfile for h in self.hosts if h.postgres}
        out.update({f"listener-{h.name}": self.listener_pidfile(h.name) for h in self.hosts if h.listeners})
        return out

    # ----------------------------------------------------------------- bring-up

    def make_dirs(self) -> None:
        for d in self.owned_dirs():
            d.mkdir(parents=True, exist_ok=True)

    def wire(self, made: Callable[[str], None]) -> None:
        """The bridge and the hosts on it; `made(namespace)` is called before each namespace exists."""
        made(self.netns)
        netns.add(self.netns)
        netns.add_bridge(self.netns, BRIDGE)
        netns.tx_offload_off(self.netns, BRIDGE)
        netns.set_up(self.netns, BRIDGE)
        for host in self.hosts:
            ns = self.host_netns(host.name)
            made(ns)
            netns.add(ns, ipv6=self.topology.network.ipv6)
            self._attach(ns, devices.PHYSICAL_INTERFACE, devices.ovs_side_port("ph", host.name))
            netns.set_mac(ns, devices.PHYSICAL_INTERFACE, host.mac)
            for address in host.addresses:
                netns.add_address(ns, devices.PHYSICAL_INTERFACE, address)
            netns.set_up(ns, devices.PHYSICAL_INTERFACE)

    def _attach(self, ns: str, ifname: str, bridge_port: str) -> None:
        """A veth from `ifname` in `ns` to a port of the bridge."""
        netns.add_veth(self.netns, bridge_port, ns, ifname)
        netns.enslave(self.netns, bridge_port, BRIDGE)
        netns.set_up(self.netns, bridge_port)

    def uplink(self, node: str, node_netns: str) -> str:
        """Join a node's OVS namespace to the bridge; returns the uplink's name there (for its br-ex)."""
        self._attach(node_netns, UPLINK, devices.ovs_side_port("nd", node))
        netns.set_up(node_netns, UPLINK)
        return UPLINK

    def start_services(self, record: Callable[[str, Path], None]) -> None:
        """PostgreSQL (initialised with `init_postgres`) and the hosts' listeners; `record(name, pidfile)` first."""
        for host in self.hosts:
            if host.postgres:
                pg = self.postgres(host.name)
                record(f"postgres-{host.name}", pg.pidfile)
                pg.launch()
        for host in self.hosts:
            if not host.listeners:
                continue
            pidfile = self.listener_pidfile(host.name)
            record(f"listener-{host.name}", pidfile)
            procs.spawn_detaching(listener.command(host.ips, host.name, pidfile,
                                                   ((lst.protocol, lst.port) for lst in host.listeners)),
                                  log=self.log_dir / f"listener-{host.name}.log", netns=self.host_netns(host.name))

    # ----------------------------------------------------------------- status and teardown

    def processes(self, marker: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, pidfile in sorted(self.pidfiles().items()):
            pid = procs.read_pidfile(pidfile)
            alive = bool(pid and procs.is_alive(pid) and procs.is_ours(pid, marker))
            out[name] = {"pid": pid, "alive": alive, "pidfile": str(pidfile),
                         "rss_bytes": procs.rss_bytes(pid) if alive and pid else None,
                         "tree_pss_bytes": procs.tree_pss_bytes(pid) if alive and pid else None}
        return out

    def stop(self, marker: str, pidfiles: dict[str, Path]) -> list[str]:
        """Stop by PID every process named in `pidfiles` (and any initdb still running) that is ours."""
        stopped: list[str] = []
        if self.pg_dir.is_dir():
            for pidfile in self.pg_dir.glob("*/initdb.pid"):
                pgid = procs.read_pidfile(pidfile)
                if pgid and procs.stop_group(pgid, marker):
                    stopped.append(f"initdb-{pidfile.parent.name}[{pgid}]")
        for name, pidfile in sorted(pidfiles.items()):
            pid = procs.read_pidfile(pidfile)
            if pid and procs.is_alive(pid) and procs.is_ours(pid, marker):
                sig = signal.SIGINT if name.startswith("postgres-") else signal.SIGTERM  # PostgreSQL: fast shutdown
                if procs.stop_pid(pid, sig=sig):
                    stopped.append(f"{name}[{pid}]")
        return stopped
