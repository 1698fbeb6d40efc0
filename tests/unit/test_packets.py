"""Frame templates and answer parsing, checked against scapy; the source-port allocator and its guard."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from segcheck.agent.adapters.probers import packets as pk
from segcheck.agent.adapters.probers.ports import (
    PortExhausted,
    SourcePortAllocator,
    covers,
    parse_port_list,
    with_range,
)

SRC_MAC, DST_MAC = pk.parse_mac("02:00:00:00:00:0a"), pk.parse_mac("02:00:00:00:00:14")
SRC_IP, DST_IP = bytes([192, 168, 200, 10]), bytes([192, 168, 200, 20])


def _rebuilt(frame: bytes) -> Ether:
    """The frame parsed by scapy, with every checksum removed so scapy recomputes it."""
    pkt = Ether(frame)
    del pkt[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if layer in pkt:
            del pkt[layer].chksum
    return Ether(bytes(pkt))


def test_rfc1071_example() -> None:
    assert pk.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_odd_length_checksum_pads_with_zero() -> None:
    assert pk.checksum(b"\x01") == pk.checksum(b"\x01\x00")


@pytest.mark.parametrize("sport,seq", [(40000, 0), (59999, 0xFFFFFFFF), (1, 0x12345678), (65535, 0xFFFF0000)])
def test_tcp_syn_matches_scapy(sport: int, seq: int) -> None:
    frame = pk.TcpSynTemplate(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 5432).frame(sport, seq)
    pkt = Ether(frame)
    assert pkt[Ether].src == "02:00:00:00:00:0a" and pkt[Ether].dst == "02:00:00:00:00:14"
    assert (pkt[IP].src, pkt[IP].dst, pkt[IP].ttl, int(pkt[IP].flags)) == ("192.168.200.10", "192.168.200.20", 64, 2)
    assert (pkt[TCP].sport, pkt[TCP].dport, pkt[TCP].seq, str(pkt[TCP].flags)) == (sport, 5432, seq, "S")
    assert pkt[TCP].options == [("MSS", 1460)]
    ref = _rebuilt(frame)
    assert pkt[IP].chksum == ref[IP].chksum
    assert pkt[TCP].chksum == ref[TCP].chksum


@pytest.mark.parametrize("sport", [40000, 1, 65535, 51234])
def test_udp_matches_scapy(sport: int) -> None:
    frame = pk.UdpTemplate(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 53).frame(sport)
    pkt, ref = Ether(frame), _rebuilt(frame)
    assert (pkt[UDP].sport, pkt[UDP].dport, bytes(pkt[UDP].payload)) == (sport, 53, pk.UDP_PAYLOAD)
    assert pkt[UDP].len == 8 + len(pk.UDP_PAYLOAD)
    assert pkt[UDP].chksum == ref[UDP].chksum and pkt[IP].chksum == ref[IP].chksum


@pytest.mark.parametrize("ident,seq", [(40000, 1), (0, 0), (65535, 65535)])
def test_icmp_echo_matches_scapy(ident: int, seq: int) -> None:
    frame = pk.IcmpEchoTemplate(SRC_MAC, DST_MAC, SRC_IP, DST_IP).frame(ident, seq)
    pkt, ref = Ether(frame), _rebuilt(frame)
    assert (pkt[ICMP].type, pkt[ICMP].id, pkt[ICMP].seq) == (8, ident, seq)
    assert pkt[ICMP].chksum == ref[ICMP].chksum and pkt[IP].chksum == ref[IP].chksum


def test_arp_request_matches_scapy() -> None:
    pkt = Ether(pk.arp_request(SRC_MAC, SRC_IP, DST_IP))
    assert pkt[Ether].dst == "ff:ff:ff:ff:ff:ff"
    assert (pkt[ARP].op, pkt[ARP].hwsrc, pkt[ARP].psrc, pkt[ARP].pdst) == (
        1, "02:00:00:00:00:0a", "192.168.200.10", "192.168.200.20")


def test_parse_mac_rejects_garbage() -> None:
    for bad in ("", "zz:00:00:00:00:00", "02:00:00:00:00", "0200.0000.0001", "02:00:00:00:00:001"):
        with pytest.raises(ValueError):
            pk.parse_mac(bad)
    assert pk.format_mac(pk.parse_mac("AA-BB-CC-DD-EE-FF")) == "aa:bb:cc:dd:ee:ff"


# -- answers -----------------------------------------------------------------------------------------------

def _reply(l4) -> bytes:  # type: ignore[no-untyped-def]
    return bytes(Ether(src="02:00:00:00:00:14", dst="02:00:00:00:00:0a") / IP(src="192.168.200.20", dst="192.168.200.10") / l4)


def test_parse_syn_ack_and_rst() -> None:
    kind, key, ack = pk.parse_answer(_reply(TCP(sport=5432, dport=40001, flags="SA", ack=101)), SRC_IP)  # type: ignore[misc]
    assert (kind, key, ack) == (pk.Kind.SYN_ACK, (6, DST_IP, 5432, 40001), 101)
    kind, key, ack = pk.parse_answer(_reply(TCP(sport=5432, dport=40001, flags="RA", ack=101)))  # type: ignore[misc]
    assert (kind, key, ack) == (pk.Kind.RST, (6, DST_IP, 5432, 40001), 101)
    assert pk.parse_answer(_reply(TCP(sport=5432, dport=40001, flags="A"))) is None


def test_parse_ignores_frames_for_someone_else() -> None:
    assert pk.parse_answer(_reply(TCP(flags="SA")), bytes([192, 168, 200, 99])) is None
    assert pk.parse_answer(b"\x00" * 10) is None
    assert pk.parse_answer(bytes(Ether() / ARP())) is None


def test_parse_udp_and_echo_reply() -> None:
    assert pk.parse_answer(_reply(UDP(sport=53, dport=40002) / b"x")) == (pk.Kind.UDP, (17, DST_IP, 53, 40002), 0)
    assert pk.parse_answer(_reply(ICMP(type=0, id=40003, seq=1))) == (pk.Kind.ECHO_REPLY, (1, DST_IP, 40003, 1), 0)
    assert pk.parse_answer(_reply(ICMP(type=8, id=1, seq=1))) is None  # a request is not an answer


def test_parse_unreachable_quotes_the_probe() -> None:
    probe = pk.UdpTemplate(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 5355).frame(40004)
    quoted = bytes(Ether(probe)[IP])[:28]
    parsed = pk.parse_answer(_reply(ICMP(type=3, code=3) / quoted))
    assert parsed == (pk.Kind.UNREACHABLE, (17, DST_IP, 5355, 40004), 3)
    echo = pk.IcmpEchoTemplate(SRC_MAC, DST_MAC, SRC_IP, DST_IP).frame(40005, 1)
    parsed = pk.parse_answer(_reply(ICMP(type=3, code=13) / bytes(Ether(echo)[IP])[:28]))
    assert parsed == (pk.Kind.UNREACHABLE, (1, DST_IP, 40005, 1), 13)


def test_probe_key_matches_answer_key() -> None:
    """A probe's key (proto, dst, dport, sport) is what parsing its answer yields."""
    _kind, key, _ = pk.parse_answer(_reply(TCP(sport=80, dport=41000, flags="SA")))  # type: ignore[misc]
    assert key == pk.probe_key(6, DST_IP, 80, 41000)


