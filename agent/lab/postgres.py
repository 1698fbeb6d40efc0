"""A real PostgreSQL server on a physical-side lab host (the seed's database, set up for real).

`initdb -A trust` into the lab's state directory as user `postgres`, listening only on the host's lab address
inside its namespace; pg_hba admits the lab network. Stopped by the PID in `postmaster.pid`.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .errors import LabUnavailable

PG_PORT = 5432
APP_ROLE = "app"
APP_DATABASE = "appdb"


def find_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    raise LabUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")


def postgres_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise LabUnavailable("no `postgres` system user: apt-get install postgresql") from None


@dataclass(frozen=True)
class PostgresServer:
    root: Path  # <state_dir>/pg/<host>
    netns: str
    listen_ip: str
    allow_cidr: str
    more_ips: tuple[str, ...] = ()  # dual-stack: it listens on the other family's address too
    more_cidrs: tuple[str, ...] = ()

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "postmaster.pid"

    @property
    def initdb_pidfile(self) -> Path:  # while initdb runs: the id of its process group
        return self.root / "initdb.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, user: str = APP_ROLE, database: str = APP_DATABASE) -> str:
        host = f"[{self.listen_ip}]" if ":" in self.listen_ip else self.listen_ip
        return f"postgresql://{user}@{host}:{PG_PORT}/{database}"

    def start(self) -> None:
        self.init()
        self.launch()

    def init(self) -> None:
        """initdb and configuration; needs no network, so the lab runs it while it wires OVS."""
        bindir = find_bindir()
        user = postgres_user()
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        for path in (self.root, self.socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
        self.log_file.touch()
        os.chown(self.log_file, user.pw_uid, user.pw_gid)
        # initdb refuses to run as root, and the server must own its files.
        if procs.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.root)], check=False).returncode:
            raise LabUnavailable(f"user postgres cannot write {self.root}: put the lab's state directory where "
                                 "every parent directory is world-searchable (e.g. under /run or /tmp)")
        procs.run_in_group(["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(self.data_dir),
                            "-A", "trust", "-U", "postgres", "--no-locale", "-E", "UTF8", "--no-sync",
                            "--no-instructions"], pidfile=self.initdb_pidfile, timeout=60)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                f"\n# segcheck lab\nlisten_addresses = '{', '.join((self.listen_ip, *self.more_ips))}'\nport = {PG_PORT}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "shared_buffers = 16MB\nmax_connections = 50\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\n"
            )
        with open(self.data_dir / "pg_hba.conf", "a") as hba:
            for cidr in (self.allow_cidr, *self.more_cidrs):
                hba.write(f"host all all {cidr} trust\n")

    def launch(self) -> None:
        """Start the server in its namespace (its address must exist by now) and create the seed's role/db."""
        bindir = find_bindir()
        # pg_ctl -w returns once the server accepts connections: no sleep needed.
        procs.spawn_detaching(["runuser", "-u", "postgres", "--", str(bindir / "pg_ctl"), "-D", str(self.data_dir),
                               "-l", str(self.log_file), "-w", "-t", "30", "start"],
                              log=self.root.parent / f"{self.root.name}-pg_ctl.log", netns=self.netns, timeout=40)
        self.psql("postgres", "postgres", f"CREATE ROLE {APP_ROLE} LOGIN",
                  f"CREATE DATABASE {APP_DATABASE} OWNER {APP_ROLE}")

    def psql(self, user: str, database: str, *statements: str, host: str | None = None,
             netns: str | None = None) -> str:
        """Run statements with psql (over the unix socket unless `host` is given)."""
        argv = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host or str(self.socket_dir),
                "-p", str(PG_PORT), "-U", user, "-d", database]
        for stmt in statements:
            argv += ["-c", stmt]
        return procs.run(argv, netns=netns or self.netns, timeout=15).stdout

    def accepting(self) -> bool:
        return procs.run([str(find_bindir() / "pg_isready"), "-q", "-h", self.listen_ip, "-p", str(PG_PORT)],
                         netns=self.netns, check=False, timeout=5).returncode == 0
