"""IPv6 neighbour discovery (RFC 4861) for the raw prober: what ARP is to IPv4.

A target's MAC is learnt from the send point itself, as the workload's own stack would: a neighbour
solicitation from the workload's MAC and address (a VM's: the guest's, since port security admits nothing
else) to the target's solicited-node multicast group (`ff02::1:ffXX:XXXX`, Ethernet `33:33:ff:XX:XX:XX`), with
the source link-layer address option so the target can answer at once. A neighbour advertisement for that
target, addressed to the send point's address, with hop limit 255 (it was not routed) proves the target alive,
as an ARP reply does. Solicitations are retried by the prober like ARP requests.
"""

from __future__ import annotations

import struct

from .packets import ETH_HLEN, fold, ones_sum
from .packets6 import ETH_P_IPV6, IPPROTO_ICMPV6, IPV6_HLEN, ipv6_header, pseudo_sum6

ND_SOLICIT = 135
ND_ADVERT = 136
ND_HOP_LIMIT = 255  # RFC 4861 §7.1: neighbour discovery messages are never forwarded
OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
ADVERT_SOLICITED = 0x40000000  # the S flag of a neighbour advertisement
_SOLICITED_NODE_PREFIX = bytes.fromhex("ff0200000000000000000001ff")  # ff02::1:ff00:0/104

_H = struct.Struct("!H")


def solicited_node(target: bytes) -> bytes:
    """The solicited-node multicast address of `target`: ff02::1:ff + its low 24 bits (RFC 4291 §2.7.1)."""
    return _SOLICITED_NODE_PREFIX + target[13:16]


def multicast_mac(group: bytes) -> bytes:
    """The Ethernet address of an IPv6 multicast group: 33:33 + its low 32 bits (RFC 2464 §7)."""
    return b"\x33\x33" + group[12:16]


def solicitation(src_mac: bytes, src_ip: bytes, target: bytes) -> bytes:
    """Who has `target`? Tell `src_ip` at `src_mac` (to the target's solicited-node group)."""
    group = solicited_node(target)
    body = struct.pack("!BBHI16s", ND_SOLICIT, 0, 0, 0, target) + struct.pack("!BB6s", OPT_SOURCE_LLADDR, 1, src_mac)
    csum = ~fold(pseudo_sum6(src_ip, group, IPPROTO_ICMPV6, len(body)) + ones_sum(body)) & 0xFFFF
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    return (multicast_mac(group) + src_mac + struct.pack("!H", ETH_P_IPV6)
            + ipv6_header(src_ip, group, IPPROTO_ICMPV6, len(body), ND_HOP_LIMIT) + body)


def advertisement(src_mac: bytes, src_ip: bytes, dst_mac: bytes, dst_ip: bytes, *, solicited: bool = True,
                  hop_limit: int = ND_HOP_LIMIT, tlla: bool = True) -> bytes:
    """A neighbour advertisement of `src_ip` at `src_mac` (what a target answers; tests and fakes use it)."""
    flags = (ADVERT_SOLICITED if solicited else 0) | 0x20000000  # S, and O (override)
    body = struct.pack("!BBHI16s", ND_ADVERT, 0, 0, flags, src_ip)
    if tlla:
        body += struct.pack("!BB6s", OPT_TARGET_LLADDR, 1, src_mac)
    csum = ~fold(pseudo_sum6(src_ip, dst_ip, IPPROTO_ICMPV6, len(body)) + ones_sum(body)) & 0xFFFF
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    return (dst_mac + src_mac + struct.pack("!H", ETH_P_IPV6)
            + ipv6_header(src_ip, dst_ip, IPPROTO_ICMPV6, len(body), hop_limit) + body)


def is_advertisement(frame: bytes | bytearray | memoryview) -> bool:
    """Cheap test on a received frame: IPv6, ICMPv6 (no extension header), type 136."""
    return (len(frame) >= ETH_HLEN + IPV6_HLEN + 24 and frame[12] == 0x86 and frame[13] == 0xDD
            and frame[ETH_HLEN + 6] == IPPROTO_ICMPV6 and frame[ETH_HLEN + IPV6_HLEN] == ND_ADVERT)


def parse_advertisement(frame: bytes | bytearray | memoryview, local_ip: bytes | None = None
                        ) -> tuple[bytes, bytes] | None:
    """(target IP, its MAC) of a valid neighbour advertisement (to `local_ip` when given), else None.

    Valid as RFC 4861 §7.1.2 asks of what matters here: hop limit 255, code 0, a unicast target; the MAC is the
    target link-layer address option, else (a unicast answer may omit it) the frame's Ethernet source."""
    if not is_advertisement(frame):
        return None
    ip, icmp = ETH_HLEN, ETH_HLEN + IPV6_HLEN
    if frame[ip + 7] != ND_HOP_LIMIT or frame[icmp + 1] != 0:
        return None
    if local_ip is not None and bytes(frame[ip + 24:ip + 40]) != local_ip:
        return None
    target = bytes(frame[icmp + 8:icmp + 24])
    if target[0] == 0xFF:
        return None
    end = min(len(frame), icmp + _H.unpack_from(frame, ip + 4)[0])
    mac = bytes(frame[6:12])
    off = icmp + 24
    while off + 2 <= end:
        kind, length = frame[off], frame[off + 1] * 8
        if length == 0 or off + length > end:
            return None  # a zero-length or truncated option invalidates the message (RFC 4861 §4.6)
        if kind == OPT_TARGET_LLADDR and length >= 8:
            mac = bytes(frame[off + 2:off + 8])
        off += length
    return target, mac

