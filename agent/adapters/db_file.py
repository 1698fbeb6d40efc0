"""An OVSDB database *file* (a support bundle's per-node NB, or an OVS conf.db, as must-gather collects them) served
to segcheck itself, so the programmed plane can be checked offline, from a laptop.

The file is never opened for writing: a private copy (a clustered database converted to standalone first) is
served by a private `ovsdb-server` on a unix socket in a temporary directory, which is removed afterwards. The
server is started with `--detach`, whose parent returns only once the database is open and the socket listens,
and it is stopped by the PID from its pidfile.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from ..core.sources import SourceUnavailable

URL_SCHEMES = ("unix:", "tcp:", "ssl:", "punix:", "ptcp:", "pssl:")
START_TIMEOUT = 20.0


def is_database_file(value: str | None) -> bool:
    """An --nb/--ovs value that names a file rather than a server (no OVSDB scheme, an existing regular file)."""
    return bool(value) and not value.startswith(URL_SCHEMES) and Path(value).is_file()  # type: ignore[union-attr]


def _binary(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
    if not found:
        raise SourceUnavailable(f"`{name}` not found: reading a database file needs Open vSwitch's ovsdb tools "
                                "(Debian/Ubuntu: apt-get install openvswitch-common openvswitch-switch)")
    return found


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT, stdin=subprocess.DEVNULL)


class ServedDatabase:
    """`with ServedDatabase(path) as url:` — an OVSDB URL serving a private copy of `path`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._pid: int | None = None

    def __enter__(self) -> str:
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _start(self) -> str:
        if not self.path.is_file():
            raise SourceUnavailable(f"{self.path}: no such database file")
        tool, server = _binary("ovsdb-tool"), _binary("ovsdb-server")
        self._dir = tempfile.TemporaryDirectory(prefix="segcheck-db-")
        work = Path(self._dir.name)
        copy = work / "db"
        if _run([tool, "db-is-clustered", str(self.path)]).returncode == 0:
            done = _run([tool, "cluster-to-standalone", str(copy), str(self.path)])
            if done.returncode != 0:
                raise SourceUnavailable(f"{self.path}: cannot convert the clustered database: {done.stderr.strip()}")
        else:
            shutil.copyfile(self.path, copy)
        socket, pidfile = work / "db.sock", work / "ovsdb-server.pid"
        done = _run([server, str(copy), f"--remote=punix:{socket}", f"--pidfile={pidfile}",
                     f"--unixctl={work / 'ctl'}", f"--log-file={work / 'log'}", "--detach", "--no-chdir",
                     "-vconsole:off"])
        if done.returncode != 0 or not pidfile.is_file():
            raise SourceUnavailable(f"{self.path}: not an OVSDB database ovsdb-server can serve: "
                                    f"{(done.stderr or done.stdout).strip() or 'no detail'}")
        self._pid = int(pidfile.read_text().strip())
        return f"unix:{socket}"

    def close(self) -> None:
        if self._pid is not None:
            _terminate(self._pid)
            self._pid = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def _terminate(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then wait (on a pidfd: no polling) until the process is gone; SIGKILL if it lingers."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        if not select.select([fd], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
            select.select([fd], [], [], timeout)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)
