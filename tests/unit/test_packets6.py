"""IPv6 frames and neighbour discovery, checked against scapy; the raw prober over IPv6 on a fake wire (a socket
pair standing for the send point's interface, a peer thread answering as the network would)."""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Callable

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6ParamProblem,
    IPv6,
)
from scapy.layers.l2 import Ether

from segcheck.agent.adapters.probers import ndp
from segcheck.agent.adapters.probers import packets as pk
from segcheck.agent.adapters.probers import packets6 as pk6
from segcheck.agent.adapters.probers import raw
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import Evidence, ProbeJob, ProbeProtocol, SendPoint

SRC_MAC_S, DST_MAC_S = "02:5e:c0:a8:c8:14", "52:54:00:a8:c8:05"
SRC_MAC, DST_MAC = pk.parse_mac(SRC_MAC_S), pk.parse_mac(DST_MAC_S)
SRC_S, DST_S = "fd00:200::20", "fd00:200::5"
SRC_IP, DST_IP = ipaddress.IPv6Address(SRC_S).packed, ipaddress.IPv6Address(DST_S).packed


def _recomputed(frame: bytes, layer: type) -> int:
    """The checksum scapy computes for `layer` of `frame` once ours is removed."""
    pkt = Ether(frame)
    del pkt[layer].cksum
    return int(Ether(bytes(pkt))[layer].cksum)


@pytest.mark.parametrize("sport,seq", [(40000, 0), (59999, 0xFFFFFFFF), (1, 0x12345678), (65535, 0xFFFF0000)])
def test_tcp_syn6_matches_scapy(sport: int, seq: int) -> None:
    frame = pk6.TcpSynTemplate6(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 5432).frame(sport, seq)
    pkt = Ether(frame)
    assert (pkt[Ether].src, pkt[Ether].dst, pkt[Ether].type) == (SRC_MAC_S, DST_MAC_S, 0x86DD)
    assert (pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].hlim, pkt[IPv6].nh, pkt[IPv6].plen) == (SRC_S, DST_S, 64, 6, 24)
    assert (pkt[TCP].sport, pkt[TCP].dport, pkt[TCP].seq, str(pkt[TCP].flags)) == (sport, 5432, seq, "S")
    assert pkt[TCP].options == [("MSS", 1440)]
    pkt2 = Ether(frame)
    del pkt2[TCP].chksum
    assert pkt[TCP].chksum == Ether(bytes(pkt2))[TCP].chksum


@pytest.mark.parametrize("sport", [40000, 1, 65535, 51234])
def test_udp6_matches_scapy(sport: int) -> None:
    frame = pk6.UdpTemplate6(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 53).frame(sport)
    pkt = Ether(frame)
    assert (pkt[UDP].sport, pkt[UDP].dport, bytes(pkt[UDP].payload)) == (sport, 53, pk.UDP_PAYLOAD)
    pkt2 = Ether(frame)
    del pkt2[UDP].chksum
    assert pkt[UDP].chksum == Ether(bytes(pkt2))[UDP].chksum != 0


@pytest.mark.parametrize("ident,seq", [(40000, 1), (1, 0), (65535, 65535)])
def test_icmpv6_echo_matches_scapy(ident: int, seq: int) -> None:
    frame = pk6.IcmpEchoTemplate6(SRC_MAC, DST_MAC, SRC_IP, DST_IP).frame(ident, seq)
    pkt = Ether(frame)
    assert (pkt[ICMPv6EchoRequest].id, pkt[ICMPv6EchoRequest].seq) == (ident, seq)
    assert pkt[ICMPv6EchoRequest].cksum == _recomputed(frame, ICMPv6EchoRequest)


def test_solicitation_matches_scapy() -> None:
    frame = ndp.solicitation(SRC_MAC, SRC_IP, DST_IP)
    pkt = Ether(frame)
    # ff02::1:ff00:5 and its Ethernet group 33:33:ff:00:00:05
    assert (pkt[Ether].dst, pkt[IPv6].dst, pkt[IPv6].src, pkt[IPv6].hlim) == (
        "33:33:ff:00:00:05", "ff02::1:ff00:5", SRC_S, 255)
    assert pkt[ICMPv6ND_NS].tgt == DST_S and pkt[ICMPv6NDOptSrcLLAddr].lladdr == SRC_MAC_S
    assert pkt[ICMPv6ND_NS].cksum == _recomputed(frame, ICMPv6ND_NS)
    ref = Ether(src=SRC_MAC_S, dst="33:33:ff:00:00:05") / IPv6(src=SRC_S, dst="ff02::1:ff00:5", hlim=255) / \
        ICMPv6ND_NS(tgt=DST_S) / ICMPv6NDOptSrcLLAddr(lladdr=SRC_MAC_S)
    assert frame == bytes(ref)


