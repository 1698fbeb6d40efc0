"""The default prober: hand-built frames on AF_PACKET sockets inside each send point's namespace.

Per run: open one socket per send point (in its namespace; ports reserved there), ARP-resolve every target from
the send point's MAC/IP (an answer proves the target alive), send one warm-up echo per target (the first burst
towards an unresolved neighbour is lost), then send every probe paced at `rate` (OVS's veth receive drops
unpaced bursts above ~250 frames) while one poll loop drains every socket. The run ends when every probe is
answered or `timeout` after the last send.
"""

from __future__ import annotations

import ctypes
import fcntl
import random
import select
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import (
    Evidence,
    ProbeJob,
    ProbeProtocol,
    ProbeResult,
    SendPoint,
)

from .. import netns
from . import packets as pk
from .common import answered, unknown, validate_job, validate_source
from .ports import PortExhausted, SourcePortAllocator, reserve_here

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SIOCGIFHWADDR = 0x8927
PACKET_OUTGOING = 4
RCVBUF_BYTES = 8 << 20
MAX_BURST = 32  # frames sent back to back at most: far below the ~250 that OVS's veth receive drops
MAX_DRAIN = 1024  # frames read from one socket per loop turn, so sending is never starved
WARMUP = -1  # in-flight marker of warm-up probes: answers are consumed, never scored


def _bpf_incoming_to(ip: bytes) -> bytes:
    """Classic BPF: keep incoming ARP and incoming IPv4 addressed to `ip`; drop our own transmitted frames."""
    (ip_k,) = struct.unpack("!I", ip)
    prog = [
        (0x20, 0, 0, 0xFFFFF004),  # ld pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
        (0x15, 6, 0, PACKET_OUTGOING),  # outgoing -> drop
        (0x28, 0, 0, 12),  # ldh ethertype
        (0x15, 3, 0, pk.ETH_P_ARP),  # arp -> accept
        (0x15, 0, 3, pk.ETH_P_IP),  # not ip -> drop
        (0x20, 0, 0, 30),  # ld ip dst
        (0x15, 0, 1, ip_k),  # not ours -> drop
        (0x06, 0, 0, 0x40000),  # accept
        (0x06, 0, 0, 0),  # drop
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


@dataclass
class _Sender:
    """One send point's socket and state for a run."""

    point: SendPoint
    sock: socket.socket | None = None
    mac: bytes = b""
    ip: bytes = b""
    error: str = ""
    neighbours: dict[bytes, bytes] = field(default_factory=dict)  # target IP -> MAC (ARP answered)
    inflight: dict[pk.Key, int] = field(default_factory=dict)  # probe key -> job index (or WARMUP)
    warning: str = ""


def interface_mac(sock: socket.socket, interface: str) -> bytes:
    """The interface's MAC, asked through `sock` (so in the socket's namespace)."""
    ifreq = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", interface.encode()[:15]))
    return ifreq[18:24]


def _open_in_netns(point: SendPoint, port_range: tuple[int, int], reserve: bool) -> tuple[socket.socket, bytes, str]:
    """Runs inside the send point's namespace: reserve ports, open and bind the packet socket."""
    warning = reserve_here(*port_range) if reserve else ""
    ip = pk.ipv4_bytes(point.ip)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing queued before the filter
    try:
        if_mac = interface_mac(sock, point.interface)
        prog = _bpf_incoming_to(ip)
        buf = ctypes.create_string_buffer(prog)
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(prog) // 8, ctypes.addressof(buf)))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        sock.bind((point.interface, ETH_P_ALL))
        mac = pk.parse_mac(point.mac) if point.mac else if_mac
        if mac != if_mac:
            # Sending as someone else (the VM's MAC on the k6t- bridge): their answers are not addressed to
            # this interface, so capture promiscuously (released when the socket closes).
            (ifindex,) = struct.unpack_from("i", struct.pack("i", socket.if_nametoindex(point.interface)))
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b""))
        return sock, mac, warning
    except BaseException:
        sock.close()
        raise


