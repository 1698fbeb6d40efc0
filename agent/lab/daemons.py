"""The OVS and OVN daemons of a lab: how each is started (inside the lab's OVS namespace) and found again.

All run with `--detach`, which returns once the daemon is ready, and `--pidfile` under the state directory:
the PID of the `ip netns exec` wrapper is not the daemon's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import procs
from .ovn_install import OvnInstall
from .ovs_install import OvsInstall
from .paths import LabPaths

# Stop order for `down`: consumers before the databases they talk to.
STOP_ORDER = ("ovn-controller", "ovn-northd", "ovs-vswitchd", "ovsdb-server-sb", "ovsdb-server-nb", "ovsdb-server")


@dataclass(frozen=True)
class Daemon:
    name: str
    pidfile: Path
    ctl: Path | None  # None: derived from the PID (ovn-controller 23.03 has no --unixctl)
    log: Path

    def pid(self) -> int | None:
        return procs.read_pidfile(self.pidfile)

    def control_socket(self) -> Path | None:
        if self.ctl is not None:
            return self.ctl
        pid = self.pid()
        return self.pidfile.parent / f"{self.name}.{pid}.ctl" if pid else None


def lab_daemons(paths: LabPaths) -> dict[str, Daemon]:
    ovs, ovn, log = paths.ovs_dir, paths.ovn_dir, paths.log_dir
    specs = [
        Daemon("ovsdb-server", ovs / "ovsdb-server.pid", ovs / "ovsdb-server.ctl", log / "ovsdb-server.log"),
        Daemon("ovs-vswitchd", ovs / "ovs-vswitchd.pid", ovs / "ovs-vswitchd.ctl", log / "ovs-vswitchd.log"),
        Daemon("ovsdb-server-nb", ovn / "ovnnb_db.pid", ovn / "ovnnb_db.ctl", log / "ovsdb-server-nb.log"),
        Daemon("ovsdb-server-sb", ovn / "ovnsb_db.pid", ovn / "ovnsb_db.ctl", log / "ovsdb-server-sb.log"),
        Daemon("ovn-northd", ovn / "ovn-northd.pid", ovn / "ovn-northd.ctl", log / "ovn-northd.log"),
        Daemon("ovn-controller", ovn / "ovn-controller.pid", None, log / "ovn-controller.log"),
    ]
    return {d.name: d for d in specs}


def _common(d: Daemon) -> list[str]:
    args = [f"--pidfile={d.pidfile}", f"--log-file={d.log}", "--detach", "--no-chdir", "-vconsole:off"]
    if d.ctl is not None:
        args.append(f"--unixctl={d.ctl}")
    return args


def start_ovsdb(ovs: OvsInstall, paths: LabPaths, netns: str, daemon: Daemon, db: Path, schema: Path,
                socket: Path) -> None:
    if not db.exists():
        procs.run(ovs.argv("ovsdb-tool", "create", str(db), str(schema)), env=ovs.env())
    procs.spawn_detaching(ovs.argv("ovsdb-server", str(db), f"--remote=punix:{socket}", *_common(daemon)),
                          log=daemon.log.with_suffix(".out"), netns=netns, env={**paths.env(), **ovs.env()})


def start_vswitchd(ovs: OvsInstall, paths: LabPaths, netns: str, daemon: Daemon) -> None:
    procs.spawn_detaching(ovs.argv("ovs-vswitchd", f"unix:{paths.ovs_db_socket}", *_common(daemon)),
                          log=daemon.log.with_suffix(".out"), netns=netns, env={**paths.env(), **ovs.env()},
                          timeout=20)


def start_northd(ovn: OvnInstall, paths: LabPaths, netns: str, daemon: Daemon) -> None:
    procs.spawn_detaching(ovn.argv("ovn-northd", f"--ovnnb-db=unix:{paths.nb_socket}",
                                   f"--ovnsb-db=unix:{paths.sb_socket}", *_common(daemon)),
                          log=daemon.log.with_suffix(".out"), netns=netns, env=paths.env())


def start_controller(ovn: OvnInstall, paths: LabPaths, netns: str, daemon: Daemon) -> None:
    # OVS_RUNDIR (in paths.env) tells ovn-controller where br-int's OpenFlow management socket is.
    procs.spawn_detaching(ovn.argv("ovn-controller", f"unix:{paths.ovs_db_socket}", *_common(daemon)),
                          log=daemon.log.with_suffix(".out"), netns=netns, env=paths.env())