def test_solicited_node_group_takes_the_low_24_bits() -> None:
    target = ipaddress.IPv6Address("2001:db8::abcd:ef12:3456").packed
    assert ipaddress.IPv6Address(ndp.solicited_node(target)) == ipaddress.IPv6Address("ff02::1:ff12:3456")
    assert pk.format_mac(ndp.multicast_mac(ndp.solicited_node(target))) == "33:33:ff:12:34:56"


def _na(tlla: str | None = DST_MAC_S, hlim: int = 255, dst: str = SRC_S, target: str = DST_S, code: int = 0) -> bytes:
    pkt = Ether(src="52:54:00:99:99:99", dst=SRC_MAC_S) / IPv6(src=target, dst=dst, hlim=hlim) / \
        ICMPv6ND_NA(tgt=target, R=0, S=1, O=1, code=code)
    if tlla is not None:
        pkt = pkt / ICMPv6NDOptDstLLAddr(lladdr=tlla)
    return bytes(pkt)


def test_parse_advertisement_from_scapy() -> None:
    assert ndp.parse_advertisement(_na(), SRC_IP) == (DST_IP, DST_MAC)
    # no target link-layer option (allowed for a unicast answer): the Ethernet source speaks
    assert ndp.parse_advertisement(_na(tlla=None), SRC_IP) == (DST_IP, pk.parse_mac("52:54:00:99:99:99"))


def test_parse_advertisement_refuses_what_is_not_a_valid_answer_to_us() -> None:
    assert ndp.parse_advertisement(_na(hlim=64), SRC_IP) is None  # routed: not from the link
    assert ndp.parse_advertisement(_na(code=1), SRC_IP) is None
    assert ndp.parse_advertisement(_na(dst="fd00:200::10"), SRC_IP) is None  # someone else's answer
    assert ndp.parse_advertisement(_na(target="ff02::1"), None) is None  # a multicast target
    assert ndp.parse_advertisement(ndp.solicitation(SRC_MAC, SRC_IP, DST_IP), None) is None
    truncated = bytearray(_na())
    truncated[-7] = 0  # option length 0: the message is invalid
    assert ndp.parse_advertisement(bytes(truncated), SRC_IP) is None
    assert ndp.advertisement(DST_MAC, DST_IP, SRC_MAC, SRC_IP)[12:] == _na()[12:]  # as scapy builds it


def _answer(layers: object) -> bytes:
    return bytes(Ether(src=DST_MAC_S, dst=SRC_MAC_S) / IPv6(src=DST_S, dst=SRC_S) / layers)  # type: ignore[operator]


def test_parse_syn_ack_rst_and_echo_reply() -> None:
    syn_ack = _answer(TCP(sport=5432, dport=40001, flags="SA", seq=7, ack=1001))
    assert pk6.parse_answer6(syn_ack, SRC_IP) == (pk.Kind.SYN_ACK, (pk.IPPROTO_TCP, DST_IP, 5432, 40001), 1001)
    rst = _answer(TCP(sport=22, dport=40002, flags="RA", ack=5))
    assert pk6.parse_answer6(rst, SRC_IP) == (pk.Kind.RST, (pk.IPPROTO_TCP, DST_IP, 22, 40002), 5)
    assert pk6.parse_answer6(rst, DST_IP) is None  # not addressed to us
    echo = _answer(ICMPv6EchoReply(id=40003, seq=1))
    assert pk6.parse_answer6(echo) == (pk.Kind.ECHO_REPLY, (pk.IPPROTO_ICMP, DST_IP, 40003, 1), 0)
    assert pk6.parse_any(echo) == pk6.parse_answer6(echo)
    assert pk6.parse_answer6(_answer(TCP(sport=1, dport=2, flags="S"))) is None


