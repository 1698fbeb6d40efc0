"""The one prober protocol: jobs in, results out. Implementations live in adapters (raw socket, scapy)
and in `simulated` (for unit tests). A prober never raises: every failure becomes an `unknown` result."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol as TypingProtocol, Sequence

from .model import IPAddress, Verdict


class ProbeProtocol(enum.Enum):
    TCP = "TCP"
    UDP = "UDP"
    ICMP = "ICMP"


@dataclass(frozen=True)
class SendPoint:
    """Where a probe leaves from: an interface inside a network namespace, with the workload's MAC and IP.

    `netns` is a path (`/run/netns/x`, `/proc/PID/ns/net`) or a name under /run/netns.
    For a VM, `interface` is the `k6t-` bridge (or the pod-side port) of the virt-launcher namespace and
    `mac`/`ip` are the guest's: port security admits nothing else.
    """

    netns: str
    interface: str
    ip: IPAddress
    mac: str | None = None


@dataclass(frozen=True)
class ProbeJob:
    source: SendPoint
    dst_ip: IPAddress
    dst_port: int | None
    protocol: ProbeProtocol = ProbeProtocol.TCP
    tag: str = ""  # opaque to probers: lets callers map results back to cells


class Evidence(enum.Enum):
    SYN_ACK = "syn-ack"
    RST = "rst"
    UDP_REPLY = "udp-reply"
    ICMP_REPLY = "icmp-reply"
    ICMP_UNREACHABLE = "icmp-port-unreachable"
    NO_ANSWER_TARGET_ALIVE = "no-answer-target-alive"  # ARP answered, the probe did not: a drop
    NO_ANSWER = "no-answer"  # nothing at all: cannot tell a drop from a dead host
    UNCONFIRMED = "no-answer-unconfirmed"  # silent after every re-probe, but answers are going missing: no verdict
    NO_ARP = "no-arp"
    ERROR = "error"


@dataclass(frozen=True)
class ProbeResult:
    job: ProbeJob
    verdict: Verdict
    evidence: Evidence
    detail: str = ""
    rtt_seconds: float | None = None


class Prober(TypingProtocol):
    name: str

    def run(self, jobs: Sequence[ProbeJob], *, timeout: float = 1.0, rate: float = 20000.0) -> list[ProbeResult]:
        """Send every job once (paced at `rate` per second), wait at most `timeout` after the last send,
        and return one result per job, in job order. Never raises."""
        ...
