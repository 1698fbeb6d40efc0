"""The IPv6 seed on the lab as a two-node interconnect cluster: neighbour discovery and TCP over IPv6 between the
nodes cross the physical segment (one br-ex to the other), and each node's check of its local halves agrees with
the IPv6 seed's policies in each OVN-K version's shapes."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Iterator

import pytest

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Ref, Verdict
from segcheck.agent.core.probe import Evidence, ProbeJob
from segcheck.agent.lab import devices, procs
from segcheck.agent.lab.cluster import LabCluster
from segcheck.agent.lab.cluster_sources import LabNodeSources
from segcheck.agent.lab.seed import packaged_seed_ipv6
from segcheck.agent.lab.segment import BRIDGE
from segcheck.agent.runtime.checker import Checker
from segcheck.agent.runtime.checks import read_programmed
from tests.builders import allow_client_to_server

from .test_lab_cluster import running_cluster

pytestmark = pytest.mark.lab

NET = Ref("default", "tenantblue")
ALLOW_CLIENT_TO_SERVER = allow_client_to_server("fd00:200::10/128", "fd00:200::20/128")


def seed6(*extra: Path) -> Inventory:
    inventory, errors = load_inventory([packaged_seed_ipv6(), *extra])
    assert not errors, errors
    return inventory


@pytest.fixture(scope="module")
def cluster() -> Iterator[LabCluster]:
    with running_cluster(seed6()) as instance:
        yield instance


def fdb(cluster: LabCluster) -> dict[str, str]:
    """MAC -> the segment port it was learnt on."""
    out = procs.run(["bridge", "-j", "fdb", "show", "br", BRIDGE], netns=cluster.segment.netns).stdout
    return {e["mac"]: e["ifname"] for e in json.loads(out or "[]") if not e.get("flags") or "self" not in e["flags"]}


def test_ipv6_between_nodes_crosses_the_physical_segment(cluster, tmp_path, tcp):  # type: ignore[no-untyped-def]
    with pytest.raises(AssertionError):  # the seed denies the cross-node pair
        tcp(cluster, "podclient", "fd00:200::20", 8080, attempts=1)
    (tmp_path / "60-allow.yaml").write_text(ALLOW_CLIENT_TO_SERVER)
    inventory = seed6(tmp_path)
    cluster.apply(inventory, NET)
    try:
        assert tcp(cluster, "podclient", "fd00:200::20", 8080).startswith("segcheck-lab vm-server 8080")
        tcp(cluster, "podclient", "fd00:200::5", 5432, read=False)
        sources = LabNodeSources(cluster, "worker-0")  # the agent's probes, from where worker-0 finds podclient
        try:
            client = next(a for a in inventory.attachments if a.ref.name == "podclient")
            point = sources.locator().send_point(client)
            assert point is not None and point.ip.version == 6
            jobs = [ProbeJob(point, ipaddress.ip_address(ip), port)
                    for ip, port in (("fd00:200::20", 8080), ("fd00:200::5", 5432), ("fd00:200::20", 22))]
            results = RawSocketProber().run(jobs, timeout=1.0)
        finally:
            sources.close()
        assert [(r.verdict, r.evidence) for r in results] == [
            (Verdict.ALLOWED, Evidence.SYN_ACK), (Verdict.ALLOWED, Evidence.SYN_ACK),
            (Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE)], [r.detail for r in results]
        learnt = fdb(cluster)
        w0, w1 = cluster.nodes["worker-0"], cluster.nodes["worker-1"]
        assert learnt.get(w0.send_point("podclient").mac) == devices.ovs_side_port("nd", "worker-0")
        assert learnt.get(w1.send_point("vm-server").mac) == devices.ovs_side_port("nd", "worker-1")
    finally:
        cluster.apply(seed6(), NET)


@pytest.mark.parametrize("version", ["4.14", "current"])
def test_each_node_checks_its_ipv6_halves_and_the_planes_agree(cluster: LabCluster, version: str) -> None:
    inventory, profile = seed6(), PROFILES[version]
    cluster.apply(inventory, NET, profile)
    try:
        probed = set()
        for node in cluster.nodes:
            sources = LabNodeSources(cluster, node)
            try:
                programmed = read_programmed(sources)
                assert not programmed.errors, programmed.errors
                checker = Checker(inventory, NET, programmed.nb, programmed.ovs, RawSocketProber(),
                                  sources.locator(), profile)
                cells, _ = checker.observe(checker.plan())
            finally:
                sources.close()
            for cell in cells:
                if cell.observed is not None:
                    probed.add(cell.source)
                    assert cell.observed.verdict is cell.expected.verdict, (node, cell)
                if cell.destination == "ext:db" and cell.observed is not None:
                    assert cell.programmed is not None and cell.programmed.verdict is cell.expected.verdict
        assert probed == {"default/podclient", "default/vm-server"}
    finally:
        cluster.apply(inventory, NET)