class RawSocketProber:
    """Paced raw-frame prober (see module docstring).

    port_range: source ports (and ICMP ids) to use, reserved in each sender namespace when `reserve_ports`.
    guard_seconds: a 5-tuple is not reused within this time (the allocator lives as long as the prober, so
    keep one prober per agent). arp_timeout: how long to wait for ARP answers (three tries).
    warmup_wait: pause after the warm-up echoes.
    """

    name = "raw"

    def __init__(self, *, port_range: tuple[int, int] = (40000, 59999), guard_seconds: float = 120.0,
                 arp_timeout: float = 1.0, warmup_wait: float = 0.05, reserve_ports: bool = True,
                 allocator: SourcePortAllocator | None = None) -> None:
        self.port_range = port_range
        self.allocator = allocator or SourcePortAllocator(port_range[0], port_range[1], guard_seconds)
        self.arp_timeout = arp_timeout
        self.warmup_wait = warmup_wait
        self.reserve_ports = reserve_ports
        self.warnings: list[str] = []  # of the last run
        self.stats: dict[str, float] = {}  # phase durations and send rate of the last run

    # -- public -----------------------------------------------------------------------------------------------

    def run(self, jobs: Sequence[ProbeJob], *, timeout: float = 1.0, rate: float = 20000.0) -> list[ProbeResult]:
        jobs = list(jobs)
        results: list[ProbeResult | None] = [None] * len(jobs)
        senders: dict[SendPoint, _Sender] = {}
        try:
            self._run(jobs, results, senders, max(0.0, float(timeout)), float(rate) if rate and rate > 0 else 20000.0)
        except Exception as exc:  # noqa: BLE001 - never raise: whatever is not decided yet becomes unknown
            detail = f"prober failure: {type(exc).__name__}: {exc}"
            for i, job in enumerate(jobs):
                if results[i] is None:
                    results[i] = ProbeResult(job, Verdict.UNKNOWN, Evidence.ERROR, detail)
        finally:
            for sender in senders.values():
                if sender.sock is not None:
                    sender.sock.close()
        return [r if r is not None else unknown(job, Evidence.ERROR, "not decided") for r, job in zip(results, jobs)]

    # -- phases -----------------------------------------------------------------------------------------------

    def _run(self, jobs: list[ProbeJob], results: list[ProbeResult | None], senders: dict[SendPoint, _Sender],
             timeout: float, rate: float) -> None:
        self.warnings = []
        self.stats = {}
        started = time.monotonic()
        targets: dict[SendPoint, set[bytes]] = {}
        dst_bytes: list[bytes] = [b""] * len(jobs)
        canonical: dict[int, SendPoint] = {}  # id(source) -> one SendPoint per distinct value (hash it once)
        source_problem: dict[int, str] = {}
        wanted: dict[int, set[bytes]] = {}  # id(source) -> its targets
        for i, job in enumerate(jobs):
            sid = id(job.source)
            if sid not in canonical:
                point = canonical[sid] = next((p for p in targets if p == job.source), job.source)
                source_problem[sid] = validate_source(point)
                wanted[sid] = targets.setdefault(point, set())
            problem = source_problem[sid] or validate_job(job)
            if problem:
                results[i] = unknown(job, Evidence.ERROR, problem)
                continue
            dst_bytes[i] = job.dst_ip.packed
            wanted[sid].add(dst_bytes[i])
        targets = {p: t for p, t in targets.items() if t}
        for point in targets:
            senders[point] = self._open(point)
        live = {p: s for p, s in senders.items() if s.sock is not None}
        by_id = {sid: senders.get(point) for sid, point in canonical.items()}
        if live:
            self._resolve(live, targets, rate)
            self.stats["arp_s"] = time.monotonic() - started
            self._warm_up(live, rate)
        mark = time.monotonic()
        prepared = self._prepare(jobs, results, by_id, dst_bytes)
        self.stats["prepare_s"] = time.monotonic() - mark
        if prepared:
            self._send_and_collect(jobs, results, live, prepared, timeout, rate)

        for i, job in enumerate(jobs):
            if results[i] is not None:
                continue
            sender = by_id.get(id(job.source))
            if sender is None:
                results[i] = unknown(job, Evidence.ERROR, "job was not prepared")
            elif sender.sock is None:
                results[i] = unknown(job, Evidence.ERROR, sender.error)
            elif dst_bytes[i] not in sender.neighbours:
                results[i] = unknown(job, Evidence.NO_ARP, f"no ARP reply from {job.dst_ip} on {job.source.interface}")
            else:
                results[i] = ProbeResult(job, Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE,
                                         f"no answer within {timeout:g}s; ARP answered")

    def _open(self, point: SendPoint) -> _Sender:
        sender = _Sender(point)
        try:
            sender.sock, sender.mac, sender.warning = netns.run_in_netns(
                point.netns, _open_in_netns, point, self.port_range, self.reserve_ports)
            sender.sock.setblocking(True)
            sender.ip = pk.ipv4_bytes(point.ip)
            if sender.warning:
                self.warnings.append(f"{point.netns}/{point.interface}: {sender.warning}")
        except Exception as exc:  # noqa: BLE001 - a prober never raises
            sender.sock = None
            sender.error = f"cannot open {point.interface!r} in netns {point.netns!r}: {type(exc).__name__}: {exc}"
        return sender

    def _resolve(self, live: dict[SendPoint, _Sender], targets: dict[SendPoint, set[bytes]], rate: float) -> None:
        """ARP every target, three tries spread over `arp_timeout`; stops early once all answered."""
        start = time.monotonic()
        tries = (0.0, self.arp_timeout * 0.3, self.arp_timeout * 0.6, self.arp_timeout)
        poller = _Poller(live.values(), self)

        def resolved() -> bool:
            return all(ip in s.neighbours for p, s in live.items() for ip in targets[p])

        try:
            for k in range(len(tries) - 1):
                poller.pump_until(start + tries[k], resolved)
                pending = [(s, ip) for p, s in live.items() for ip in sorted(targets[p]) if ip not in s.neighbours]
                if not pending:
                    return
                t0 = time.monotonic()
                for n, (sender, ip) in enumerate(pending):
                    _pace(t0, n, 1.0 / rate, poller)
                    sender.sock.send(pk.arp_request(sender.mac, sender.ip, ip))  # type: ignore[union-attr]
                poller.pump_until(start + tries[k + 1], resolved)
        finally:
            poller.close()

    def _warm_up(self, live: dict[SendPoint, _Sender], rate: float) -> None:
        poller = _Poller(live.values(), self)
        try:
            interval, t0, n = 1.0 / rate, time.monotonic(), 0
            for sender in live.values():
                for ip, mac in sender.neighbours.items():
                    try:
                        ident = self.allocator.allocate((sender.ip, ip, None, pk.IPPROTO_ICMP))
                    except PortExhausted:
                        continue
                    sender.inflight[(pk.IPPROTO_ICMP, ip, ident, 0)] = WARMUP
                    _pace(t0, n, interval, poller)
                    n += 1
                    sender.sock.send(pk.IcmpEchoTemplate(sender.mac, mac, sender.ip, ip).frame(ident, 0))  # type: ignore[union-attr]
            if n:
                poller.pump_until(time.monotonic() + self.warmup_wait, lambda: False)
        finally:
            poller.close()
        for sender in live.values():
            sender.inflight.clear()

    def _prepare(self, jobs: list[ProbeJob], results: list[ProbeResult | None], by_id: dict[int, _Sender | None],
                 dst_bytes: list[bytes]) -> list[tuple[int, _Sender, bytes, int]]:
        """Allocate tuples and build frames: [(job index, sender, frame, expected TCP ack or -1)]."""
        prepared: list[tuple[int, _Sender, bytes, int]] = []
        templates: dict[tuple, object] = {}
        getrandbits = random.getrandbits
        for i, job in enumerate(jobs):
            if results[i] is not None:
                continue
            sender = by_id[id(job.source)]
            if sender is None or sender.sock is None:
                continue  # decided after the run (ERROR)
            dst = dst_bytes[i]
            dst_mac = sender.neighbours.get(dst)
            if dst_mac is None:
                continue  # decided after the run (NO_ARP)
            proto = job.protocol
            port = job.dst_port or 0
            try:
                if proto is ProbeProtocol.TCP:
                    sport = self.allocator.allocate((sender.ip, dst, port, pk.IPPROTO_TCP))
                    tkey = (id(sender), dst, port, pk.IPPROTO_TCP)
                    tmpl = templates.get(tkey) or templates.setdefault(
                        tkey, pk.TcpSynTemplate(sender.mac, dst_mac, sender.ip, dst, port))
                    seq = getrandbits(32)
                    frame = tmpl.frame(sport, seq)  # type: ignore[attr-defined]
                    key: pk.Key = (pk.IPPROTO_TCP, dst, port, sport)
                    ack = (seq + 1) & 0xFFFFFFFF
                elif proto is ProbeProtocol.UDP:
                    sport = self.allocator.allocate((sender.ip, dst, port, pk.IPPROTO_UDP))
                    tkey = (id(sender), dst, port, pk.IPPROTO_UDP)
                    tmpl = templates.get(tkey) or templates.setdefault(
                        tkey, pk.UdpTemplate(sender.mac, dst_mac, sender.ip, dst, port))
                    frame = tmpl.frame(sport)  # type: ignore[attr-defined]
                    key, ack = (pk.IPPROTO_UDP, dst, port, sport), -1
                else:
                    sport = self.allocator.allocate((sender.ip, dst, None, pk.IPPROTO_ICMP))
                    tkey = (id(sender), dst, 0, pk.IPPROTO_ICMP)
                    tmpl = templates.get(tkey) or templates.setdefault(
                        tkey, pk.IcmpEchoTemplate(sender.mac, dst_mac, sender.ip, dst))
                    frame = tmpl.frame(sport, 1)  # type: ignore[attr-defined]
                    key, ack = (pk.IPPROTO_ICMP, dst, sport, 1), -1
            except PortExhausted as exc:
                results[i] = unknown(job, Evidence.ERROR, str(exc))
                continue
            sender.inflight[key] = i
            prepared.append((i, sender, frame, ack))
        return prepared

    def _send_and_collect(self, jobs: list[ProbeJob], results: list[ProbeResult | None],
                          live: dict[SendPoint, _Sender], prepared: list[tuple[int, _Sender, bytes, int]],
                          timeout: float, rate: float) -> None:
        sent_at = [0.0] * len(jobs)
        acks = [-1] * len(jobs)
        for i, _s, _f, ack in prepared:
            acks[i] = ack
        outstanding = [len(prepared)]

        def on_answer(sender: _Sender, kind: pk.Kind, key: pk.Key, extra: int, now: float) -> None:
            i = sender.inflight.get(key)
            if i is None or i < 0:
                return
            if (kind is pk.Kind.SYN_ACK or kind is pk.Kind.RST) and acks[i] != extra:
                return  # not an answer to this SYN (stale or foreign)
            del sender.inflight[key]
            results[i] = answered(jobs[i], kind, extra, now - sent_at[i], key)
            outstanding[0] -= 1

        poller = _Poller(live.values(), self, on_answer)
        try:
            interval = 1.0 / rate
            total = len(prepared)
            t0 = time.monotonic()
            n = 0
            while n < total:
                now = time.monotonic()
                due = min(total, int((now - t0) * rate) + 1, n + MAX_BURST)
                while n < due:
                    i, sender, frame, _ack = prepared[n]
                    try:
                        sender.sock.send(frame)  # type: ignore[union-attr]
                        sent_at[i] = time.monotonic()
                    except OSError as exc:
                        sender.inflight = {k: v for k, v in sender.inflight.items() if v != i}
                        results[i] = unknown(jobs[i], Evidence.ERROR, f"send failed: {exc}")
                        outstanding[0] -= 1
                    n += 1
                poller.poll(max(0.0, t0 + n * interval - time.monotonic()))
            sent_done = time.monotonic()
            self.stats["send_s"] = sent_done - t0
            self.stats["send_rate"] = total / max(sent_done - t0, 1e-9)
            poller.pump_until(sent_done + timeout, lambda: outstanding[0] <= 0)
            self.stats["wait_s"] = time.monotonic() - sent_done
        finally:
            poller.close()


