"""Where a lab keeps its files: every socket, database, pidfile and log lives under its state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Linux sun_path is 108 bytes including the terminating NUL.
MAX_UNIX_SOCKET_PATH = 107


@dataclass(frozen=True)
class LabPaths:
    state_dir: Path

    @property
    def ovs_dir(self) -> Path:  # OVS_RUNDIR / OVS_DBDIR / OVS_SYSCONFDIR
        return self.state_dir / "ovs"

    @property
    def ovn_dir(self) -> Path:  # OVN_RUNDIR / OVN_DBDIR / OVN_SYSCONFDIR
        return self.state_dir / "ovn"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def run_dir(self) -> Path:  # listeners' pidfiles
        return self.state_dir / "run"

    @property
    def pg_dir(self) -> Path:
        return self.state_dir / "pg"

    @property
    def ovs_db_socket(self) -> Path:
        return self.ovs_dir / "db.sock"

    @property
    def nb_socket(self) -> Path:
        return self.ovn_dir / "ovnnb_db.sock"

    @property
    def sb_socket(self) -> Path:
        return self.ovn_dir / "ovnsb_db.sock"

    def owned_dirs(self) -> list[Path]:
        return [self.ovs_dir, self.ovn_dir, self.log_dir, self.run_dir, self.pg_dir]

    def longest_socket(self) -> Path:
        # ovs-vswitchd's per-bridge management sockets are the longest names we create.
        return self.ovs_dir / "br-int.snoop"

    def env(self) -> dict[str, str]:
        """Environment pointing OVS and OVN tools at this lab's directories instead of the system's."""
        return {
            "OVS_RUNDIR": str(self.ovs_dir), "OVS_DBDIR": str(self.ovs_dir), "OVS_LOGDIR": str(self.log_dir),
            "OVS_SYSCONFDIR": str(self.ovs_dir),
            "OVN_RUNDIR": str(self.ovn_dir), "OVN_DBDIR": str(self.ovn_dir), "OVN_LOGDIR": str(self.log_dir),
            "OVN_SYSCONFDIR": str(self.ovn_dir),
        }
