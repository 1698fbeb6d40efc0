"""Hand-built Ethernet/IPv6 frames (TCP SYN, UDP, ICMPv6 echo) and a parser for their answers.

The IPv6 twins of `packets`' templates: same interfaces (`frame(sport, seq)`, `frame(sport)`,
`frame(ident, seq)`), same precomputed one's-complement sums, with the IPv6 pseudo-header (RFC 8200 §8.1:
source, destination, upper-layer length, next header) in every checksum, ICMPv6's included. Neighbour
discovery (how the MAC of a target is learnt) is in `ndp`.

Answer keys are those of `packets` (`Key`): (probe protocol, remote address bytes, port or id, port or seq),
with `IPPROTO_ICMP` standing for an ICMPv6 echo too: the address length (16 bytes) tells the family, so the
prober matches both families with one dict.
"""

from __future__ import annotations

import ipaddress
import struct

from .packets import (
    ETH_HLEN,
    ICMP_PAYLOAD,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_SYN,
    TCP_WINDOW,
    UDP_PAYLOAD,
    IcmpEchoTemplate,
    Key,
    Kind,
    TcpSynTemplate,
    UdpTemplate,
    ones_sum,
    parse_answer,
    parse_transport,
)

ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
IPV6_HLEN = 40
HOP_LIMIT = 64
ICMP6_UNREACH = 1
ICMP6_PARAM_PROBLEM = 4
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
# Destination unreachable codes (RFC 4443 §3.1). Port unreachable: the host got it. Administratively prohibited
# (what OVN's `reject` sends for non-TCP IPv6, its `icmp6` action's default), source address failed policy,
# reject route: a filter refused it. No route, beyond scope, address unreachable: nobody on the way.
ICMP6_PORT_UNREACH = 4
ICMP6_ADMIN_PROHIBITED = frozenset({1, 5, 6})
# Parameter problem code 1, "unrecognized next header": the IPv6 form of IPv4's protocol unreachable.
ICMP6_UNRECOGNIZED_NEXT_HEADER = 1
# The code an unreachable carries as `extra` when it was a parameter problem (outside ICMPv6's 0-255 codes).
PARAM_PROBLEM_NEXT_HEADER = 0x100 | ICMP6_UNRECOGNIZED_NEXT_HEADER
TCP_MSS6_OPTION = b"\x02\x04\x05\xa0"  # MSS 1440: 1500 - 40 (IPv6) - 20 (TCP)


def ipv6_header(src: bytes, dst: bytes, next_header: int, payload_len: int, hop_limit: int = HOP_LIMIT) -> bytes:
    """Version 6, no traffic class or flow label (IPv6 has no header checksum)."""
    return struct.pack("!IHBB16s16s", 6 << 28, payload_len, next_header, hop_limit, src, dst)


def pseudo_sum6(src: bytes, dst: bytes, next_header: int, length: int) -> int:
    return ones_sum(src + dst + struct.pack("!II", length, next_header))


def _eth(dst_mac: bytes, src_mac: bytes) -> bytes:
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IPV6)


