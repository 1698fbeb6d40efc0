"""Whether the daemons behind the planes answer, beyond their databases being readable.

- ovs-vswitchd: its control socket answers `dpif/show` (the datapath, as ovs-appctl asks it);
- ovn-controller: its control socket answers `connection-status` with `connected` (alive and talking to SB);
- an external endpoint: its service answers its protocol from inside a workload's namespace (PostgreSQL's reply
  to a startup message, else a completed TCP handshake).

A `LivenessMonitor` runs the checks in a thread of its own, each bounded by a timeout; a check never raises, and
its result is a `SourceHealth` (down and stale since the last success when it does not answer).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..core.model import PortCheck
from ..core.state import SourceHealth
from ..core.sources import LivenessCheck
from .netns import open_socket
from .port_checks import run_check

LOG = logging.getLogger(__name__)
CHECK_TIMEOUT = 2.0
CHECK_INTERVAL = 5.0
MAX_REPLY_BYTES = 1 << 20


Check = LivenessCheck


def unixctl(path: Path, command: str, *args: str, timeout: float = CHECK_TIMEOUT) -> str:
    """One JSON-RPC call on an OVS/OVN control socket, as `ovs-appctl` makes it. Raises OSError or ValueError."""
    deadline = time.monotonic() + timeout
    decoder = json.JSONDecoder()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"method": command, "params": list(args), "id": 0}).encode())
        data = b""
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("control socket closed without an answer")
            data += chunk
            if len(data) > MAX_REPLY_BYTES:
                raise ValueError("answer too large")
            try:
                reply, _ = decoder.raw_decode(data.decode())
                break
            except ValueError:
                continue  # not complete yet
    if not isinstance(reply, dict):
        raise ValueError("not a JSON-RPC reply")
    if reply.get("error"):
        raise ValueError(f"{command}: {reply['error']}")
    return str(reply.get("result") or "")


def pidfile_socket(pidfile: Path, name: str) -> Callable[[], Path | None]:
    """The control socket a daemon makes without --unixctl: `<dir>/<name>.<pid>.ctl`, found from its pidfile
    (a crashed daemon leaves both behind: the check then finds nobody answering)."""

    def locate() -> Path | None:
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pidfile.parent / f"{name}.{pid}.ctl"

    return locate


@dataclass
class DaemonCheck:
    """A daemon asked a question on its control socket; `judge` turns the answer into (healthy, detail)."""

    name: str
    socket: Callable[[], Path | None]
    command: str
    judge: Callable[[str], tuple[bool, str]]

    def __call__(self) -> tuple[bool, str]:
        path = self.socket()
        if path is None:
            return False, "no pidfile: daemon not running"
        try:
            return self.judge(unixctl(path, self.command))
        except (OSError, ValueError) as exc:
            return False, f"no answer on {path}: {exc}"


def _datapath(answer: str) -> tuple[bool, str]:
    first = answer.strip().splitlines()[0] if answer.strip() else ""
    return (True, f"datapath answered: {first}") if first else (False, "datapath list empty")


def _connected(answer: str) -> tuple[bool, str]:
    status = answer.strip()
    return (status == "connected", "connected to the southbound database" if status == "connected"
            else f"southbound connection: {status or 'unknown'}")


def vswitchd_check(socket_path: Callable[[], Path | None]) -> DaemonCheck:
    return DaemonCheck("ovs_vswitchd", socket_path, "dpif/show", _datapath)


def controller_check(socket_path: Callable[[], Path | None]) -> DaemonCheck:
    return DaemonCheck("ovn_controller", socket_path, "connection-status", _connected)


@dataclass
class EndpointCheck:
    """An external endpoint's service, asked in its own protocol from a namespace the policies let reach it."""

    name: str  # ext:<endpoint>
    netns: str
    ip: str
    port: int
    check: PortCheck | None = None  # the protocol check the endpoint declares for the port (None: a TCP handshake)
    timeout: float = CHECK_TIMEOUT
    interval: float | None = None  # None: the monitor's

    def __call__(self) -> tuple[bool, str]:
        if self.check is not None:
            answer = run_check(self.check, self.netns, self.ip, self.port, self.timeout)
            return answer.ok, f"{answer.kind}: {answer.summary}"
        try:
            family = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
            with open_socket(self.netns, family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect((self.ip, self.port))
            return True, f"TCP {self.ip}:{self.port} accepted a connection"
        except Exception as exc:  # noqa: BLE001 - a check reports, it does not raise
            return False, f"TCP {self.ip}:{self.port}: {exc}"


class LivenessMonitor:
    """Runs `checks()` every `interval` seconds and keeps each one's latest `SourceHealth`."""

    def __init__(self, checks: Callable[[], Sequence[Check]], interval: float = CHECK_INTERVAL,
                 clock: Callable[[], float] = time.time):
        self.checks, self.interval, self.clock = checks, interval, clock
        self._results: dict[str, tuple[bool, str]] = {}
        self._last_up: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_change: Callable[[], None] = lambda: None

    def run_once(self) -> tuple[SourceHealth, ...]:
        """Run the checks that are due (each every `interval`, or its own); keep the others' last results."""
        changed = False
        results: dict[str, tuple[bool, str]] = {}
        ran: set[str] = set()
        for check in self.checks():
            if self._due.get(check.name, 0.0) > self.clock() and check.name in self._results:
                results[check.name] = self._results[check.name]
                continue
            try:
                results[check.name] = check()
            except Exception as exc:  # noqa: BLE001 - a broken check is a source we cannot vouch for
                results[check.name] = (False, f"check failed: {type(exc).__name__}: {exc}")
            ran.add(check.name)
            self._due[check.name] = self.clock() + (getattr(check, "interval", None) or self.interval)
        now = self.clock()
        with self._lock:
            for name, (up, detail) in results.items():
                if name not in ran:
                    continue
                if up:
                    self._last_up[name] = now
                if name not in self._results or self._results[name][0] != up:
                    changed = True
                    (LOG.info if up else LOG.warning)("source up" if up else "source down",
                                                      extra={"source": name, "detail": detail})
            changed = changed or set(self._results) != set(results)  # e.g. an endpoint no longer declared
            self._results = results
        if changed:
            self._on_change()
        return self.health()

    def health(self) -> tuple[SourceHealth, ...]:
        """Each source with its staleness now: the age of its last good answer (infinite: never answered)."""
        now = self.clock()
        with self._lock:
            return tuple(SourceHealth(name, up, now - self._last_up[name] if name in self._last_up else float("inf"),
                                      detail) for name, (up, detail) in sorted(self._results.items()))

    def start(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._thread = threading.Thread(target=self._loop, name="segcheck-liveness", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * CHECK_TIMEOUT + 1)
