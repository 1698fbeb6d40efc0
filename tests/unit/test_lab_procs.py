"""Process groups of the lab: `stop_group` ends only groups that are the lab's (a recycled id is left alone)."""

from __future__ import annotations

import subprocess
import sys

from segcheck.agent.lab import procs


def test_a_group_that_does_not_name_the_lab_is_not_signalled(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        assert procs.group_members(stranger.pid) == [stranger.pid]
        assert procs.stop_group(stranger.pid, str(tmp_path)) == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_group_of_the_lab_is_killed_whole(tmp_path):
    marker = str(tmp_path / "state")
    leader = subprocess.Popen(["sh", "-c", f"sleep 60 & sleep 61; : {marker}"], start_new_session=True)
    try:
        assert procs.wait_until(lambda: len(procs.group_members(leader.pid)) == 3, timeout=10)
        members = procs.group_members(leader.pid)
        assert sorted(procs.stop_group(leader.pid, marker)) == sorted(members)
        assert procs.group_members(leader.pid) == []
    finally:
        leader.kill()
        leader.wait()
