"""`lab up -f` records the manifests the lab was built from; `--lab` without `-f` reads them (else the seed)."""

from __future__ import annotations

from pathlib import Path

from segcheck.agent.lab import state
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.seed import packaged_seed, packaged_seed_ipv6
from segcheck.agent.runtime.cluster import ClusterTarget
from segcheck.cli.options import DeclaredInput, recorded_lab_manifests


def test_recorded_manifests_are_read_back_while_they_exist(tmp_path: Path) -> None:
    lab = Lab(state_dir=tmp_path, prefix="sctest-")
    lab.remember_manifests([packaged_seed_ipv6()])
    assert lab.manifests == ()  # no lab recorded there: nothing to remember it in
    state.save(tmp_path, {"prefix": "sctest-", "phase": "up"})
    lab.remember_manifests([packaged_seed_ipv6()])
    assert lab.manifests == (str(packaged_seed_ipv6()),)
    assert recorded_lab_manifests(tmp_path, "sctest-") == (str(packaged_seed_ipv6()),)
    gone = tmp_path / "gone.yaml"
    gone.write_text("")
    lab.remember_manifests([packaged_seed_ipv6(), gone])
    gone.unlink()
    assert lab.manifests == ()  # a recorded file is gone: fall back rather than fail on it


def test_declared_input_with_the_lab() -> None:
    seed6 = (str(packaged_seed_ipv6()),)
    assert DeclaredInput((), True, ClusterTarget(), seed6).files == seed6
    assert DeclaredInput((), True, ClusterTarget()).files == (str(packaged_seed()),)
    assert DeclaredInput(("mine/",), True, ClusterTarget(), seed6).files == ("mine/",)  # -f wins
    assert DeclaredInput((), False, ClusterTarget(), seed6).files == ()  # the live cluster
