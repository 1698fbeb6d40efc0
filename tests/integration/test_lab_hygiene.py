"""Lab hygiene: a bring-up that fails removes what it made, and `lab down` ends every process of the lab by PID,
an initdb that is still running included (with whatever it started)."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from segcheck.agent.lab import netns, postgres, procs
from segcheck.agent.lab.errors import LabError, LabUnavailable
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.polling import wait_until

pytestmark = pytest.mark.lab


def processes_naming(marker: str) -> list[str]:
    """Command lines of live processes that name `marker` (the lab's state directory), this test's excepted."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and procs.is_alive(int(entry.name)):
                found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture
def world_readable_dir():
    folder = Path(tempfile.mkdtemp(prefix="segcheck-hygiene-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_failed_up_removes_its_namespaces_and_processes(tmp_path):
    # pytest's tmp_path is private to root: user postgres cannot reach a state directory inside it, so the
    # bring-up fails after OVS, OVN and the hosts' namespaces exist.
    lab = Lab(state_dir=tmp_path / "lab", prefix=f"sch{secrets.token_hex(3)}-")
    try:
        with pytest.raises(LabUnavailable, match="cannot write"):
            lab.up()
        assert [n for n in netns.list_netns() if n.startswith(lab.prefix)] == []
        assert processes_naming(str(lab.state_dir)) == []
        assert lab.status()["phase"] == "down"
    finally:
        lab.down()


def test_down_kills_a_running_initdb_and_what_it_started(world_readable_dir, monkeypatch):
    # A stand-in initdb that hangs with a child, as a real one does when a bring-up dies under it.
    bindir = world_readable_dir / "bin"
    bindir.mkdir()
    (bindir / "initdb").write_text("#!/bin/sh\nsleep 300 &\nwait\n")
    (bindir / "initdb").chmod(0o755)
    monkeypatch.setattr(postgres, "find_bindir", lambda: bindir)
    lab = Lab(state_dir=world_readable_dir / "lab", prefix=f"sch{secrets.token_hex(3)}-")
    lab.state_dir.mkdir(mode=0o755)
    server = lab.postgres()
    failure: list[BaseException] = []

    def init() -> None:
        try:
            server.init()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)

    worker = threading.Thread(target=init)
    worker.start()
    try:
        assert wait_until(lambda: len(procs.group_members(procs.read_pidfile(server.initdb_pidfile) or -1)) >= 3,
                          timeout=15), "initdb (runuser, sh, sleep) did not start"
        group = procs.group_members(procs.read_pidfile(server.initdb_pidfile) or -1)
        report = lab.down()
        assert any(s.startswith("initdb-") for s in report["stopped"]), report
        assert not any(procs.is_alive(pid) for pid in group)
        assert processes_naming(str(lab.state_dir)) == []
        worker.join(timeout=15)
        assert not worker.is_alive() and isinstance(failure[0], LabError)
    finally:
        lab.down()
        worker.join(timeout=15)
