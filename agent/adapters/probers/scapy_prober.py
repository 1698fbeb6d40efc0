"""The second prober: scapy's `sr`/`sr1` on an L2 socket opened inside the send point's namespace.

Same protocol and verdict mapping as the raw prober (ARP first as the liveness control, for IPv6 neighbour
discovery, one warm-up echo per target, guarded source ports), but orders of magnitude slower: it exists to cross-check the raw prober.
Everything for one send point runs on one namespace thread, so scapy never resolves an interface or a route
in the wrong namespace.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from collections.abc import Sequence

from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import (
    Evidence,
    ProbeJob,
    ProbeProtocol,
    ProbeResult,
    SendPoint,
)

from .. import netns
from . import ndp
from . import packets as pk
from . import packets6 as pk6
from .common import BOTH_FAMILIES, answered, unknown, validate_job, validate_source
from .ports import PortExhausted, SourcePortAllocator, reserve_here
from .raw import RCVBUF_BYTES, SO_RCVBUFFORCE, interface_mac

MODES = ("batch", "sr1")


class ScapyProber:
    """mode: "batch" (one `sr` over all jobs of a send point, paced by `inter`) or "sr1" (one at a time).

    bufsize: scapy's socket buffers; the default 64 KiB loses most answers of a batch.
    Other arguments as for `RawSocketProber`.
    """

    name = "scapy"

    def __init__(self, *, mode: str = "batch", port_range: tuple[int, int] = (40000, 59999),
                 guard_seconds: float = 120.0, arp_timeout: float = 1.0, warmup_wait: float = 0.05,
                 bufsize: int = 4 << 20, reserve_ports: bool = True,
                 allocator: SourcePortAllocator | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.port_range = port_range
        self.allocator = allocator or SourcePortAllocator(port_range[0], port_range[1], guard_seconds)
        self.arp_timeout = arp_timeout
        self.warmup_wait = warmup_wait
        self.bufsize = bufsize
        self.reserve_ports = reserve_ports
        self.warnings: list[str] = []

    def run(self, jobs: Sequence[ProbeJob], *, timeout: float = 1.0, rate: float = 20000.0) -> list[ProbeResult]:
        jobs = list(jobs)
        results: list[ProbeResult | None] = [None] * len(jobs)
        self.warnings = []
        timeout = max(0.0, float(timeout))
        rate = float(rate) if rate and rate > 0 else 20000.0
        try:
            groups: dict[SendPoint, list[int]] = {}
            checked: dict[int, str] = {}
            for i, job in enumerate(jobs):
                sid = id(job.source)
                if sid not in checked:
                    checked[sid] = validate_source(job.source, BOTH_FAMILIES)
                problem = checked[sid] or validate_job(job, BOTH_FAMILIES)
                if problem:
                    results[i] = unknown(job, Evidence.ERROR, problem)
                else:
                    groups.setdefault(job.source, []).append(i)
            for point, indices in groups.items():
                try:
                    netns.run_in_netns(point.netns, self._run_point, point, jobs, indices, results, timeout, rate,
                                       timeout=None)
                except Exception as exc:  # noqa: BLE001 - a prober never raises
                    detail = f"cannot probe from {point.interface!r} in netns {point.netns!r}: {type(exc).__name__}: {exc}"
                    for i in indices:
                        if results[i] is None:
                            results[i] = unknown(jobs[i], Evidence.ERROR, detail)
        except Exception as exc:  # noqa: BLE001 - never raise
            for i, job in enumerate(jobs):
                if results[i] is None:
                    results[i] = unknown(job, Evidence.ERROR, f"prober failure: {type(exc).__name__}: {exc}")
        return [r if r is not None else unknown(job, Evidence.ERROR, "not decided") for r, job in zip(results, jobs)]

    # -- inside the send point's namespace ------------------------------------------------------------------

    def _run_point(self, point: SendPoint, jobs: list[ProbeJob], indices: list[int],
                   results: list[ProbeResult | None], timeout: float, rate: float) -> None:
        import scapy.layers.inet
        import scapy.layers.inet6
        import scapy.layers.l2  # noqa: F401
        from scapy.arch.linux import L2Socket
        from scapy.config import conf

        if self.reserve_ports:
            warning = reserve_here(*self.port_range)
            if warning:
                self.warnings.append(f"{point.netns}/{point.interface}: {warning}")
        conf.bufsize = self.bufsize  # scapy reads this global when it opens a socket
        probe_sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            if_mac = interface_mac(probe_sock, point.interface)
        finally:
            probe_sock.close()
        mac = pk.parse_mac(point.mac) if point.mac else if_mac
        sock = L2Socket(iface=point.interface, promisc=mac != if_mac)
        try:
            try:
                sock.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
            except OSError:
                pass
            self._probe(sock, point, mac, jobs, indices, results, timeout, rate)
        finally:
            sock.close()

    def _probe(self, sock, point: SendPoint, mac: bytes, jobs: list[ProbeJob],  # type: ignore[no-untyped-def]
               indices: list[int], results: list[ProbeResult | None], timeout: float, rate: float) -> None:
        from scapy.layers.inet import ICMP, IP, TCP, UDP
        from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
        from scapy.layers.l2 import ARP, Ether

        src_mac, src_ip = pk.format_mac(mac), str(point.ip)
        v6 = point.ip.version == 6
        targets = sorted({str(jobs[i].dst_ip) for i in indices})
        if v6:
            asks = [Ether(dst=pk.format_mac(ndp.multicast_mac(ndp.solicited_node(t_b))), src=src_mac)
                    / IPv6(src=src_ip, dst=str(ipaddress.IPv6Address(ndp.solicited_node(t_b))), hlim=ndp.ND_HOP_LIMIT)
                    / ICMPv6ND_NS(tgt=t) / ICMPv6NDOptSrcLLAddr(lladdr=src_mac)
                    for t in targets for t_b in (ipaddress.IPv6Address(t).packed,)]
        else:
            asks = [Ether(dst="ff:ff:ff:ff:ff:ff", src=src_mac) / ARP(op=1, hwsrc=src_mac, psrc=src_ip, pdst=t)
                    for t in targets]
        answered_ask, _ = sock.sr(asks, timeout=self.arp_timeout / 3, retry=2, verbose=0)
        if v6:  # an advertisement counts as for the raw prober: hop limit 255, to our address (ndp)
            adverts = [ndp.parse_advertisement(bytes(a), point.ip.packed) for _q, a in answered_ask]
            neighbours = {str(ipaddress.IPv6Address(ip)): pk.format_mac(m) for ip, m in filter(None, adverts)}
        else:
            neighbours = {a[ARP].psrc: a[ARP].hwsrc for _q, a in answered_ask if a[ARP].op == 2}

        def l3(dst: str):  # type: ignore[no-untyped-def]
            return IPv6(src=src_ip, dst=dst) if v6 else IP(src=src_ip, dst=dst, flags="DF")

        def echo(ident: int, seq: int):  # type: ignore[no-untyped-def]
            return ICMPv6EchoRequest(id=ident, seq=seq, data=pk.ICMP_PAYLOAD) if v6 else \
                ICMP(id=ident, seq=seq) / pk.ICMP_PAYLOAD

        # Warm-up: one echo per live target, answers ignored.
        warm = []
        for target, target_mac in neighbours.items():
            try:
                ident = self.allocator.allocate((point.ip.packed, pk6.address_bytes(target), None, pk.IPPROTO_ICMP))
            except PortExhausted:
                continue
            warm.append(Ether(src=src_mac, dst=target_mac) / l3(target) / echo(ident, 0))
        if warm:
            for pkt in warm:
                sock.send(pkt)
            time.sleep(self.warmup_wait)

        packets = []
        by_key: dict[pk.Key, int] = {}
        for i in indices:
            job = jobs[i]
            dst = str(job.dst_ip)
            if dst not in neighbours:
                results[i] = unknown(job, Evidence.NO_ARP, f"no {'neighbour advertisement' if v6 else 'ARP reply'} "
                                                           f"from {dst} on {point.interface}")
                continue
            dst_b, port = job.dst_ip.packed, job.dst_port or 0
            base = Ether(src=src_mac, dst=neighbours[dst]) / l3(dst)
            try:
                if job.protocol is ProbeProtocol.TCP:
                    sport = self.allocator.allocate((point.ip.packed, dst_b, port, pk.IPPROTO_TCP))
                    pkt = base / TCP(sport=sport, dport=port, flags="S", seq=random.getrandbits(32),
                                     window=pk.TCP_WINDOW, options=[("MSS", 1440 if v6 else 1460)])
                    key: pk.Key = (pk.IPPROTO_TCP, dst_b, port, sport)
                elif job.protocol is ProbeProtocol.UDP:
                    sport = self.allocator.allocate((point.ip.packed, dst_b, port, pk.IPPROTO_UDP))
                    pkt = base / UDP(sport=sport, dport=port) / pk.UDP_PAYLOAD
                    key = (pk.IPPROTO_UDP, dst_b, port, sport)
                else:
                    ident = self.allocator.allocate((point.ip.packed, dst_b, None, pk.IPPROTO_ICMP))
                    pkt = base / echo(ident, 1)
                    key = (pk.IPPROTO_ICMP, dst_b, ident, 1)
            except PortExhausted as exc:
                results[i] = unknown(job, Evidence.ERROR, str(exc))
                continue
            by_key[key] = i
            packets.append(pkt)
        if not packets:
            return

        if self.mode == "sr1":
            pairs = []
            for pkt in packets:
                reply = sock.sr1(pkt, timeout=timeout, verbose=0)
                if reply is not None:
                    pairs.append((pkt, reply))
        else:
            ans, _unans = sock.sr(packets, timeout=timeout, verbose=0, inter=1.0 / rate if rate < 1e5 else 0)
            pairs = [(q, a) for q, a in ans]

        for query, reply in pairs:
            parsed = pk6.parse_any(bytes(reply))
            found = by_key.get(_key_of(query))
            if parsed is None or found is None or results[found] is not None:
                continue
            i = found
            kind, key, extra = parsed
            rtt = max(0.0, float(reply.time) - float(getattr(query, "sent_time", None) or reply.time))
            results[i] = answered(jobs[i], kind, extra, rtt, key)
        for i in indices:
            if results[i] is None:
                results[i] = ProbeResult(jobs[i], Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE,
                                         f"no answer within {timeout:g}s; "
                                         f"{'neighbour discovery' if v6 else 'ARP'} answered")


def _key_of(pkt) -> pk.Key:  # type: ignore[no-untyped-def]
    """The probe key of a sent scapy packet (the same key `parse_answer` derives from its answer)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

    dst = pk6.address_bytes(pkt[IPv6].dst if IPv6 in pkt else pkt[IP].dst)
    if TCP in pkt:
        return (pk.IPPROTO_TCP, dst, pkt[TCP].dport, pkt[TCP].sport)
    if UDP in pkt:
        return (pk.IPPROTO_UDP, dst, pkt[UDP].dport, pkt[UDP].sport)
    echo = pkt[ICMPv6EchoRequest] if ICMPv6EchoRequest in pkt else pkt[ICMP]
    return (pk.IPPROTO_ICMP, dst, echo.id, echo.seq)
