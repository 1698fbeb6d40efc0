"""Hand-built Ethernet/IPv4 frames (ARP, TCP SYN, UDP, ICMP echo) and a parser for their answers.

Probes are sent tens of thousands per second from Python, so each frame kind is a template: every constant
byte and the one's-complement sum of every constant checksum word are computed once; a probe then only packs
its variable fields (source port, sequence number, ICMP id/seq) and folds them into the stored sum.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
import sys
from array import array

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17

ETH_HLEN = 14
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10
ICMP_ECHO_REPLY = 0
ICMP_UNREACH = 3
ICMP_ECHO_REQUEST = 8
ICMP_PORT_UNREACH = 3
ICMP_PROTO_UNREACH = 2
# Codes meaning "a filter refused it": net/host/communication administratively prohibited.
ICMP_ADMIN_PROHIBITED = frozenset({9, 10, 13})

BROADCAST = b"\xff" * 6
UDP_PAYLOAD = b"segcheck-probe\n"
ICMP_PAYLOAD = b"segcheck-probe-icmp\n"
TCP_WINDOW = 64240
TCP_MSS_OPTION = b"\x02\x04\x05\xb4"  # MSS 1460: a SYN without options looks odd to some middleboxes


def parse_mac(text: str) -> bytes:
    """`aa:bb:cc:dd:ee:ff` (or `-` separated) as 6 bytes; ValueError otherwise."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"bad MAC address {text!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"bad MAC address {text!r}") from None


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def ipv4_bytes(address: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> bytes:
    ip = ipaddress.ip_address(address)
    if ip.version != 4:
        raise ValueError(f"{ip} is not IPv4 (only IPv4 is probed)")
    return ip.packed


def ones_sum(data: bytes) -> int:
    """Unfolded one's-complement sum of the big-endian 16-bit words of `data` (odd length padded)."""
    if len(data) % 2:
        data = data + b"\0"
    words = array("H", data)
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words)


def fold(total: int) -> int:
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    return ~fold(ones_sum(data)) & 0xFFFF


def _ipv4_header(src: bytes, dst: bytes, proto: int, payload_len: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0x4000, 64, proto, 0, src, dst)
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:]


def _pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    return ones_sum(src + dst + struct.pack("!BBH", 0, proto, length))


def arp_request(src_mac: bytes, src_ip: bytes, target_ip: bytes) -> bytes:
    """Who-has `target_ip`, tell `src_ip` (broadcast)."""
    return (
        BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
        + struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + src_mac + src_ip + b"\0" * 6 + target_ip
    )


