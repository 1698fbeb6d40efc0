"""Running commands and tracking daemons by PID (never by process name).

Every daemon the lab starts writes a pidfile under the lab's state directory, and every command line of
those daemons names that directory; `is_ours` uses this to refuse to signal a recycled PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence

from .errors import LabCommandError
from .polling import wait_until

DEFAULT_TIMEOUT = 10.0

# Variables that would make OVN/OVS tools talk to something other than the lab (or break system tools).
_SCRUBBED_ENV = ("OVN_NB_DAEMON", "OVN_SB_DAEMON", "OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR",
                 "OVS_PKGDATADIR", "OVN_RUNDIR", "OVN_DBDIR", "OVN_LOGDIR", "OVN_SYSCONFDIR", "LD_LIBRARY_PATH")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if extra:
        env.update(extra)
    return env


def netns_argv(netns: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def run(argv: Sequence[str], *, netns: str | None = None, timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None, check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run a short command (optionally inside a namespace) and capture its output; raise on failure."""
    full = netns_argv(netns, argv)
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=clean_env(env),
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LabCommandError(full, f"timed out after {timeout:g}s",
                              _text(exc.stdout), _text(exc.stderr)) from None
    except FileNotFoundError:
        raise LabCommandError(full, "command not found") from None
    if check and proc.returncode != 0:
        raise LabCommandError(full, f"exit {proc.returncode}", proc.stdout, proc.stderr)
    return proc


def spawn_detaching(argv: Sequence[str], *, log: Path, netns: str | None = None,
                    timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None) -> None:
    """Run a command that daemonizes itself and returns once ready (OVS `--detach`, `pg_ctl -w`).

    Output goes to a file, not a pipe: a daemon that keeps an inherited pipe open would block us.
    """
    full = netns_argv(netns, argv)
    with open(log, "ab") as out:
        try:
            rc = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout,
                                env=clean_env(env)).returncode
        except subprocess.TimeoutExpired:
            raise LabCommandError(full, f"did not detach within {timeout:g}s (see {log})") from None
        except FileNotFoundError:
            raise LabCommandError(full, "command not found") from None
    if rc != 0:
        tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
        raise LabCommandError(full, f"exit {rc} (log {log})", stderr=tail)


def run_in_group(argv: Sequence[str], *, pidfile: Path, timeout: float = DEFAULT_TIMEOUT,
                 env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in a process group of its own whose id (its PID) sits in `pidfile` while it runs, so that
    `stop_group` ends it and everything it started even after we died (initdb, its postgres children, runuser)."""
    full = list(argv)
    try:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=clean_env(env), start_new_session=True)
    except FileNotFoundError:
        raise LabCommandError(full, "command not found") from None
    pidfile.write_text(f"{proc.pid}\n")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(group_members(proc.pid))
        out, err = proc.communicate()
        raise LabCommandError(full, f"timed out after {timeout:g}s", out, err) from None
    finally:
        pidfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise LabCommandError(full, f"exit {proc.returncode}", out, err)
    return subprocess.CompletedProcess(full, proc.returncode, out, err)


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (children keep it when their parent dies)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def stop_group(pgid: int, marker: str) -> list[int]:
    """SIGKILL every process of a group `run_in_group` made, if one of them is ours (guards against PID reuse)."""
    members = group_members(pgid)
    if not any(is_ours(pid, marker) for pid in members):
        return []
    _kill(members)
    return members


def _kill(pids: Sequence[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not any(is_alive(pid) for pid in pids), timeout=2.0, interval=0.01)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def read_pidfile(path: Path) -> int | None:
    """The PID in the first line of a pidfile (OVS and PostgreSQL both write it there)."""
    try:
        first = path.read_text().splitlines()[0].strip()
        return int(first) if first else None
    except (OSError, IndexError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """Running (zombies count as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def is_ours(pid: int, marker: str) -> bool:
    """The process's command line mentions `marker` (the lab's state directory): guards against PID reuse."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (PostgreSQL's backends and helpers, for instance)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may hold spaces and parentheses: the parent PID follows the last ')'.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def tree_pss_bytes(pid: int) -> int | None:
    """Proportional set size of a process tree: shared pages (PostgreSQL's shared buffers) counted once."""
    total, seen = 0, False
    for member in descendants(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    seen = True
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total if seen else None


def stop_pid(pid: int, *, sig: int = signal.SIGTERM, grace: float = 5.0) -> bool:
    """Signal one PID, wait for it to go, SIGKILL after `grace`. True if it is gone."""
    if not is_alive(pid):
        return True
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    if wait_until(lambda: not is_alive(pid), timeout=grace, interval=0.01):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return wait_until(lambda: not is_alive(pid), timeout=2.0, interval=0.01)


def monotonic_ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000.0, 1)