@pytest.mark.parametrize("make,extra", [
    (lambda probe: ICMPv6DestUnreach(code=1) / probe, 1),  # what OVN's reject sends for non-TCP IPv6
    (lambda probe: ICMPv6DestUnreach(code=4) / probe, 4),
    (lambda probe: ICMPv6ParamProblem(code=1, ptr=6) / probe, pk6.PARAM_PROBLEM_NEXT_HEADER),
])
def test_parse_unreachable_quotes_the_probe(make: Callable[[object], object], extra: int) -> None:
    probe = pk6.UdpTemplate6(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 53).frame(41000)[pk.ETH_HLEN:]
    got = pk6.parse_answer6(_answer(make(IPv6(probe))))
    assert got == (pk.Kind.UNREACHABLE, (pk.IPPROTO_UDP, DST_IP, 53, 41000), extra)
    echo = pk6.IcmpEchoTemplate6(SRC_MAC, DST_MAC, SRC_IP, DST_IP).frame(42000, 1)[pk.ETH_HLEN:]
    got = pk6.parse_answer6(_answer(make(IPv6(echo))))
    assert got == (pk.Kind.UNREACHABLE, (pk.IPPROTO_ICMP, DST_IP, 42000, 1), extra)


def test_dispatch_by_family() -> None:
    v4 = bytes([192, 168, 200, 5])
    assert isinstance(pk6.tcp_syn_template(SRC_MAC, DST_MAC, bytes(4), v4, 1), pk.TcpSynTemplate)
    assert isinstance(pk6.tcp_syn_template(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 1), pk6.TcpSynTemplate6)
    assert isinstance(pk6.echo_template(SRC_MAC, DST_MAC, SRC_IP, DST_IP), pk6.IcmpEchoTemplate6)
    assert isinstance(pk6.udp_template(SRC_MAC, DST_MAC, SRC_IP, DST_IP, 1), pk6.UdpTemplate6)


# ----------------------------------------------------------------------------- the prober on a fake wire

