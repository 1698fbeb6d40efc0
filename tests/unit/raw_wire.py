"""A simulated wire for the raw prober: its packet sockets replaced by fakes that answer in-process.

Each send point gets a `WireSocket`: `send` parses the frame the prober built and, at once, queues the answer a
real peer would give (ARP reply, echo reply, SYN-ACK for an allowed port, nothing for a denied one), unless the
wire's seeded RNG loses it. A pipe makes the socket readable for the prober's epoll while answers are queued, so
the real poll loop runs; nothing sleeps and no thread runs. Which answers are lost depends only on the seed and the
order of frames, so verdicts are deterministic.
"""

from __future__ import annotations

import ipaddress
import os
import random
import struct
from collections import deque
from collections.abc import Callable

from segcheck.agent.adapters.probers import packets as pk
from segcheck.agent.adapters.probers.ports import SourcePortAllocator
from segcheck.agent.adapters.probers.raw import RawSocketProber, _Sender
from segcheck.agent.core.probe import ProbeJob, ProbeProtocol, SendPoint

PEER_MAC = bytes.fromhex("0a5800000005")


class Wire:
    """What the network does: `allowed(port)` says which TCP ports answer; `loss()` the share of answers lost."""

    def __init__(self, allowed: Callable[[int], bool], loss: float = 0.0, seed: int = 1) -> None:
        self.allowed = allowed
        self.loss = loss
        self.rng = random.Random(seed)
        self.sent = 0
        self.answered = 0
        self.lost = 0
        self.drops_per_read = 0  # frames each PACKET_STATISTICS read of a socket reports dropped


class WireSocket:
    def __init__(self, wire: Wire, mac: bytes, ip: bytes) -> None:
        self.wire, self.mac, self.ip = wire, mac, ip
        self._queue: deque[bytes] = deque()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)

    def fileno(self) -> int:
        return self._r

    def setblocking(self, flag: bool) -> None:
        return None

    def getsockopt(self, level: int, option: int, size: int = 0) -> bytes:
        return struct.pack("II", 0, self.wire.drops_per_read)

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)

    def recv_into(self, buf: bytearray, nbytes: int = 0, flags: int = 0) -> int:
        if not self._queue:
            try:
                os.read(self._r, 65536)
            except BlockingIOError:
                pass
            raise BlockingIOError
        frame = self._queue.popleft()
        buf[:len(frame)] = frame
        return len(frame)

    def _answer(self, frame: bytes) -> None:
        self._queue.append(frame)
        os.write(self._w, b"x")

    def send(self, frame: bytes) -> int:
        wire = self.wire
        wire.sent += 1
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == pk.ETH_P_ARP:
            target = frame[14 + 24:14 + 28]
            self._answer(self.mac + PEER_MAC + struct.pack("!H", pk.ETH_P_ARP)
                         + struct.pack("!HHBBH", 1, pk.ETH_P_IP, 6, 4, 2) + PEER_MAC + target + self.mac + self.ip)
            return len(frame)
        proto, src, dst = frame[14 + 9], frame[14 + 12:14 + 16], frame[14 + 16:14 + 20]
        l4 = 14 + (frame[14] & 0x0F) * 4
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 40, 0, 0, 64, proto, 0) + dst + src
        if proto == pk.IPPROTO_ICMP:
            ident, seq = struct.unpack_from("!HH", frame, l4 + 4)
            self._answer(self.mac + PEER_MAC + struct.pack("!H", pk.ETH_P_IP) + ip
                         + struct.pack("!BBHHH", pk.ICMP_ECHO_REPLY, 0, 0, ident, seq))
            return len(frame)
        sport, dport, seq = struct.unpack_from("!HHI", frame, l4)
        if not wire.allowed(dport):
            return len(frame)  # dropped by policy: silence
        if wire.rng.random() < wire.loss:
            wire.lost += 1
            return len(frame)
        wire.answered += 1
        self._answer(self.mac + PEER_MAC + struct.pack("!H", pk.ETH_P_IP) + ip
                     + struct.pack("!HHIIHHHH", dport, sport, 12345, (seq + 1) & 0xFFFFFFFF, 0x5000
                                   | pk.TCP_SYN | pk.TCP_ACK, 65535, 0, 0))
        return len(frame)


class WiredProber(RawSocketProber):
    """The real RawSocketProber, its sockets on a `Wire`."""

    def __init__(self, wire: Wire, **kwargs: object) -> None:
        super().__init__(reserve_ports=False, arp_timeout=0.2, warmup_wait=0.0,
                         allocator=SourcePortAllocator(40000, 59999, 120.0), **kwargs)  # type: ignore[arg-type]
        self.wire = wire
        self.sockets: list[WireSocket] = []

    def _open(self, point: SendPoint) -> _Sender:
        sender = _Sender(point)
        sender.mac = pk.parse_mac(point.mac) if point.mac else bytes.fromhex("0a5800000001")
        sender.ip = pk.ipv4_bytes(point.ip)
        sock = WireSocket(self.wire, sender.mac, sender.ip)
        self.sockets.append(sock)
        sender.sock = sock  # type: ignore[assignment]
        return sender


POINTS = [SendPoint("wire-a", "net1", ipaddress.IPv4Address("192.168.200.10"), None),
          SendPoint("wire-b", "net1", ipaddress.IPv4Address("192.168.200.11"), "0a:58:00:00:00:0b")]
TARGET = ipaddress.IPv4Address("192.168.200.5")
ALLOWED_PORT = 5432


def half_and_half(count: int) -> list[ProbeJob]:
    """`count` TCP jobs, alternating an allowed port and denied ones, over two send points."""
    return [ProbeJob(POINTS[(n // 2) % 2], TARGET, ALLOWED_PORT if n % 2 == 0 else 20000 + n % 1000,
                     ProbeProtocol.TCP) for n in range(count)]


def only_5432(port: int) -> bool:
    return port == ALLOWED_PORT
