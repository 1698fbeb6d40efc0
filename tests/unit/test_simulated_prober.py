"""SimulatedProber: deterministic, one result per job in order, evidence consistent with the verdict."""

from __future__ import annotations

import ipaddress

from segcheck.agent.adapters.probers.simulated import SimulatedProber
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import Evidence, ProbeJob, ProbeProtocol, SendPoint

POINT = SendPoint("/run/netns/none", "net1", ipaddress.ip_address("192.168.200.10"))


def _job(port: int | None, proto: ProbeProtocol = ProbeProtocol.TCP, tag: str = "") -> ProbeJob:
    return ProbeJob(POINT, ipaddress.ip_address("192.168.200.20"), port, proto, tag)


def _decide(job: ProbeJob) -> Verdict:
    if job.dst_port == 666:
        raise RuntimeError("boom")
    return {80: Verdict.ALLOWED, 81: Verdict.DENIED}.get(job.dst_port or 0, Verdict.UNKNOWN)


def test_results_in_order_with_consistent_evidence() -> None:
    jobs = [_job(80, tag="a"), _job(81, tag="b"), _job(82, tag="c"), _job(80, ProbeProtocol.UDP),
            _job(None, ProbeProtocol.ICMP)]
    prober = SimulatedProber(lambda j: Verdict.ALLOWED if j.protocol is ProbeProtocol.ICMP else _decide(j))
    results = prober.run(jobs)
    assert [r.job for r in results] == jobs
    assert [(r.verdict, r.evidence) for r in results] == [
        (Verdict.ALLOWED, Evidence.SYN_ACK), (Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE),
        (Verdict.UNKNOWN, Evidence.NO_ARP), (Verdict.ALLOWED, Evidence.UDP_REPLY),
        (Verdict.ALLOWED, Evidence.ICMP_REPLY)]
    assert results[0].rtt_seconds is not None and results[1].rtt_seconds is None
    assert prober.runs == [jobs]


def test_deterministic() -> None:
    jobs = [_job(p) for p in (80, 81, 82, 80)]
    assert SimulatedProber(_decide).run(jobs) == SimulatedProber(_decide).run(jobs)


def test_never_raises() -> None:
    results = SimulatedProber(_decide).run([_job(666), _job(80)])
    assert (results[0].verdict, results[0].evidence) == (Verdict.UNKNOWN, Evidence.ERROR)
    assert "boom" in results[0].detail
    assert results[1].verdict is Verdict.ALLOWED
    bad = SimulatedProber(lambda j: "allowed")  # type: ignore[arg-type,return-value]
    assert bad.run([_job(80)])[0].evidence is Evidence.ERROR


def test_empty() -> None:
    assert SimulatedProber(_decide).run([]) == []