def test_parse_arp_reply() -> None:
    frame = bytes(Ether(dst="02:00:00:00:00:0a") / ARP(op=2, hwsrc="02:00:00:00:00:14", psrc="192.168.200.20",
                                                       hwdst="02:00:00:00:00:0a", pdst="192.168.200.10"))
    assert pk.parse_arp_reply(frame, SRC_IP) == (DST_IP, DST_MAC)
    assert pk.parse_arp_reply(frame, bytes(4)) is None
    assert pk.parse_arp_reply(bytes(Ether() / ARP(op=1)), None) is None


# -- ports -------------------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reserved_port_list_parsing_and_merging() -> None:
    assert parse_port_list("") == []
    assert parse_port_list("8080,40000-59999\n") == [(8080, 8080), (40000, 59999)]
    assert covers([(40000, 49999), (50000, 59999)], 40000, 59999)
    assert not covers([(40000, 49999)], 40000, 59999)
    assert with_range("40000-59999", 40000, 59999) is None
    assert with_range("", 40000, 59999) == "40000-59999"
    assert with_range("8080", 40000, 59999) == "8080,40000-59999"
    with pytest.raises(ValueError):
        parse_port_list("0-5")


def test_allocator_rotates_and_stays_in_range() -> None:
    alloc = SourcePortAllocator(40000, 40009, guard_seconds=120, clock=FakeClock())
    ports = [alloc.allocate(("a", "b", 80, 6)) for _ in range(10)]
    assert sorted(ports) == list(range(40000, 40010))  # every port once before any reuse


def test_allocator_refuses_reuse_within_guard() -> None:
    clock = FakeClock()
    alloc = SourcePortAllocator(40000, 40002, guard_seconds=120, clock=clock)
    key = ("10.0.0.1", "10.0.0.2", 80, 6)
    first = []
    for _ in range(3):
        first.append(alloc.allocate(key))
        clock.now += 10
    clock.now = 1000 + 119
    with pytest.raises(PortExhausted, match="5-tuple guard"):
        alloc.allocate(key)
    assert alloc.allocate(("10.0.0.1", "10.0.0.2", 81, 6)) in range(40000, 40003)  # other tuple: fine
    clock.now = 1000 + 120.5  # the oldest use is now past the guard, the others are not
    assert alloc.allocate(key) == first[0]
    with pytest.raises(PortExhausted):
        alloc.allocate(key)
    assert alloc.in_use(key) == 3


def test_allocator_forgets_old_keys() -> None:
    clock = FakeClock()
    alloc = SourcePortAllocator(40000, 40000 + 9, guard_seconds=1, clock=clock)
    for n in range(50000):
        alloc.allocate(("k", n))
        if n == 100:
            clock.now += 5
    assert len(alloc._keys) < 50000  # pruned on the 50000th allocation
