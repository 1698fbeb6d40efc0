"""Liveness checks against a real unix control socket speaking OVS's JSON-RPC, and the monitor's bookkeeping:
down and stale since the last good answer, each check at its own pace, a change reported once."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from segcheck.agent.adapters.liveness import (
    LivenessMonitor,
    controller_check,
    pidfile_socket,
    unixctl,
    vswitchd_check,
)


class ControlSocket:
    """A daemon's control socket: answers each JSON-RPC request with `answers[method]` (split in two writes)."""

    def __init__(self, path: Path, answers: dict[str, str]):
        self.path, self.answers = path, answers
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = json.loads(conn.recv(4096))
                method = request["method"]
                reply = ({"id": request["id"], "result": self.answers[method], "error": None} if method in self.answers
                         else {"id": request["id"], "result": None, "error": f"\"{method}\" is not a valid command"})
                data = json.dumps(reply).encode()
                conn.sendall(data[:7])
                conn.sendall(data[7:])

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); the socket file stays, as after kill -9
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def rundir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def daemon(rundir: Path, name: str, pid: int, answers: dict[str, str]) -> ControlSocket:
    (rundir / f"{name}.pid").write_text(f"{pid}\n")
    return ControlSocket(rundir / f"{name}.{pid}.ctl", answers)


def test_unixctl_reads_a_reply_in_pieces_and_reports_errors(rundir):
    ctl = daemon(rundir, "ovs-vswitchd", 42, {"dpif/show": "netdev@ovs-netdev: hit:0 missed:0\n"})
    try:
        assert unixctl(ctl.path, "dpif/show").startswith("netdev@ovs-netdev")
        with pytest.raises(ValueError, match="not a valid command"):
            unixctl(ctl.path, "nonsense")
    finally:
        ctl.close()


def test_vswitchd_and_controller_checks_follow_the_pidfile(rundir):
    ctl = daemon(rundir, "ovs-vswitchd", 42, {"dpif/show": "system@ovs-system: hit:1\n"})
    ovn = daemon(rundir, "ovn-controller", 43, {"connection-status": "not connected\n"})
    try:
        assert vswitchd_check(pidfile_socket(rundir / "ovs-vswitchd.pid", "ovs-vswitchd"))() == \
            (True, "datapath answered: system@ovs-system: hit:1")
        up, detail = controller_check(pidfile_socket(rundir / "ovn-controller.pid", "ovn-controller"))()
        assert not up and "not connected" in detail
    finally:
        ctl.close()
        ovn.close()
    # killed: the pidfile and the socket file stay, nobody answers
    up, detail = vswitchd_check(pidfile_socket(rundir / "ovs-vswitchd.pid", "ovs-vswitchd"))()
    assert not up and "no answer" in detail
    (rundir / "ovs-vswitchd.pid").unlink()
    assert vswitchd_check(pidfile_socket(rundir / "ovs-vswitchd.pid", "ovs-vswitchd"))() == \
        (False, "no pidfile: daemon not running")


class Scripted:
    def __init__(self, name: str, answers: list[bool], interval: float | None = None):
        self.name, self.answers, self.interval, self.calls = name, answers, interval, 0

    def __call__(self) -> tuple[bool, str]:
        self.calls += 1
        return self.answers.pop(0), "scripted"


def test_monitor_reports_down_stale_since_the_last_answer_and_each_change_once():
    now = [100.0]
    daemon_check = Scripted("ovs_vswitchd", [True, False, False, True])
    slow = Scripted("ext:db", [True, True], interval=30.0)
    broken = Scripted("ovn_controller", [])  # raises IndexError: a check that fails is a source down
    changes: list[int] = []
    monitor = LivenessMonitor(lambda: [daemon_check, slow, broken], interval=5.0, clock=lambda: now[0])
    monitor._on_change = lambda: changes.append(1)
    health = {h.name: h for h in monitor.run_once()}
    assert health["ovs_vswitchd"].up and health["ext:db"].up
    assert not health["ovn_controller"].up and health["ovn_controller"].staleness_seconds == float("inf")
    assert "IndexError" in health["ovn_controller"].detail
    now[0] += 5
    monitor.run_once()
    now[0] += 5
    health = {h.name: h for h in monitor.run_once()}
    assert not health["ovs_vswitchd"].up and health["ovs_vswitchd"].staleness_seconds == 10.0
    assert slow.calls == 1 and health["ext:db"].up  # not due yet: its last answer stands, aging
    assert health["ext:db"].staleness_seconds == 10.0
    now[0] += 25
    health = {h.name: h for h in monitor.run_once()}
    assert health["ovs_vswitchd"].up and health["ovs_vswitchd"].staleness_seconds == 0.0 and slow.calls == 2
    assert len(changes) == 3  # first results, vswitchd down, vswitchd up again