class FakeNet(threading.Thread):
    """The far side of the send point's interface: answers as an IPv6 network would.

    Solicitations for DST are answered from the `ignore_solicitations`+1-th on (the first ones are lost);
    a forged advertisement (hop limit 64) is sent first. Echo requests are answered; TCP SYNs to port 5432
    get a SYN-ACK, to port 23 an ICMPv6 administratively prohibited (a reject); everything else is dropped."""

    def __init__(self, sock: socket.socket, ignore_solicitations: int = 1) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.ignore = ignore_solicitations
        self.solicitations: list[bytes] = []
        self.syns: list[tuple[int, int]] = []
        self.stop = threading.Event()

    def reply(self, frame: bytes) -> None:
        self.sock.send(frame)

    def run(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                frame = self.sock.recv(65536)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            pkt = Ether(frame)
            if ICMPv6ND_NS in pkt:
                self.solicitations.append(frame)
                if pkt[ICMPv6ND_NS].tgt != DST_S:
                    continue
                if len(self.solicitations) == 1:
                    self.reply(ndp.advertisement(DST_MAC, DST_IP, SRC_MAC, SRC_IP, hop_limit=64))
                if len(self.solicitations) > self.ignore:
                    self.reply(ndp.advertisement(DST_MAC, DST_IP, SRC_MAC, SRC_IP))
            elif ICMPv6EchoRequest in pkt:
                req = pkt[ICMPv6EchoRequest]
                self.reply(_answer(ICMPv6EchoReply(id=req.id, seq=req.seq, data=req.data)))
            elif TCP in pkt:
                tcp = pkt[TCP]
                self.syns.append((tcp.dport, tcp.sport))
                if tcp.dport == 5432:
                    self.reply(_answer(TCP(sport=5432, dport=tcp.sport, flags="SA", seq=1, ack=tcp.seq + 1)))
                elif tcp.dport == 23:
                    self.reply(_answer(ICMPv6DestUnreach(code=1) / pkt[IPv6]))


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A prober whose send point's socket is one end of a socket pair; the fake network holds the other."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    net = FakeNet(theirs)

    def fake_open(self: raw.RawSocketProber, point: SendPoint) -> raw._Sender:
        sender = raw._Sender(point)
        sender.sock, sender.mac, sender.ip = ours, pk.parse_mac(point.mac or ""), pk6.address_bytes(point.ip)
        return sender

    monkeypatch.setattr(raw.RawSocketProber, "_open", fake_open)
    net.start()
    yield net
    net.stop.set()
    net.join(timeout=2)
    theirs.close()


POINT = SendPoint("fake-ns", "k6t-fake", ipaddress.IPv6Address(SRC_S), SRC_MAC_S)


def test_ndp_retries_and_ignores_forged_advertisements(wire: FakeNet) -> None:
    prober = raw.RawSocketProber(arp_timeout=1.0, reserve_ports=False)
    [result] = prober.run([ProbeJob(POINT, ipaddress.IPv6Address(DST_S), 5432)], timeout=0.3)
    assert (result.verdict, result.evidence) == (Verdict.ALLOWED, Evidence.SYN_ACK), result.detail
    # the first solicitation went unanswered (only a routed, forged advertisement came): it was sent again
    assert len(wire.solicitations) >= 2
    first = Ether(wire.solicitations[0])
    assert (first[Ether].src, first[IPv6].src, first[ICMPv6NDOptSrcLLAddr].lladdr) == (SRC_MAC_S, SRC_S, SRC_MAC_S)


def test_ipv6_verdicts_with_confirmed_silence(wire: FakeNet) -> None:
    dst = ipaddress.IPv6Address(DST_S)
    jobs = [ProbeJob(POINT, dst, 5432), ProbeJob(POINT, dst, 22), ProbeJob(POINT, dst, 23),
            ProbeJob(POINT, dst, None, ProbeProtocol.ICMP),
            ProbeJob(POINT, ipaddress.IPv6Address("fd00:200::99"), 5432),  # nobody answers its solicitation
            ProbeJob(POINT, ipaddress.IPv4Address("192.168.200.5"), 5432)]  # the wrong family for this source
    prober = raw.RawSocketProber(arp_timeout=0.3, reserve_ports=False)
    allowed, silent, rejected, echo, absent, mixed = prober.run(jobs, timeout=0.2)
    assert (allowed.verdict, allowed.evidence) == (Verdict.ALLOWED, Evidence.SYN_ACK)
    # silence is called denied only after re-probes beside canaries that answered
    assert (silent.verdict, silent.evidence) == (Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE), silent.detail
    assert "neighbour discovery answered" in silent.detail
    assert sum(1 for port, _ in wire.syns if port == 22) >= 2
    assert sum(1 for port, _ in wire.syns if port == 5432) >= 2  # the canaries
    assert len({sport for port, sport in wire.syns if port == 22}) == sum(1 for p, _ in wire.syns if p == 22)
    assert (rejected.verdict, rejected.evidence) == (Verdict.DENIED, Evidence.ICMP_UNREACHABLE)
    assert "ICMPv6" in rejected.detail
    assert (echo.verdict, echo.evidence) == (Verdict.ALLOWED, Evidence.ICMP_REPLY)
    assert (absent.verdict, absent.evidence) == (Verdict.UNKNOWN, Evidence.NO_ARP)
    assert "neighbour advertisement" in absent.detail
    assert (mixed.verdict, mixed.evidence) == (Verdict.UNKNOWN, Evidence.ERROR) and "IPv4" in mixed.detail


def test_ipv6_bpf_keeps_only_what_is_addressed_to_us() -> None:
    """The socket filter, run by the kernel on a real packet socket is tested on the lab; here: its shape."""
    prog = raw._bpf_incoming_to(SRC_IP)
    insns = [struct.unpack("HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    assert len(insns) == 14 and insns[-2] == (0x06, 0, 0, 0x40000) and insns[-1] == (0x06, 0, 0, 0)
    for n, (code, jt, jf, k) in enumerate(insns):
        if code == 0x15:  # every conditional jump lands inside the program, misses on the drop
            assert n + 1 + max(jt, jf) <= len(insns) - 1
            assert (jt == 0 and n + 1 + jf == len(insns) - 1) or (jf == 0 and n + 1 + jt == len(insns) - 1)
    assert [k for code, _, _, k in insns if code == 0x15][2:] == list(struct.unpack("!IIII", SRC_IP))
