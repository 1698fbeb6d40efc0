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
from . import packets6 as pk6


IPV4_ONLY = (4,)
BOTH_FAMILIES = (4, 6)  # the raw prober: ARP for IPv4, neighbour discovery for IPv6


def _family_problem(what: str, ip: object, families: tuple[int, ...]) -> str:
    if not isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) or ip.version not in families:
        return f"{what} {ip} is not IPv4 (only IPv4 is probed)" if families == IPV4_ONLY else \
            f"{what} {ip} is not an IP address of family {'/'.join(f'IPv{f}' for f in families)}"
    return ""


def validate_source(point: SendPoint, families: tuple[int, ...] = IPV4_ONLY) -> str:
    problem = _family_problem("source", point.ip, families)
    if problem:
        return problem
    if point.mac is not None:
        try:
            pk.parse_mac(point.mac)
        except ValueError as exc:
            return str(exc)
    return ""


def validate_job(job: ProbeJob, families: tuple[int, ...] = IPV4_ONLY) -> str:
    problem = _family_problem("destination", job.dst_ip, families)
    if problem:
        return problem
    if job.dst_ip.version != job.source.ip.version:
        return (f"destination {job.dst_ip} is IPv{job.dst_ip.version} but the source {job.source.ip} is "
                f"IPv{job.source.ip.version}")
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
    if job.dst_ip.version == 6:
        return _unreachable6(job, code, where, rtt)
    if code in (pk.ICMP_PORT_UNREACH, pk.ICMP_PROTO_UNREACH):
        return ProbeResult(job, Verdict.ALLOWED, Evidence.ICMP_UNREACHABLE,
                           f"{where}; ICMP unreachable code {code}: the probe reached the host", rtt)
    if code in pk.ICMP_ADMIN_PROHIBITED:
        return ProbeResult(job, Verdict.DENIED, Evidence.ICMP_UNREACHABLE,
                           f"{where}; ICMP unreachable code {code}: administratively prohibited (a reject)", rtt)
    return ProbeResult(job, Verdict.UNKNOWN, Evidence.ICMP_UNREACHABLE,
                       f"{where}; ICMP unreachable code {code}: no route/host on the way", rtt)


def _unreachable6(job: ProbeJob, code: int, where: str, rtt: float) -> ProbeResult:
    """ICMPv6 destination unreachable (or parameter problem: unknown next header) quoting our probe."""
    if code == pk6.PARAM_PROBLEM_NEXT_HEADER:
        return ProbeResult(job, Verdict.ALLOWED, Evidence.ICMP_UNREACHABLE,
                           f"{where}; ICMPv6 parameter problem (next header unknown): the probe reached the host", rtt)
    if code == pk6.ICMP6_PORT_UNREACH:
        return ProbeResult(job, Verdict.ALLOWED, Evidence.ICMP_UNREACHABLE,
                           f"{where}; ICMPv6 unreachable code {code}: the probe reached the host", rtt)
    if code in pk6.ICMP6_ADMIN_PROHIBITED:
        return ProbeResult(job, Verdict.DENIED, Evidence.ICMP_UNREACHABLE,
                           f"{where}; ICMPv6 unreachable code {code}: administratively prohibited (a reject)", rtt)
    return ProbeResult(job, Verdict.UNKNOWN, Evidence.ICMP_UNREACHABLE,
                       f"{where}; ICMPv6 unreachable code {code}: no route/address on the way", rtt)