class TcpSynTemplate6(TcpSynTemplate):
    """Ethernet/IPv6/TCP SYN (with MSS option) towards one (destination, port); variable: sport, seq. Only the
    headers differ from IPv4's (`frame` is the same)."""

    _option = TCP_MSS6_OPTION

    def __init__(self, src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, dport: int) -> None:
        tcp_len = 20 + len(self._option)
        self.dport = dport
        self._head = _eth(dst_mac, src_mac) + ipv6_header(src_ip, dst_ip, IPPROTO_TCP, tcp_len)
        constant = struct.pack("!HHIIHHHH", 0, dport, 0, 0, (tcp_len // 4) << 12 | TCP_SYN, TCP_WINDOW, 0, 0)
        self._base = pseudo_sum6(src_ip, dst_ip, IPPROTO_TCP, tcp_len) + ones_sum(constant + self._option)


class UdpTemplate6(UdpTemplate):
    """Ethernet/IPv6/UDP with a small fixed payload; variable: sport. The checksum is mandatory in IPv6 (IPv4's
    `frame` always writes one)."""

    def __init__(self, src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, dport: int,
                 payload: bytes = UDP_PAYLOAD) -> None:
        self.dport = dport
        self._len = 8 + len(payload)
        self._payload = payload
        self._head = _eth(dst_mac, src_mac) + ipv6_header(src_ip, dst_ip, IPPROTO_UDP, self._len)
        self._base = pseudo_sum6(src_ip, dst_ip, IPPROTO_UDP, self._len) + dport + self._len + ones_sum(payload)


class IcmpEchoTemplate6(IcmpEchoTemplate):
    """Ethernet/IPv6/ICMPv6 echo request; variable: id, seq (the pseudo-header is in ICMPv6's checksum)."""

    _type = ICMP6_ECHO_REQUEST

    def __init__(self, src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
                 payload: bytes = ICMP_PAYLOAD) -> None:
        self._payload = payload
        length = 8 + len(payload)
        self._head = _eth(dst_mac, src_mac) + ipv6_header(src_ip, dst_ip, IPPROTO_ICMPV6, length)
        self._base = pseudo_sum6(src_ip, dst_ip, IPPROTO_ICMPV6, length) + (ICMP6_ECHO_REQUEST << 8) + ones_sum(payload)


_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_IP6 = ETH_HLEN


def parse_answer6(frame: bytes | bytearray | memoryview, local_ip: bytes | None = None
                  ) -> tuple[Kind, Key, int] | None:
    """`packets.parse_answer` for IPv6 frames (no extension headers: nothing on the probed path adds them).

    UNREACHABLE's extra is the ICMPv6 destination-unreachable code, or `PARAM_PROBLEM_NEXT_HEADER` for a
    parameter problem saying our next header is unknown there (IPv6's protocol unreachable)."""
    if len(frame) < ETH_HLEN + IPV6_HLEN or _H.unpack_from(frame, 12)[0] != ETH_P_IPV6 or frame[_IP6] >> 4 != 6:
        return None
    if local_ip is not None and bytes(frame[_IP6 + 24:_IP6 + 40]) != local_ip:
        return None
    proto = frame[_IP6 + 6]
    src = bytes(frame[_IP6 + 8:_IP6 + 24])
    l4 = _IP6 + IPV6_HLEN
    if proto == IPPROTO_TCP or proto == IPPROTO_UDP:
        return parse_transport(frame, proto, src, l4)
    if proto != IPPROTO_ICMPV6 or len(frame) < l4 + 8:
        return None
    icmp_type, code = frame[l4], frame[l4 + 1]
    if icmp_type == ICMP6_ECHO_REPLY:
        ident, seq = _HH.unpack_from(frame, l4 + 4)
        return Kind.ECHO_REPLY, (IPPROTO_ICMP, src, ident, seq), 0
    if icmp_type == ICMP6_UNREACH:
        extra = code
    elif icmp_type == ICMP6_PARAM_PROBLEM and code == ICMP6_UNRECOGNIZED_NEXT_HEADER:
        extra = PARAM_PROBLEM_NEXT_HEADER
    else:
        return None
    inner = l4 + 8  # the quoted IPv6 header of our probe
    quoted = inner + IPV6_HLEN
    if len(frame) < quoted + 8 or frame[inner] >> 4 != 6:
        return None
    inner_proto = frame[inner + 6]
    inner_dst = bytes(frame[inner + 24:inner + 40])
    if inner_proto in (IPPROTO_TCP, IPPROTO_UDP):
        qsport, qdport = _HH.unpack_from(frame, quoted)
        return Kind.UNREACHABLE, (inner_proto, inner_dst, qdport, qsport), extra
    if inner_proto == IPPROTO_ICMPV6 and frame[quoted] == ICMP6_ECHO_REQUEST:
        ident, seq = _HH.unpack_from(frame, quoted + 4)
        return Kind.UNREACHABLE, (IPPROTO_ICMP, inner_dst, ident, seq), extra
    return None


# -- one entry per frame kind for both families (the address length chooses) --------------------------------

TcpSyn = TcpSynTemplate | TcpSynTemplate6
Udp = UdpTemplate | UdpTemplate6
IcmpEcho = IcmpEchoTemplate | IcmpEchoTemplate6


def address_bytes(address: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> bytes:
    """4 or 16 bytes of an IPv4 or IPv6 address (ValueError otherwise)."""
    return ipaddress.ip_address(address).packed


def tcp_syn_template(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, dport: int) -> TcpSyn:
    cls = TcpSynTemplate6 if len(dst_ip) == 16 else TcpSynTemplate
    return cls(src_mac, dst_mac, src_ip, dst_ip, dport)


def udp_template(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, dport: int) -> Udp:
    cls = UdpTemplate6 if len(dst_ip) == 16 else UdpTemplate
    return cls(src_mac, dst_mac, src_ip, dst_ip, dport)


def echo_template(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes) -> IcmpEcho:
    cls = IcmpEchoTemplate6 if len(dst_ip) == 16 else IcmpEchoTemplate
    return cls(src_mac, dst_mac, src_ip, dst_ip)


def parse_any(frame: bytes | bytearray | memoryview, local_ip: bytes | None = None) -> tuple[Kind, Key, int] | None:
    """`parse_answer` or `parse_answer6`, by the frame's ethertype."""
    if len(frame) >= ETH_HLEN and frame[12] == 0x86 and frame[13] == 0xDD:
        return parse_answer6(frame, local_ip)
    return parse_answer(frame, local_ip)
