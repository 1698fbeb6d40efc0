"""A pure, deterministic prober for unit tests: a function decides each job's verdict."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import Evidence, ProbeJob, ProbeProtocol, ProbeResult

_ALLOWED_EVIDENCE = {
    ProbeProtocol.TCP: Evidence.SYN_ACK,
    ProbeProtocol.UDP: Evidence.UDP_REPLY,
    ProbeProtocol.ICMP: Evidence.ICMP_REPLY,
}
SIMULATED_RTT = 0.0001


class SimulatedProber:
    """Answers each job with `decide(job)`; evidence is what a real prober would have seen for that verdict.

    allowed → SYN-ACK / UDP reply / echo reply (with a fixed RTT), denied → no answer while the target is alive,
    unknown → no ARP. A `decide` that raises yields unknown/ERROR, as a real prober's failure would.
    `runs` keeps every batch of jobs received, for assertions.
    """

    name = "simulated"

    def __init__(self, decide: Callable[[ProbeJob], Verdict]) -> None:
        self.decide = decide
        self.runs: list[list[ProbeJob]] = []

    def run(self, jobs: Sequence[ProbeJob], *, timeout: float = 1.0, rate: float = 20000.0) -> list[ProbeResult]:
        jobs = list(jobs)
        self.runs.append(jobs)
        return [self._one(job, timeout) for job in jobs]

    def _one(self, job: ProbeJob, timeout: float) -> ProbeResult:
        try:
            verdict = self.decide(job)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"decide returned {verdict!r}, not a Verdict")
        except Exception as exc:  # noqa: BLE001 - a prober never raises
            return ProbeResult(job, Verdict.UNKNOWN, Evidence.ERROR, f"simulated failure: {type(exc).__name__}: {exc}")
        if verdict is Verdict.ALLOWED:
            return ProbeResult(job, verdict, _ALLOWED_EVIDENCE.get(job.protocol, Evidence.SYN_ACK), "simulated",
                               SIMULATED_RTT)
        if verdict is Verdict.DENIED:
            return ProbeResult(job, verdict, Evidence.NO_ANSWER_TARGET_ALIVE,
                               f"simulated: no answer within {timeout:g}s; ARP answered")
        return ProbeResult(job, verdict, Evidence.NO_ARP, "simulated: no ARP reply")
