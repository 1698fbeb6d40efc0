"""What both real probers share: job validation and the mapping from an answer to a verdict."""

from __future__ import annotations

import ipaddress

from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import (
    Evidence,
    ProbeJob,
    ProbeProtocol,
    ProbeResult,
    SendPoint,
)

from . import packets as pk


def validate_source(point: SendPoint) -> str:
    if not isinstance(point.ip, ipaddress.IPv4Address):
        return f"source {point.ip} is not IPv4 (only IPv4 is probed)"
    if point.mac is not None:
        try:
            pk.parse_mac(point.mac)
        except ValueError as exc:
            return str(exc)
    return ""


def validate_job(job: ProbeJob) -> str:
    if not isinstance(job.dst_ip, ipaddress.IPv4Address):
        return f"destination {job.dst_ip} is not IPv4 (only IPv4 is probed)"
    if job.protocol is ProbeProtocol.TCP or job.protocol is ProbeProtocol.UDP:
        if job.dst_port is None or not 1 <= job.dst_port <= 65535:
            return f"{job.protocol.value} probe needs a destination port in 1-65535, got {job.dst_port}"
    elif job.protocol is not ProbeProtocol.ICMP:
        return f"unsupported protocol {job.protocol}"
    return ""


def unknown(job: ProbeJob, evidence: Evidence, detail: str) -> ProbeResult:
    return ProbeResult(job, Verdict.UNKNOWN, evidence, detail)


def answered(job: ProbeJob, kind: pk.Kind, extra: int, rtt: float, key: pk.Key) -> ProbeResult:
    label = "id" if key[0] == pk.IPPROTO_ICMP else "sport"
    where = f"{label} {key[3] if key[0] != pk.IPPROTO_ICMP else key[2]}"
    if kind is pk.Kind.SYN_ACK:
        return ProbeResult(job, Verdict.ALLOWED, Evidence.SYN_ACK, where, rtt)
    if kind is pk.Kind.RST:
        return ProbeResult(job, Verdict.ALLOWED, Evidence.RST, f"{where}; port closed but reachable", rtt)
    if kind is pk.Kind.UDP:
        return ProbeResult(job, Verdict.ALLOWED, Evidence.UDP_REPLY, where, rtt)
    if kind is pk.Kind.ECHO_REPLY:
        return ProbeResult(job, Verdict.ALLOWED, Evidence.ICMP_REPLY, where, rtt)
    return _unreachable(job, extra, where, rtt)


def _unreachable(job: ProbeJob, code: int, where: str, rtt: float) -> ProbeResult:
    """ICMP destination unreachable quoting our probe: the code says who stopped it."""
    if code in (pk.ICMP_PORT_UNREACH, pk.ICMP_PROTO_UNREACH):
        return ProbeResult(job, Verdict.ALLOWED, Evidence.ICMP_UNREACHABLE,
                           f"{where}; ICMP unreachable code {code}: the probe reached the host", rtt)
    if code in pk.ICMP_ADMIN_PROHIBITED:
        return ProbeResult(job, Verdict.DENIED, Evidence.ICMP_UNREACHABLE,
                           f"{where}; ICMP unreachable code {code}: administratively prohibited (a reject)", rtt)
    return ProbeResult(job, Verdict.UNKNOWN, Evidence.ICMP_UNREACHABLE,
                       f"{where}; ICMP unreachable code {code}: no route/host on the way", rtt)