class _Poller:
    """One epoll over every sender's socket; dispatches ARP replies and probe answers."""

    def __init__(self, senders, prober: RawSocketProber, on_answer=None) -> None:  # type: ignore[no-untyped-def]
        self._epoll = select.epoll()
        self._by_fd: dict[int, _Sender] = {}
        for sender in senders:
            if sender.sock is not None:
                self._epoll.register(sender.sock.fileno(), select.EPOLLIN)
                self._by_fd[sender.sock.fileno()] = sender
        self._buf = bytearray(65536)
        self._view = memoryview(self._buf)
        self._on_answer = on_answer

    def close(self) -> None:
        self._epoll.close()

    def pump_until(self, deadline: float, done) -> None:  # type: ignore[no-untyped-def]
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.poll(min(left, 0.05))

    def poll(self, wait: float) -> None:
        for fd, _ev in self._epoll.poll(wait):
            self._drain(self._by_fd[fd])

    def _drain(self, sender: _Sender) -> None:
        recv_into, buf, view = sender.sock.recv_into, self._buf, self._view  # type: ignore[union-attr]
        parse, on_answer = pk.parse_answer, self._on_answer
        for _ in range(MAX_DRAIN):
            try:
                n = recv_into(buf, 0, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            frame = view[:n]
            if n >= 14 and buf[12] == 0x08 and buf[13] == 0x06:
                arp = pk.parse_arp_reply(frame, sender.ip)
                if arp is not None and arp[0] not in sender.neighbours:
                    sender.neighbours[arp[0]] = arp[1]
                continue
            if on_answer is None and not sender.inflight:
                continue
            answer = parse(frame)
            if answer is None:
                continue
            kind, key, extra = answer
            if on_answer is not None:
                on_answer(sender, kind, key, extra, time.monotonic())
            else:
                sender.inflight.pop(key, None)  # warm-up answers: consumed


def _pace(t0: float, n: int, interval: float, poller: _Poller) -> None:
    """Wait (draining sockets) until frame n is due."""
    while True:
        wait = t0 + n * interval - time.monotonic()
        if wait <= 0:
            return
        poller.poll(wait)
