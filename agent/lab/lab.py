"""The lab: a real OVS + OVN localnet or layer2 network in network namespaces, programmed the way OVN-Kubernetes
does.

`Lab.up()` builds it (idempotent), `Lab.down()` removes everything it made (also after a crash or a partial
`up`), `Lab.status()` reports it. Accessors give the rest of segcheck the database URLs, namespaces, send
points and command helpers. Nothing is ever added to the root network namespace.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from segcheck.agent.core.ovnk import ports as ovnk_ports
from segcheck.agent.core.ovnk import names as ovnk_names
from segcheck.agent.core.model import AttachmentKind, parse_ip
from segcheck.agent.core.probe import SendPoint

from . import daemons as dmn
from . import devices, listener, netns, procs, state
from .errors import LabError, LabUnavailable
from . import ovn_install
from .ovn_install import OvnInstall
from .ovs_install import DEFAULT_CACHE_DIR, OvsInstall, locate_or_provision
from .paths import MAX_UNIX_SOCKET_PATH, LabPaths
from .polling import require
from .postgres import PostgresServer
from .topology import LabTopology, PodAttachment, VmAttachment, pod_uid, seed_topology

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path("/run/segcheck-lab")
DEFAULT_PREFIX = "sc-"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,10}-$")
READY_TIMEOUT = 30.0
DEFAULT_OVNK_VERSION = "4.14"


def _q(text: str) -> str:
    """An OVSDB string literal (keys like `k8s.ovn.org/nad` need quoting)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Lab:
    def __init__(self, state_dir: Path | str = DEFAULT_STATE_DIR, prefix: str = DEFAULT_PREFIX,
                 topology: LabTopology | None = None, ovs_cache_dir: Path | str = DEFAULT_CACHE_DIR,
                 ovnk_version: str | None = None, node_name: str | None = None) -> None:
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"bad lab prefix {prefix!r}: lowercase letters/digits ending in '-', at most 12 chars")
        self.state_dir = Path(state_dir).absolute()
        self.prefix = prefix
        self.topology = topology or seed_topology()
        self.topology.validate()
        self.ovs_cache_dir = Path(ovs_cache_dir)
        self.paths = LabPaths(self.state_dir)
        self.daemons = dmn.lab_daemons(self.paths)
        self._ovs: OvsInstall | None = None
        self._ovn: OvnInstall | None = None
        self._ovnk_version = ovnk_version
        # The Kubernetes node this lab stands for: its chassis' hostname, which pod ports' requested-chassis name.
        self.node_name = node_name or f"{prefix}node"

    # ----------------------------------------------------------------- names and accessors

    @property
    def ovs_netns(self) -> str:
        return f"{self.prefix}ovs"

    def netns(self, name: str) -> str:
        """The namespace where host `name` owns its address (for a VM: the guest's)."""
        for pod in self.topology.pods:
            if pod.name == name:
                return f"{self.prefix}{pod.name}"
        for vm in self.topology.vms:
            if vm.name == name:
                return f"{self.prefix}{vm.name}"
        for host in self.topology.hosts:
            if host.name == name:
                return f"{self.prefix}{host.name}"
        if name == "ovs":
            return self.ovs_netns
        raise KeyError(f"no host {name!r} in the lab (have {', '.join(self.topology.names())})")

    def launcher_netns(self, vm_name: str) -> str:
        """The virt-launcher pod's namespace of a VM (where probes "from the VM" are sent)."""
        return f"{self.prefix}{self._vm(vm_name).launcher_pod}"

    @staticmethod
    def netns_path(netns_name: str) -> str:
        return str(netns.NETNS_DIR / netns_name)

    def namespaces(self) -> list[str]:
        """Every namespace this lab's topology makes."""
        names = [self.ovs_netns]
        names += [self.netns(p.name) for p in self.topology.pods]
        for vm in self.topology.vms:
            names += [self.launcher_netns(vm.name), self.netns(vm.name)]
        names += [self.netns(h.name) for h in self.topology.hosts]
        return names

    @property
    def nb_url(self) -> str:
        return f"unix:{self.paths.nb_socket}"

    @property
    def sb_url(self) -> str:
        return f"unix:{self.paths.sb_socket}"

    @property
    def ovs_url(self) -> str:
        return f"unix:{self.paths.ovs_db_socket}"

    @property
    def switch_name(self) -> str:
        return ovnk_names.network_switch(self.topology.network.name, self.topology.network.topology)

    @property
    def localnet_port_name(self) -> str:
        return ovnk_names.localnet_port(self.topology.network.name)

    def lsp_name(self, name: str) -> str:
        """The logical switch port of a pod or VM (a VM's is named after its virt-launcher pod)."""
        return self.port_name(self._attachment(name))

    def port_name(self, att: PodAttachment | VmAttachment) -> str:
        """As OVN-K names it: after the NAD the workload's network selection names, and its (launcher) pod."""
        return ovnk_names.pod_port(att.nad or self.topology.network.nad, att.pod_ref)

    def send_point(self, name: str) -> SendPoint:
        """Where probes from host `name` leave: pods from `net1`, VMs from the launcher's `k6t-` bridge with
        the guest's MAC/IP, physical hosts from their `eth0`."""
        for pod in self.topology.pods:
            if pod.name == name:
                return SendPoint(self.netns(name), pod.interface, parse_ip(pod.address), pod.mac)
        for vm in self.topology.vms:
            if vm.name == name:
                return SendPoint(self.launcher_netns(name), devices.launcher_bridge(vm.vm_network),
                                 parse_ip(vm.address), vm.mac)
        for host in self.topology.hosts:
            if host.name == name:
                return SendPoint(self.netns(name), devices.PHYSICAL_INTERFACE, parse_ip(host.address), host.mac)
        raise KeyError(f"no host {name!r} in the lab")

    def send_points(self) -> dict[str, SendPoint]:
        return {name: self.send_point(name) for name in self.topology.names()}

    def postgres(self, host: str | None = None) -> PostgresServer:
        hosts = [h for h in self.topology.hosts if h.postgres and (host is None or h.name == host)]
        if not hosts:
            raise KeyError("no PostgreSQL host in the lab topology")
        h = hosts[0]
        return PostgresServer(self.paths.pg_dir / h.name, self.netns(h.name), h.ip, self.topology.network.cidr)

    @property
    def postgres_dsn(self) -> str:
        return self.postgres().dsn()

    @property
    def ovs(self) -> OvsInstall:
        if self._ovs is None:
            self._ovs = locate_or_provision(self.ovs_cache_dir)
        return self._ovs

    @property
    def ovn(self) -> OvnInstall:
        if self._ovn is None:
            self._ovn = ovn_install.locate_or_provision(self.ovs, self.ovs_cache_dir)
        return self._ovn

    def ovn_trace_command(self) -> list[str]:
        """`ovn-trace` of the lab's OVN (it must match the ovn-northd that wrote the lab's southbound)."""
        return self.ovn.argv("ovn-trace")

    def remember_ovnk_version(self, version: str) -> None:
        """Record whose shapes the lab's NB now holds (what `lab apply` writes by default)."""
        self._ovnk_version = version
        record = state.load(self.state_dir)
        if record:
            record["ovnk_version"] = version
            state.save(self.state_dir, record)

    @property
    def ovnk_version(self) -> str:
        """The OVN-Kubernetes version whose NB shapes this lab writes: as asked, else as it was brought up."""
        recorded = state.load(self.state_dir).get("ovnk_version")
        return self._ovnk_version or (recorded if isinstance(recorded, str) else DEFAULT_OVNK_VERSION)

    # ----------------------------------------------------------------- command helpers

    def _ovs_env(self) -> dict[str, str]:
        return {**self.paths.env(), **self.ovs.env()}

    def run_nbctl(self, *args: str, timeout: float = 10.0) -> str:
        argv = self.ovn.argv("ovn-nbctl", f"--db={self.nb_url}", f"--timeout={math.ceil(timeout)}", *args)
        return procs.run(argv, timeout=timeout + 2, env=self.paths.env()).stdout

    def run_sbctl(self, *args: str, timeout: float = 10.0) -> str:
        argv = self.ovn.argv("ovn-sbctl", f"--db={self.sb_url}", f"--timeout={math.ceil(timeout)}", *args)
        return procs.run(argv, timeout=timeout + 2, env=self.paths.env()).stdout

    def run_vsctl(self, *args: str, timeout: float = 10.0) -> str:
        argv = self.ovs.argv("ovs-vsctl", f"--db={self.ovs_url}", f"--timeout={math.ceil(timeout)}", *args)
        return procs.run(argv, timeout=timeout + 2, env=self._ovs_env()).stdout

    def run_ofctl(self, *args: str, timeout: float = 10.0) -> str:
        # OVS_RUNDIR makes a bridge name resolve to this lab's `<bridge>.mgmt` socket.
        return procs.run(self.ovs.argv("ovs-ofctl", *args), timeout=timeout, env=self._ovs_env()).stdout

    def run_appctl(self, daemon: str, *args: str, timeout: float = 10.0) -> str:
        """`ovs-appctl` against one lab daemon (`ovs-vswitchd`, `ovn-controller`, `ovn-northd`, ...)."""
        ctl = self.daemons[daemon].control_socket()
        if ctl is None:
            raise LabError(f"{daemon} has no control socket (not running?)")
        argv = self.ovs.argv("ovs-appctl", "-t", str(ctl), f"--timeout={math.ceil(timeout)}", *args)
        return procs.run(argv, timeout=timeout + 2, env=self._ovs_env()).stdout

    def run_in(self, name: str, *argv: str, timeout: float = 10.0,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside host `name`'s namespace (see `netns`)."""
        return procs.run(list(argv), netns=self.netns(name), timeout=timeout, check=check)

    def sync_hv(self, timeout: float = 15.0) -> None:
        """`ovn-nbctl --wait=hv sync`: returns once every chassis has applied the NB contents. Bounded: it
        hangs while ovs-vswitchd is down."""
        self.run_nbctl("--wait=hv", "sync", timeout=timeout)

    # ----------------------------------------------------------------- bring-up

    def up(self) -> dict[str, Any]:
        """Build the lab; a healthy lab is left alone, a broken or partial one is torn down and rebuilt."""
        self._preflight()
        if self.is_healthy():
            log.info("lab %s already up", self.prefix)
            return self.status()
        if self._has_remnants():
            log.info("lab %s: tearing down a partial or broken lab first", self.prefix)
            self.down()
        t0 = time.monotonic()
        phases: dict[str, float] = {}

        def phase(name: str, start: float) -> float:
            phases[name] = procs.monotonic_ms(start)
            return time.monotonic()

        ovs, ovn = self.ovs, self.ovn
        t = phase("locate_ovs", t0)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)  # PostgreSQL runs as user postgres and must reach its directory
        for d in self.paths.owned_dirs():
            d.mkdir(exist_ok=True)
        record: dict[str, Any] = {
            "prefix": self.prefix, "state_dir": str(self.state_dir), "phase": "starting",
            "namespaces": [], "pidfiles": {}, "ovs": {"version": ovs.version_text, "source": ovs.source},
            "ovn": {"source": ovn.source, "acl_tiers": ovn.tiers}, "ovnk_version": self.ovnk_version,
        }
        state.save(self.state_dir, record)
        try:
            for name in self.namespaces():
                record["namespaces"].append(name)  # recorded before it exists: down() can undo a partial up
                state.save(self.state_dir, record)
                netns.add(name)
            t = phase("namespaces", t)
            # initdb takes seconds and needs no network: run it while OVS/OVN come up and hosts are wired.
            pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lab-initdb")
            pg_inits = {h.name: pool.submit(self.postgres(h.name).init) for h in self.topology.hosts if h.postgres}
            pool.shutdown(wait=False)
            self._start_ovs(record)
            t = phase("ovs", t)
            self._start_ovn(record)
            t = phase("ovn", t)
            self._program_nb()
            self._wire_hosts()
            t = phase("wiring", t)
            self._start_services(record, pg_inits)
            t = phase("services", t)
            self._wait_ready()
            t = phase("ready", t)
        except BaseException:
            state.undo_failed_bring_up(f"lab {self.prefix}", self.state_dir, record, self.down)
            raise
        record["phase"] = "up"
        record["bringup"] = {"seconds": round(time.monotonic() - t0, 3), "phases_ms": phases}
        state.save(self.state_dir, record)
        log.info("lab %s up in %.2fs", self.prefix, record["bringup"]["seconds"])
        return self.status()

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise LabUnavailable("the lab needs root (network namespaces, veths, OVS): run as root")
        for tool, package in (("ip", "iproute2"), ("ethtool", "ethtool"), ("runuser", "util-linux"),
                              ("sysctl", "procps"), ("psql", "postgresql-client")):
            if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin") is None:
                raise LabUnavailable(f"`{tool}` not found: apt-get install {package}")
        for schema in ("ovn-nb.ovsschema", "ovn-sb.ovsschema"):
            if not (self.ovn.schema_dir / schema).exists():
                raise LabUnavailable(f"{self.ovn.schema_dir / schema} missing: apt-get install ovn-common")
        if len(str(self.paths.longest_socket())) > MAX_UNIX_SOCKET_PATH:
            raise LabError(f"state directory {self.state_dir} is too long for unix socket paths; choose a shorter one")
        if any(h.postgres for h in self.topology.hosts):
            from .postgres import find_bindir, postgres_user

            find_bindir()
            postgres_user()

    def _start_ovs(self, record: dict[str, Any]) -> None:
        ovs, p, ns = self.ovs, self.paths, self.ovs_netns
        db_daemon, sw_daemon = self.daemons["ovsdb-server"], self.daemons["ovs-vswitchd"]
        record["pidfiles"][db_daemon.name] = str(db_daemon.pidfile)
        state.save(self.state_dir, record)
        dmn.start_ovsdb(ovs, p, ns, db_daemon, p.ovs_dir / "conf.db", ovs.vswitch_schema, p.ovs_db_socket)
        self.run_vsctl("--no-wait", "init")
        net = self.topology.network
        self.run_vsctl("--no-wait", "set", "Open_vSwitch", ".",
                       f"external_ids:system-id={self.prefix}node",
                       f"external_ids:hostname={self.node_name}",
                       f"external_ids:ovn-remote={self.sb_url}",
                       "external_ids:ovn-encap-type=geneve",
                       "external_ids:ovn-encap-ip=127.0.0.1",
                       "external_ids:ovn-bridge-datapath-type=netdev",
                       f"external_ids:ovn-bridge-mappings={net.bridge_mapping}")
        record["pidfiles"][sw_daemon.name] = str(sw_daemon.pidfile)
        state.save(self.state_dir, record)
        dmn.start_vswitchd(ovs, p, ns, sw_daemon)
        self.run_vsctl("--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
                       "fail_mode=secure", "other_config:disable-in-band=true",
                       "--", "--may-exist", "add-br", net.bridge, "--", "set", "Bridge", net.bridge,
                       "datapath_type=netdev")

    def _start_ovn(self, record: dict[str, Any]) -> None:
        p, ns = self.paths, self.ovs_netns
        for name, db, schema, sock in (
            ("ovsdb-server-nb", p.ovn_dir / "ovnnb_db.db", self.ovn.schema_dir / "ovn-nb.ovsschema", p.nb_socket),
            ("ovsdb-server-sb", p.ovn_dir / "ovnsb_db.db", self.ovn.schema_dir / "ovn-sb.ovsschema", p.sb_socket),
        ):
            record["pidfiles"][name] = str(self.daemons[name].pidfile)
            state.save(self.state_dir, record)
            dmn.start_ovsdb(self.ovs, p, ns, self.daemons[name], db, schema, sock)
        self.run_nbctl("init")
        for name, start in (("ovn-northd", dmn.start_northd), ("ovn-controller", dmn.start_controller)):
            record["pidfiles"][name] = str(self.daemons[name].pidfile)
            state.save(self.state_dir, record)
            start(self.ovn, p, ns, self.daemons[name])

    def stop_daemon(self, name: str) -> bool:
        """Stop one OVN/OVS daemon by its PID (to test how consumers ride out an outage)."""
        pid = self.daemons[name].pid()
        return pid is not None and procs.is_ours(pid, str(self.state_dir)) and procs.stop_pid(pid)

    def start_database(self, name: str) -> None:
        """Start a stopped OVN database server again on its existing database file and socket."""
        p = self.paths
        schemas = self.ovn.schema_dir
        files = {"ovsdb-server-nb": (p.ovn_dir / "ovnnb_db.db", schemas / "ovn-nb.ovsschema", p.nb_socket),
                 "ovsdb-server-sb": (p.ovn_dir / "ovnsb_db.db", schemas / "ovn-sb.ovsschema", p.sb_socket)}
        db, schema, sock = files[name]
        dmn.start_ovsdb(self.ovs, p, self.ovs_netns, self.daemons[name], db, schema, sock)

    def _program_nb(self) -> None:
        """The NB contents OVN-Kubernetes writes for the network and its pods (one transaction): a localnet
        switch with its localnet port, or a layer2 switch with the interconnect tunnel keys and, on a cluster
        node, the other nodes' workloads as `remote` ports."""
        net = self.topology.network
        sw = self.switch_name
        cmds: list[list[str]] = [
            ["--may-exist", "ls-add", sw],
            ["set", "Logical_Switch", sw, *(f"external_ids:{_q(k)}={_q(v)}"
                                            for k, v in ovnk_ports.switch_ids(net.name, net.topology)),
             *(f"other_config:{_q(k)}={_q(v)}" for k, v in ovnk_ports.switch_other_config(
                 sw, net.topology, net.subnets, net.network_id))],
        ]
        if not net.is_layer2:
            lnp = self.localnet_port_name
            cmds += [
                ["--may-exist", "lsp-add", sw, lnp],
                ["lsp-set-type", lnp, "localnet"],
                ["lsp-set-addresses", lnp, ovnk_ports.LOCALNET_ADDRESSES],
                ["lsp-set-options", lnp, f"{ovnk_ports.NETWORK_NAME_OPTION}={net.localnet_name}"],
            ]
        ports = [(att, self.node_name, False) for att in self.topology.attachments]
        ports += [(r.attachment, r.node, True) for r in self.topology.remotes]
        for att, node, remote in ports:
            lsp = self.port_name(att)
            kind = AttachmentKind.VM if isinstance(att, VmAttachment) else AttachmentKind.POD
            addr = ovnk_ports.pod_port_addresses(kind, att.mac, [str(att.ip)], net.ipam)
            options = ovnk_ports.pod_port_options(node, pod_uid(att.pod_ref), net.topology, att.tunnel_key)
            port_type = ovnk_ports.remote_port_type(net.topology) if remote else None
            cmds += [
                ["--may-exist", "lsp-add", sw, lsp],
                ["lsp-set-addresses", lsp, addr],
                ["lsp-set-port-security", lsp, addr],
                ["set", "Logical_Switch_Port", lsp,
                 *(f"external_ids:{_q(k)}={_q(v)}" for k, v in ovnk_ports.pod_port_ids(
                     att.nad or net.nad, net.name, net.topology, att.namespace)),
                 *(f"options:{_q(k)}={_q(v)}" for k, v in options)],
                *([["lsp-set-type", lsp, port_type]] if port_type else []),
            ]
        argv: list[str] = []
        for cmd in cmds:
            argv += (["--"] if argv else []) + cmd
        self.run_nbctl(*argv)

    def _plug(self, bridge: str, port: str, att: PodAttachment | VmAttachment | None = None) -> None:
        netns.set_up(self.ovs_netns, port)
        extra: list[str] = []
        if att is not None:
            # As OVN-K's CNI plugs a pod: the logical port it binds, the pod's UID, MAC and known addresses.
            net = self.topology.network
            kind = AttachmentKind.VM if isinstance(att, VmAttachment) else AttachmentKind.POD
            known = [] if kind is AttachmentKind.VM and not net.ipam else [att.address]
            ids = ovnk_ports.cni_interface_ids(self.port_name(att), att.mac, pod_uid(att.pod_ref), known,
                                               att.nad or net.nad, net.name)
            key, value = ovnk_ports.TRANSIENT_PORT
            extra = [f"other_config:{key}={value}", "--", "set", "Interface", port,
                     *(f"external_ids:{_q(k)}={_q(v)}" for k, v in ids)]
        self.run_vsctl("--may-exist", "add-port", bridge, port, *extra)

    def _wire_hosts(self) -> None:
        ovs_ns = self.ovs_netns
        for pod in self.topology.pods:
            ns, port = self.netns(pod.name), devices.ovs_side_port("pd", self.lsp_name(pod.name))
            netns.add_veth(ovs_ns, port, ns, pod.interface)
            netns.set_mac(ns, pod.interface, pod.mac)
            netns.add_address(ns, pod.interface, pod.address)
            netns.set_up(ns, pod.interface)
            self._plug("br-int", port, pod)
        for vm in self.topology.vms:
            self._wire_vm(vm)
        for host in self.topology.hosts:
            ns, port = self.netns(host.name), devices.ovs_side_port("ph", host.name)
            netns.add_veth(ovs_ns, port, ns, devices.PHYSICAL_INTERFACE)
            netns.set_mac(ns, devices.PHYSICAL_INTERFACE, host.mac)
            netns.add_address(ns, devices.PHYSICAL_INTERFACE, host.address)
            netns.set_up(ns, devices.PHYSICAL_INTERFACE)
            self._plug(self.topology.network.bridge, port)

    def _wire_vm(self, vm: VmAttachment) -> None:
        """KubeVirt bridge binding: multus `pod<h>` and the VM's `tap<h>` joined by bridge `k6t-<h>`; the guest
        (its own namespace here) owns the address and MAC."""
        launcher, guest = self.launcher_netns(vm.name), self.netns(vm.name)
        pod_if, bridge, tap = (devices.launcher_pod_interface(vm.vm_network), devices.launcher_bridge(vm.vm_network),
                               devices.launcher_tap(vm.vm_network))
        port = devices.ovs_side_port("vm", self.lsp_name(vm.name))
        netns.add_veth(self.ovs_netns, port, launcher, pod_if)
        netns.add_veth(launcher, tap, guest, devices.GUEST_INTERFACE)
        netns.add_bridge(launcher, bridge)
        procs.run(["ethtool", "-K", bridge, "tx", "off"], netns=launcher, check=False)
        for ifname in (pod_if, tap):
            netns.enslave(launcher, ifname, bridge)
            netns.set_up(launcher, ifname)
        netns.set_up(launcher, bridge)
        netns.set_mac(guest, devices.GUEST_INTERFACE, vm.mac)
        netns.add_address(guest, devices.GUEST_INTERFACE, vm.address)
        netns.set_up(guest, devices.GUEST_INTERFACE)
        if self.topology.network.gateway:
            netns.add_default_route(guest, self.topology.network.gateway, devices.GUEST_INTERFACE)
        self._plug("br-int", port, vm)

    def _listener_pidfile(self, name: str) -> Path:
        return self.paths.run_dir / f"listener-{name}.pid"

    def _start_services(self, record: dict[str, Any], pg_inits: dict[str, Future[None]]) -> None:
        for host in self.topology.hosts:
            if host.postgres:
                pg = self.postgres(host.name)
                record["pidfiles"][f"postgres-{host.name}"] = str(pg.pidfile)
                state.save(self.state_dir, record)
                pg_inits[host.name].result(timeout=120)
                pg.launch()
        listeners: list[tuple[list[str], Path, str]] = []
        for item in (*self.topology.attachments, *self.topology.hosts):
            if not item.listeners:
                continue
            pidfile = self._listener_pidfile(item.name)
            record["pidfiles"][f"listener-{item.name}"] = str(pidfile)
            state.save(self.state_dir, record)
            argv = listener.command(item.ip, item.name, pidfile, ((lst.protocol, lst.port) for lst in item.listeners))
            listeners.append((argv, self.paths.log_dir / f"listener-{item.name}.log", self.netns(item.name)))
        # Each listener binds, daemonizes, and returns once its pidfile is written; start them side by side.
        with ThreadPoolExecutor(max_workers=max(1, len(listeners)), thread_name_prefix="lab-listener") as pool:
            for future in [pool.submit(procs.spawn_detaching, argv, log=logf, netns=ns)
                           for argv, logf, ns in listeners]:
                future.result()

    def _wait_ready(self) -> None:
        lnp = self.localnet_port_name
        patch_in = ovnk_names.patch_port_from_br_int(lnp)
        patch_out = ovnk_names.patch_port_to_br_int(lnp)
        bridge = self.topology.network.bridge
        # ovn-controller patches a localnet only into a chassis with a port of its switch bound there: a cluster
        # node without local workloads has none (as on a real node), and a layer2 network no localnet port.
        require(lambda: not self.topology.attachments or self.topology.network.is_layer2
                or patch_in in self.run_vsctl("list-ports", "br-int").split()
                and patch_out in self.run_vsctl("list-ports", bridge).split(),
                f"ovn-controller's localnet patch ports ({patch_in}, {patch_out})", timeout=READY_TIMEOUT)
        lsps = [self.lsp_name(a.name) for a in self.topology.attachments]
        require(lambda: all(self.run_nbctl("get", "Logical_Switch_Port", lsp, "up").strip() == "true"
                            for lsp in lsps), "logical switch ports bound (up=true)", timeout=READY_TIMEOUT)
        self.sync_hv(timeout=READY_TIMEOUT)
        for host in self.topology.hosts:
            if host.postgres:
                pg = self.postgres(host.name)
                require(pg.accepting, f"PostgreSQL on {host.name} accepting", timeout=READY_TIMEOUT)

    # ----------------------------------------------------------------- status

    def _vm(self, name: str) -> VmAttachment:
        for vm in self.topology.vms:
            if vm.name == name:
                return vm
        raise KeyError(f"no VM {name!r} in the lab")

    def _attachment(self, name: str) -> PodAttachment | VmAttachment:
        for att in self.topology.attachments:
            if att.name == name:
                return att
        raise KeyError(f"no pod or VM {name!r} in the lab")

    def _tracked_pidfiles(self) -> dict[str, Path]:
        """Pidfiles from the state file, plus any found on disk (the state file may be partial or gone)."""
        found: dict[str, Path] = {name: Path(p) for name, p in state.load(self.state_dir).get("pidfiles", {}).items()}
        for d in self.daemons.values():
            found.setdefault(d.name, d.pidfile)
        if self.paths.run_dir.is_dir():
            for pf in self.paths.run_dir.glob("listener-*.pid"):
                found.setdefault(pf.stem, pf)
        if self.paths.pg_dir.is_dir():
            for pf in self.paths.pg_dir.glob("*/data/postmaster.pid"):
                found.setdefault(f"postgres-{pf.parent.parent.name}", pf)
        return found

    def processes(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        marker = str(self.state_dir)
        for name, pidfile in sorted(self._tracked_pidfiles().items()):
            pid = procs.read_pidfile(pidfile)
            alive = bool(pid and procs.is_alive(pid) and procs.is_ours(pid, marker))
            if pid is None and not pidfile.exists() and name in self.daemons:
                continue
            out[name] = {"pid": pid, "alive": alive, "pidfile": str(pidfile),
                         "rss_bytes": procs.rss_bytes(pid) if alive and pid else None,
                         "tree_pss_bytes": procs.tree_pss_bytes(pid) if alive and pid else None}
        return out

    def _expected_processes(self) -> list[str]:
        names = list(self.daemons)
        names += [f"listener-{i.name}" for i in (*self.topology.attachments, *self.topology.hosts) if i.listeners]
        names += [f"postgres-{h.name}" for h in self.topology.hosts if h.postgres]
        return names

    def is_healthy(self) -> bool:
        if state.load(self.state_dir).get("phase") != "up":
            return False
        processes = self.processes()
        if not all(processes.get(n, {}).get("alive") for n in self._expected_processes()):
            return False
        if not all(netns.exists(n) for n in self.namespaces()):
            return False
        return all(Path(s).exists() for s in (self.paths.nb_socket, self.paths.sb_socket, self.paths.ovs_db_socket))

    def _has_remnants(self) -> bool:
        return (self.state_dir / state.STATE_FILE).exists() or any(
            n.startswith(self.prefix) for n in netns.list_netns()) or any(
            d.exists() for d in self.paths.owned_dirs())

    def measurements(self) -> dict[str, Any]:
        rec = state.load(self.state_dir)
        running = self.processes()
        rss = {n: p["rss_bytes"] for n, p in running.items() if p["rss_bytes"]}
        # PSS of each daemon with its children (PostgreSQL's backends): what the lab really costs in memory.
        pss = {n: p["tree_pss_bytes"] for n, p in running.items() if p["tree_pss_bytes"]}
        return {"bringup": rec.get("bringup"), "rss_bytes": rss, "rss_total_bytes": sum(rss.values()),
                "pss_bytes": pss, "pss_total_bytes": sum(pss.values())}

    def status(self) -> dict[str, Any]:
        rec = state.load(self.state_dir)
        present = set(netns.list_netns())
        ours = sorted(set(self.namespaces()) | set(rec.get("namespaces", [])) |
                      {n for n in present if n.startswith(self.prefix)})
        sockets = {"nb": self.paths.nb_socket, "sb": self.paths.sb_socket, "ovs": self.paths.ovs_db_socket}
        processes = self.processes()
        return {
            "prefix": self.prefix,
            "state_dir": str(self.state_dir),
            "phase": rec.get("phase", "down"),
            "healthy": self.is_healthy(),
            "ovs": rec.get("ovs"),
            "ovn": rec.get("ovn"),
            "ovnk_version": rec.get("ovnk_version"),
            "daemons": processes,
            "namespaces": {n: n in present for n in ours},
            "sockets": {k: {"url": f"unix:{v}", "exists": v.exists()} for k, v in sockets.items()},
            "measurements": {"bringup": rec.get("bringup"),
                             "rss_total_bytes": sum(p["rss_bytes"] or 0 for p in processes.values())},
        }

    # ----------------------------------------------------------------- teardown

    def down(self) -> dict[str, Any]:
        """Remove everything this lab made. Works after a crash, a partial up, or with no state file at all."""
        if os.geteuid() != 0:
            raise LabUnavailable("tearing the lab down needs root: run as root")
        t0 = time.monotonic()
        rec = state.load(self.state_dir)
        marker = str(self.state_dir)
        pidfiles = self._tracked_pidfiles()
        order = {name: i for i, name in enumerate(dmn.STOP_ORDER)}
        stopped: list[str] = []
        # An initdb still running (a bring-up that failed or died meanwhile) goes first, with its whole group.
        if self.paths.pg_dir.is_dir():
            for pidfile in self.paths.pg_dir.glob("*/initdb.pid"):
                pgid = procs.read_pidfile(pidfile)
                if pgid and procs.stop_group(pgid, marker):
                    stopped.append(f"initdb-{pidfile.parent.name}[{pgid}]")
        for name in sorted(pidfiles, key=lambda n: order.get(n, len(order))):
            pid = procs.read_pidfile(pidfiles[name])
            if pid and procs.is_alive(pid) and procs.is_ours(pid, marker):
                # PostgreSQL: SIGINT is its "fast" shutdown; everything else stops on SIGTERM.
                sig = signal.SIGINT if name.startswith("postgres-") else signal.SIGTERM
                if procs.stop_pid(pid, sig=sig):
                    stopped.append(f"{name}[{pid}]")
                else:
                    log.warning("could not stop %s (pid %d)", name, pid)
        present = netns.list_netns()
        doomed = [n for n in dict.fromkeys([*rec.get("namespaces", []), *self.namespaces(),
                                            *(n for n in present if n.startswith(self.prefix))]) if n in present]
        killed: list[int] = []
        for name in doomed:
            # Whatever still runs in a namespace we made is ours (a crashed daemon's child, a psql...).
            for pid in netns.pids(name):
                if procs.stop_pid(pid, sig=signal.SIGKILL, grace=2.0):
                    killed.append(pid)
            netns.delete(name)
        for d in self.paths.owned_dirs():
            shutil.rmtree(d, ignore_errors=True)
        state.forget(self.state_dir)
        seconds = round(time.monotonic() - t0, 3)
        log.info("lab %s down in %.2fs", self.prefix, seconds)
        return {"seconds": seconds, "stopped": stopped, "killed_in_namespaces": killed,
                "namespaces_deleted": doomed}