class TcpSynTemplate:
    """Ethernet/IPv4/TCP SYN (with MSS option) towards one (destination, port); variable: sport, seq."""

    _tcp = struct.Struct("!HHIIHHHH")
    _option = TCP_MSS_OPTION

    def __init__(self, src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, dport: int) -> None:
        tcp_len = 20 + len(TCP_MSS_OPTION)
        self.dport = dport
        self._head = dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + _ipv4_header(src_ip, dst_ip, IPPROTO_TCP, tcp_len)
        constant = struct.pack("!HHIIHHHH", 0, dport, 0, 0, (tcp_len // 4) << 12 | TCP_SYN, TCP_WINDOW, 0, 0)
        self._base = _pseudo_sum(src_ip, dst_ip, IPPROTO_TCP, tcp_len) + ones_sum(constant + TCP_MSS_OPTION)

    def frame(self, sport: int, seq: int) -> bytes:
        csum = ~fold(self._base + sport + (seq >> 16) + (seq & 0xFFFF)) & 0xFFFF
        return self._head + self._tcp.pack(sport, self.dport, seq, 0, 0x6000 | TCP_SYN, TCP_WINDOW, csum, 0) + self._option


class UdpTemplate:
    """Ethernet/IPv4/UDP with a small fixed payload towards one (destination, port); variable: sport."""

    _udp = struct.Struct("!HHHH")

    def __init__(self, src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, dport: int,
                 payload: bytes = UDP_PAYLOAD) -> None:
        self.dport = dport
        self._len = 8 + len(payload)
        self._payload = payload
        self._head = dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + _ipv4_header(src_ip, dst_ip, IPPROTO_UDP, self._len)
        self._base = _pseudo_sum(src_ip, dst_ip, IPPROTO_UDP, self._len) + dport + self._len + ones_sum(payload)

    def frame(self, sport: int) -> bytes:
        csum = ~fold(self._base + sport) & 0xFFFF
        return self._head + self._udp.pack(sport, self.dport, self._len, csum or 0xFFFF) + self._payload


class IcmpEchoTemplate:
    """Ethernet/IPv4/ICMP echo request towards one destination; variable: id, seq."""

    _icmp = struct.Struct("!BBHHH")
    _type = ICMP_ECHO_REQUEST

    def __init__(self, src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
                 payload: bytes = ICMP_PAYLOAD) -> None:
        self._payload = payload
        self._head = dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + _ipv4_header(src_ip, dst_ip, IPPROTO_ICMP, 8 + len(payload))
        self._base = (ICMP_ECHO_REQUEST << 8) + ones_sum(payload)

    def frame(self, ident: int, seq: int) -> bytes:
        csum = ~fold(self._base + ident + seq) & 0xFFFF
        return self._head + self._icmp.pack(self._type, 0, csum, ident, seq) + self._payload


class Kind(enum.Enum):
    """What an answer is; the prober maps it (and the job's protocol) to a verdict."""

    SYN_ACK = "syn-ack"
    RST = "rst"
    UDP = "udp"
    ECHO_REPLY = "echo-reply"
    UNREACHABLE = "unreachable"


# A probe's key: (protocol, remote IPv4 bytes, remote port or ICMP id, local port or ICMP seq). An answer is
# parsed into the key of the probe it answers, so matching is one dict lookup.
Key = tuple[int, bytes, int, int]

_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_TCP_ACK_FLAGS = struct.Struct("!HHIIBB")


def probe_key(proto: int, dst_ip: bytes, port_or_id: int, sport_or_seq: int) -> Key:
    return (proto, dst_ip, port_or_id, sport_or_seq)


def parse_answer(frame: bytes | bytearray | memoryview, local_ip: bytes | None = None
                 ) -> tuple[Kind, Key, int] | None:
    """Classify a received frame.

    Returns (kind, key, extra) or None when the frame is not an answer we understand (ARP: `parse_arp_reply`):
    - SYN_ACK / RST: key of the SYN answered, extra = acknowledgement number.
    - UDP / ECHO_REPLY: key of the probe answered, extra = 0.
    - UNREACHABLE: key of the probe quoted in the ICMP error, extra = ICMP code.
    Frames not addressed to `local_ip` (when given) are ignored.
    """
    if len(frame) < ETH_HLEN + 20 or _H.unpack_from(frame, 12)[0] != ETH_P_IP:
        return None
    ip_off = ETH_HLEN
    ihl = (frame[ip_off] & 0x0F) * 4
    if frame[ip_off] >> 4 != 4 or ihl < 20:
        return None
    if local_ip is not None and bytes(frame[ip_off + 16:ip_off + 20]) != local_ip:
        return None
    proto = frame[ip_off + 9]
    src = bytes(frame[ip_off + 12:ip_off + 16])
    l4 = ip_off + ihl
    if proto == IPPROTO_TCP or proto == IPPROTO_UDP:
        return parse_transport(frame, proto, src, l4)
    if proto == IPPROTO_ICMP:
        if len(frame) < l4 + 8:
            return None
        icmp_type, code = frame[l4], frame[l4 + 1]
        if icmp_type == ICMP_ECHO_REPLY:
            ident, seq = _HH.unpack_from(frame, l4 + 4)
            return Kind.ECHO_REPLY, (IPPROTO_ICMP, src, ident, seq), 0
        if icmp_type == ICMP_UNREACH:
            inner = l4 + 8  # the quoted IP header of our probe
            if len(frame) < inner + 20:
                return None
            inner_ihl = (frame[inner] & 0x0F) * 4
            inner_proto = frame[inner + 9]
            inner_dst = bytes(frame[inner + 16:inner + 20])
            quoted = inner + inner_ihl
            if len(frame) < quoted + 8:
                return None
            if inner_proto in (IPPROTO_TCP, IPPROTO_UDP):
                qsport, qdport = _HH.unpack_from(frame, quoted)
                return Kind.UNREACHABLE, (inner_proto, inner_dst, qdport, qsport), code
            if inner_proto == IPPROTO_ICMP:
                ident, seq = _HH.unpack_from(frame, quoted + 4)
                return Kind.UNREACHABLE, (IPPROTO_ICMP, inner_dst, ident, seq), code
    return None


def parse_transport(frame: bytes | bytearray | memoryview, proto: int, src: bytes, l4: int
                    ) -> tuple[Kind, Key, int] | None:
    """A TCP (SYN-ACK / RST) or UDP answer whose transport header starts at `l4`, from `src` (either family)."""
    if proto == IPPROTO_TCP:
        if len(frame) < l4 + 14:
            return None
        sport, dport, _seq, ack, _off, flags = _TCP_ACK_FLAGS.unpack_from(frame, l4)
        if flags & TCP_RST:
            return Kind.RST, (IPPROTO_TCP, src, sport, dport), ack
        if flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
            return Kind.SYN_ACK, (IPPROTO_TCP, src, sport, dport), ack
        return None
    if len(frame) < l4 + 8:
        return None
    sport, dport = _HH.unpack_from(frame, l4)
    return Kind.UDP, (IPPROTO_UDP, src, sport, dport), 0


def parse_arp_reply(frame: bytes | bytearray | memoryview, local_ip: bytes | None = None
                    ) -> tuple[bytes, bytes] | None:
    """(sender IP, sender MAC) of an ARP reply (to `local_ip` when given), else None."""
    if len(frame) < ETH_HLEN + 28 or _H.unpack_from(frame, 12)[0] != ETH_P_ARP:
        return None
    a = ETH_HLEN
    if _H.unpack_from(frame, a + 6)[0] != 2:  # op: reply
        return None
    if local_ip is not None and bytes(frame[a + 24:a + 28]) != local_ip:
        return None
    return bytes(frame[a + 14:a + 18]), bytes(frame[a + 8:a + 14])
