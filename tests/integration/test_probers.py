"""Raw and scapy probers against real packets in throw-away namespaces (see netns_fixtures for the topology)."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from segcheck.agent.adapters import netns
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.adapters.probers.scapy_prober import ScapyProber
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import Evidence, ProbeJob, ProbeProtocol, SendPoint

try:
    from . import netns_fixtures as nf
except ImportError:  # tests/integration collected as a rootdir, not a package
    import netns_fixtures as nf  # type: ignore[no-redef]

pytestmark = pytest.mark.lab
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def topo() -> Iterator[nf.Topology]:
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root (run the tests as root)")
    yield from nf.topology()


def _wrong(topo: nf.Topology, results) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{r.job.tag or r.job}: got {r.verdict.value} ({r.evidence.value}: {r.detail}), "
            f"want {topo.expected(r.job).value}" for r in results if r.verdict is not topo.expected(r.job)]


# -- namespaces --------------------------------------------------------------------------------------------

def test_run_in_netns_leaves_the_caller_where_it_was(topo: nf.Topology) -> None:
    before = os.readlink("/proc/thread-self/ns/net")
    names = netns.run_in_netns(topo.ns("cli"), lambda: [n for _i, n in socket.if_nameindex()])
    assert sorted(names) == ["eth0", "lo"]
    assert os.readlink("/proc/thread-self/ns/net") == before
    by_path = netns.run_in_netns(f"/run/netns/{topo.ns('vml')}", lambda: [n for _i, n in socket.if_nameindex()])
    assert "k6t-pod1" in by_path
    with pytest.raises(netns.NetnsError):
        netns.run_in_netns(f"{topo.prefix}-missing", lambda: None)
    with pytest.raises(ZeroDivisionError):  # the callable's own exception comes back
        netns.run_in_netns(topo.ns("cli"), lambda: 1 / 0)


def test_sysctl_is_per_namespace(topo: nf.Topology) -> None:
    key = "net.ipv4.ip_local_port_range"
    path = Path("/proc/sys/net/ipv4/ip_local_port_range")
    root = path.read_text()
    assert netns.run_in_netns(f"/proc/{os.getpid()}/ns/net", path.read_text) == root
    netns.write_sysctl(topo.ns("srv"), key, "30000 60999")
    assert netns.read_sysctl(topo.ns("srv"), key).split() == ["30000", "60999"]
    assert path.read_text() == root  # root namespace untouched


# -- verdicts ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw_results(topo: nf.Topology):  # type: ignore[no-untyped-def]
    return RawSocketProber().run(topo.cells(), timeout=TIMEOUT)


def test_raw_verdicts_and_evidence(topo: nf.Topology, raw_results) -> None:  # type: ignore[no-untyped-def]
    assert [r.job for r in raw_results] == topo.cells()
    assert _wrong(topo, raw_results) == []
    by_tag = {r.job.tag: r for r in raw_results}
    for kind in ("pod", "vm"):
        assert by_tag[f"{kind}->srv TCP/{nf.TCP_OPEN}"].evidence is Evidence.SYN_ACK
        assert by_tag[f"{kind}->srv TCP/{nf.TCP_CLOSED}"].evidence is Evidence.RST
        assert by_tag[f"{kind}->srv TCP/{nf.TCP_BLOCKED}"].evidence is Evidence.NO_ANSWER_TARGET_ALIVE
        assert by_tag[f"{kind}->srv UDP/{nf.UDP_ECHO}"].evidence is Evidence.UDP_REPLY
        assert by_tag[f"{kind}->srv UDP/{nf.UDP_CLOSED}"].evidence is Evidence.ICMP_UNREACHABLE
        assert by_tag[f"{kind}->srv UDP/{nf.UDP_BLOCKED}"].evidence is Evidence.NO_ANSWER_TARGET_ALIVE
        assert by_tag[f"{kind}->dead TCP"].evidence is Evidence.NO_ARP
        assert by_tag[f"{kind}->dead ICMP"].evidence is Evidence.NO_ARP
    assert by_tag["pod->srv ICMP/None"].evidence is Evidence.ICMP_REPLY
    assert by_tag["vm->srv ICMP/None"].evidence is Evidence.NO_ANSWER_TARGET_ALIVE
    for r in raw_results:
        assert (r.rtt_seconds is not None) == (r.verdict is Verdict.ALLOWED)


def test_scapy_agrees_with_raw_cell_by_cell(topo: nf.Topology, raw_results) -> None:  # type: ignore[no-untyped-def]
    scapy_results = ScapyProber().run(topo.cells(), timeout=TIMEOUT)
    assert [r.job for r in scapy_results] == topo.cells()
    assert _wrong(topo, scapy_results) == []
    diff = [(a.job.tag, a.verdict.value, a.evidence.value, b.verdict.value, b.evidence.value)
            for a, b in zip(raw_results, scapy_results) if (a.verdict, a.evidence) != (b.verdict, b.evidence)]
    assert diff == []


# -- bad input never raises --------------------------------------------------------------------------------

@pytest.mark.parametrize("prober_cls", [RawSocketProber, ScapyProber])
def test_bad_input_becomes_unknown(topo: nf.Topology, prober_cls) -> None:  # type: ignore[no-untyped-def]
    good = ProbeJob(topo.client, nf.SERVER_IP, nf.TCP_OPEN, tag="good")
    bad = [
        ProbeJob(SendPoint(f"{topo.prefix}-missing", "eth0", nf.CLIENT_IP), nf.SERVER_IP, 80, tag="no netns"),
        ProbeJob(SendPoint("/proc/999999999/ns/net", "eth0", nf.CLIENT_IP), nf.SERVER_IP, 80, tag="no pid"),
        ProbeJob(SendPoint(topo.ns("cli"), "nope0", nf.CLIENT_IP), nf.SERVER_IP, 80, tag="no interface"),
        ProbeJob(SendPoint(topo.ns("vml"), "k6t-pod1", nf.GUEST_IP, "not-a-mac"), nf.SERVER_IP, 80, tag="bad mac"),
        ProbeJob(topo.client, ipaddress.ip_address("fd00::1"), 80, tag="ipv6"),
        ProbeJob(topo.client, nf.SERVER_IP, None, ProbeProtocol.TCP, tag="no port"),
        ProbeJob(topo.client, nf.SERVER_IP, 70000, ProbeProtocol.UDP, tag="port out of range"),
    ]
    results = prober_cls().run(bad + [good], timeout=TIMEOUT)
    assert [r.job for r in results] == bad + [good]
    for r in results[:-1]:
        assert (r.verdict, r.evidence) == (Verdict.UNKNOWN, Evidence.ERROR), r
        assert r.detail
    assert results[-1].verdict is Verdict.ALLOWED


@pytest.mark.parametrize("prober_cls", [RawSocketProber, ScapyProber])
def test_nonsense_arguments_do_not_raise(topo: nf.Topology, prober_cls) -> None:  # type: ignore[no-untyped-def]
    assert prober_cls().run([], timeout=TIMEOUT) == []
    results = prober_cls().run([ProbeJob(topo.client, nf.SERVER_IP, nf.TCP_OPEN)], timeout=-1, rate=0)
    assert len(results) == 1 and results[0].verdict in (Verdict.ALLOWED, Verdict.DENIED)


# -- source ports ------------------------------------------------------------------------------------------

def _ports_in(results) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(r.detail.split()[1].rstrip(";")) for r in results if r.detail.startswith(("sport ", "id "))]


def test_source_ports_are_reserved_and_used(topo: nf.Topology) -> None:
    netns.write_sysctl(topo.ns("cli"), "net.ipv4.ip_local_reserved_ports", "8080")  # whatever was there stays
    jobs = [ProbeJob(topo.client, nf.SERVER_IP, nf.TCP_OPEN) for _ in range(50)]
    results = RawSocketProber(port_range=(41000, 41999)).run(jobs, timeout=TIMEOUT)
    assert all(r.verdict is Verdict.ALLOWED for r in results)
    ports = _ports_in(results)
    assert len(ports) == 50 and len(set(ports)) == 50 and all(41000 <= p <= 41999 for p in ports)
    reserved = netns.read_sysctl(topo.ns("cli"), "net.ipv4.ip_local_reserved_ports")
    assert reserved == "8080,41000-41999"

    def ephemeral_ports() -> list[int]:
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(300)]
        try:
            for s in socks:
                s.connect((str(nf.SERVER_IP), 9))
            return [s.getsockname()[1] for s in socks]
        finally:
            for s in socks:
                s.close()

    netns.write_sysctl(topo.ns("cli"), "net.ipv4.ip_local_port_range", "41000 42999")
    try:  # the kernel must now pick every ephemeral port outside the reserved half
        assert all(not 41000 <= p <= 41999 for p in netns.run_in_netns(topo.ns("cli"), ephemeral_ports))
    finally:
        netns.write_sysctl(topo.ns("cli"), "net.ipv4.ip_local_port_range", "32768 60999")


@pytest.mark.parametrize("prober_cls", [RawSocketProber, ScapyProber])
def test_five_tuple_guard_refuses_reuse(topo: nf.Topology, prober_cls) -> None:  # type: ignore[no-untyped-def]
    prober = prober_cls(port_range=(43000, 43001))
    jobs = [ProbeJob(topo.client, nf.SERVER_IP, nf.TCP_OPEN) for _ in range(3)]
    first = prober.run(jobs, timeout=TIMEOUT)
    assert [r.verdict for r in first[:2]] == [Verdict.ALLOWED, Verdict.ALLOWED]
    assert (first[2].verdict, first[2].evidence) == (Verdict.UNKNOWN, Evidence.ERROR)
    assert "5-tuple guard" in first[2].detail
    again = prober.run(jobs[:1], timeout=TIMEOUT)  # same prober, seconds later: still refused
    assert again[0].verdict is Verdict.UNKNOWN and "5-tuple guard" in again[0].detail
    other_port = prober.run([ProbeJob(topo.client, nf.SERVER_IP, nf.TCP_CLOSED)], timeout=TIMEOUT)
    assert other_port[0].verdict is Verdict.ALLOWED  # a different tuple is fine


# -- throughput: correctness under load, never a timing ----------------------------------------------------

@pytest.mark.parametrize("point_name,count", [("client", 20000), ("vm", 10000)])
def test_many_probes_at_high_rate_are_right(topo: nf.Topology, point_name: str, count: int) -> None:
    jobs = topo.bulk(count, getattr(topo, point_name))
    prober = RawSocketProber()
    results = prober.run(jobs, timeout=1.0, rate=20000)
    wrong = _wrong(topo, results)
    assert len(results) == count
    assert len(wrong) < count / 100, (len(wrong), Counter(w.split(": got ")[1][:40] for w in wrong).most_common(3))
