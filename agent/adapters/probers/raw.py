"""The default prober: hand-built frames on AF_PACKET sockets inside each send point's namespace.

Per run: open one socket per send point (in its namespace; ports reserved there), ARP-resolve every target from
the send point's MAC/IP (an answer proves the target alive; IPv6 targets: neighbour discovery, `ndp`), send one
warm-up echo per target (the first burst towards an unresolved neighbour is lost), then send every probe paced at `rate` (OVS's veth receive drops
unpaced bursts above ~250 frames) while one poll loop drains every socket.

Silence is not yet a verdict. TCP and ICMP probes left unanswered are re-probed with a fresh 5-tuple beside
canaries (fresh re-probes of paths that answered in this run), for as many attempts as the send point's measured
loss requires (see `loss`); answers to every earlier attempt still count (a SYN-ACK the peer retransmits after 1 s
lands in a later pass). Frames the prober's own socket dropped (PACKET_STATISTICS) count as lost answers of the
pass. The first re-probe pass goes at twice the rate (mostly dropped SYNs: nothing comes back to carry).
Pacing adapts (see `pacing`): pilot canaries ride along pass 1, and every canary missing past a few round trips
cuts the rate; a run starts where the last one backed off to. What is still silent is `denied` once the
attempts suffice, else `unknown` (answers are going missing on this node).
"""

from __future__ import annotations

import ctypes
import fcntl
import random
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
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
from . import ndp
from . import packets as pk
from . import packets6 as pk6
from .common import BOTH_FAMILIES, answered, unknown, validate_job, validate_source
from .loss import (
    EPSILON,
    MAX_ATTEMPTS,
    MIN_ATTEMPTS,
    LossEstimate,
    canaries_to_conclude,
    pass_loss,
    rate_octave,
    silence_chance,
)
from .pacing import MIN_RATE, Pacer
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
CANARIES = 4  # re-probes of answered paths per send point and confirmation pass, at least
CANARY_SHARE = 20  # ... and one per this many silent probes, so a long pass measures its own loss well
MAX_CANARY_SHARE = 4  # ... or up to one per this many, when that many can make the pass conclusive (a canary
# costs OVS three frames: SYN, SYN-ACK and our kernel's RST; a further pass one per silent probe, and a timeout)
PILOT_SHARE = 25  # pass 1: one pilot canary per this many probes, once paths answered (pacing evidence)
RATE_MEMORY_SECONDS = 30.0  # a run starts where the last backed off to, doubled for each this long since
PACKET_STATISTICS = 6
CONFIRM_SPEEDUP = 2.0  # the first re-probe pass is mostly dropped SYNs (no answers to carry): it goes faster,
# and its canaries measure what that costs


def _bpf_incoming_to(ip: bytes) -> bytes:
    """Classic BPF: keep incoming ARP and incoming IPv4 addressed to `ip`; drop our own transmitted frames."""
    if len(ip) == 16:
        return _bpf_incoming_to6(ip)
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


def _bpf_incoming_to6(ip: bytes) -> bytes:
    """Classic BPF: keep incoming IPv6 addressed to `ip` (answers, and neighbour advertisements: unicast to
    the soliciting address); drop our own transmitted frames and everything else."""
    words = struct.unpack("!IIII", ip)
    prog = [
        (0x20, 0, 0, 0xFFFFF004),  # ld pkttype
        (0x15, 11, 0, PACKET_OUTGOING),  # outgoing -> drop (instruction 13)
        (0x28, 0, 0, 12),  # ldh ethertype
        (0x15, 0, 9, pk6.ETH_P_IPV6),  # not ipv6 -> drop
    ]
    for n, word in enumerate(words):  # ld ip6 dst, 32 bits at a time; any mismatch -> drop
        prog += [(0x20, 0, 0, pk.ETH_HLEN + 24 + 4 * n), (0x15, 0, 7 - 2 * n, word)]
    prog += [(0x06, 0, 0, 0x40000), (0x06, 0, 0, 0)]  # accept; drop
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


def _neighbour_request(sender: "_Sender", target: bytes) -> bytes:
    """ARP who-has, or for IPv6 a neighbour solicitation, from the send point's own MAC and address."""
    if len(target) == 16:
        return ndp.solicitation(sender.mac, sender.ip, target)
    return pk.arp_request(sender.mac, sender.ip, target)


@dataclass(eq=False)
class _Sender:
    """One send point's socket and state for a run."""

    point: SendPoint
    sock: socket.socket | None = None
    mac: bytes = b""
    ip: bytes = b""
    error: str = ""
    warning: str = ""
    neighbours: dict[bytes, bytes] = field(default_factory=dict)  # target IP -> MAC (ARP or NDP answered)
    inflight: dict[pk.Key, "_Attempt"] = field(default_factory=dict)  # every attempt of this run, by answer key
    passes: list["_PassLoss"] = field(default_factory=list)  # this run's evidence, per pass


@dataclass
class _PassLoss:
    """One pass of one send point: attempts shown lost, attempts whose fate is known, and what history says."""

    pace: float
    history: float = 0.0
    lost: int = 0
    trials: int = 0

    def rate(self, earlier: float) -> float:
        return pass_loss(self.lost, self.trials, earlier, self.history)


@dataclass(eq=False)
class _Probe:
    """One job of the run: where it leaves, what it has tried, and its result once decided."""

    job: ProbeJob
    sender: _Sender | None = None
    dst: bytes = b""
    result: ProbeResult | None = None
    attempts: int = 0
    last_pass: int = 0
    silent_passes: list[int] = field(default_factory=list)  # passes it ended silent in
    tcp: tuple[tuple[bytes, bytes, int, int], "pk6.TcpSyn"] | None = None  # its 5-tuple key and template

    @property
    def needs_confirmation(self) -> bool:
        return self.job.protocol is not ProbeProtocol.UDP  # UDP silence proves nothing anyway: not re-probed


@dataclass(eq=False)
class _Attempt:
    """One frame sent: for a job (or a canary, or a warm-up echo) with the answer it expects."""

    probe: _Probe | None  # None: warm-up echo, answers consumed
    frame: bytes
    ack: int = -1  # expected TCP acknowledgement number (-1: not TCP)
    canary: bool = False
    sent_at: float = 0.0
    answered: bool = False
    pass_no: int = 0


AnswerHandler = Callable[[_Sender, pk.Kind, pk.Key, int, float], None]


def interface_mac(sock: socket.socket, interface: str) -> bytes:
    """The interface's MAC, asked through `sock` (so in the socket's namespace)."""
    ifreq = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", interface.encode()[:15]))
    return ifreq[18:24]


def _open_in_netns(point: SendPoint, port_range: tuple[int, int], reserve: bool) -> tuple[socket.socket, bytes, str]:
    """Runs inside the send point's namespace: reserve ports, open and bind the packet socket."""
    warning = reserve_here(*port_range) if reserve else ""
    ip = pk6.address_bytes(point.ip)
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
    warmup_wait: pause after the warm-up echoes. loss: each send point's recent loss per rate octave, kept
    across runs (so keep one prober per agent).
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
        self.stats: dict[str, float] = {}  # phase durations, send rate, attempts and loss of the last run
        self.loss: dict[tuple[SendPoint, int], LossEstimate] = {}  # per send point and rate octave, across runs
        self._pass = 0  # the pass being sent or waited for (a run's state; runs never overlap)
        self._outstanding = 0  # its probes not decided and canaries not answered yet
        self._recovered = 0  # its probes answered only after a silent pass
        self._canary_attempts: list[_Attempt] = []  # the pass's canaries (pilots included)
        self._pool: dict[int, list[_Probe]] = {}  # per sender: TCP probes answered in this run (pilot canaries)
        self._pacer = Pacer(MIN_RATE)
        self._rate_memory: tuple[float, float] | None = None  # (rate the last run ended at, when)

    # -- public -----------------------------------------------------------------------------------------------

    def run(self, jobs: Sequence[ProbeJob], *, timeout: float = 1.0, rate: float = 20000.0) -> list[ProbeResult]:
        probes = [_Probe(job) for job in jobs]
        senders: dict[SendPoint, _Sender] = {}
        try:
            self._run(probes, senders, max(0.0, float(timeout)), float(rate) if rate and rate > 0 else 20000.0)
        except Exception as exc:  # noqa: BLE001 - never raise: whatever is not decided yet becomes unknown
            detail = f"prober failure: {type(exc).__name__}: {exc}"
            for probe in probes:
                if probe.result is None:
                    probe.result = ProbeResult(probe.job, Verdict.UNKNOWN, Evidence.ERROR, detail)
        finally:
            for sender in senders.values():
                if sender.sock is not None:
                    sender.sock.close()
        return [p.result if p.result is not None else unknown(p.job, Evidence.ERROR, "not decided") for p in probes]

    # -- phases -----------------------------------------------------------------------------------------------

    def _run(self, probes: list[_Probe], senders: dict[SendPoint, _Sender], timeout: float, rate: float) -> None:
        self.warnings = []
        self.stats = {}
        started = time.monotonic()
        targets: dict[SendPoint, set[bytes]] = {}
        canonical: dict[int, SendPoint] = {}  # id(source) -> one SendPoint per distinct value (hash it once)
        source_problem: dict[int, str] = {}
        wanted_of: dict[int, set[bytes]] = {}  # id(source) -> its targets (a SendPoint hashes slowly: once per id)
        for probe in probes:
            sid = id(probe.job.source)
            if sid not in canonical:
                point = canonical[sid] = next((p for p in targets if p == probe.job.source), probe.job.source)
                source_problem[sid] = validate_source(point, BOTH_FAMILIES)
                wanted_of[sid] = targets.setdefault(point, set())
            problem = source_problem[sid] or validate_job(probe.job, BOTH_FAMILIES)
            if problem:
                probe.result = unknown(probe.job, Evidence.ERROR, problem)
                continue
            probe.dst = probe.job.dst_ip.packed
            wanted_of[sid].add(probe.dst)
        self.stats["setup_s"] = time.monotonic() - started
        for point, wanted in targets.items():
            if wanted:
                senders[point] = self._open(point)
        live = {p: s for p, s in senders.items() if s.sock is not None}
        if live:
            mark = time.monotonic()
            self._resolve(live, targets, rate)
            self.stats["arp_s"] = time.monotonic() - mark
            mark = time.monotonic()
            self._warm_up(live, rate)
            self.stats["warm_up_s"] = time.monotonic() - mark
        pending = []
        sender_of = {sid: senders[point] for sid, point in canonical.items() if point in senders}
        for probe in probes:
            if probe.result is not None:
                continue
            sender = probe.sender = sender_of[id(probe.job.source)]
            if sender.sock is None:
                probe.result = unknown(probe.job, Evidence.ERROR, sender.error)
            elif probe.dst not in sender.neighbours:
                probe.result = unknown(probe.job, Evidence.NO_ARP,
                                       f"no {'neighbour advertisement' if len(probe.dst) == 16 else 'ARP reply'} "
                                       f"from {probe.job.dst_ip} on {probe.job.source.interface}")
            else:
                pending.append(probe)
        if pending:
            self._passes(pending, list(live.values()), timeout, rate, self._start_pace(live, rate))

    def _open(self, point: SendPoint) -> _Sender:
        sender = _Sender(point)
        try:
            sender.sock, sender.mac, sender.warning = netns.run_in_netns(
                point.netns, _open_in_netns, point, self.port_range, self.reserve_ports)
            sender.sock.setblocking(True)
            sender.ip = pk6.address_bytes(point.ip)
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
        poller = _Poller(live.values())

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
                    _send(sender, _neighbour_request(sender, ip))
                poller.pump_until(start + tries[k + 1], resolved)
        finally:
            poller.close()

    def _warm_up(self, live: dict[SendPoint, _Sender], rate: float) -> None:
        poller = _Poller(live.values(), _mark_answered)
        try:
            interval, t0, n = 1.0 / rate, time.monotonic(), 0
            for sender in live.values():
                for ip, mac in sender.neighbours.items():
                    try:
                        ident = self.allocator.allocate((sender.ip, ip, None, pk.IPPROTO_ICMP))
                    except PortExhausted:
                        continue
                    sender.inflight[(pk.IPPROTO_ICMP, ip, ident, 0)] = _Attempt(None, b"")
                    _pace(t0, n, interval, poller)
                    n += 1
                    _send(sender, pk6.echo_template(sender.mac, mac, sender.ip, ip).frame(ident, 0))
            if n:
                poller.pump_until(time.monotonic() + self.warmup_wait, lambda: False)
        finally:
            poller.close()
        for sender in live.values():
            sender.inflight.clear()

    # -- probing and confirmation -----------------------------------------------------------------------------

    def _passes(self, pending: list[_Probe], senders: list[_Sender], timeout: float, rate: float,
                start: float) -> None:
        """Pass 1 sends every job; later passes re-probe what is still silent (with canaries) until each is
        decided by the loss its silent passes showed, or is out of attempts. Frames are built inside the paced
        send loop (in the gaps pacing leaves), and pilot canaries steer the pacing of pass 1 (see `pacing`)."""
        frames = _Frames(self.allocator)
        poller = _Poller(senders, self._on_answer)
        pacer = self._pacer = Pacer(rate, start)
        todo, passes, sends, send_s, wait_s, decide_s = pending, 0, 0, 0.0, 0.0, 0.0
        socket_drops(senders)  # reset: what ARP and the warm-up left does not count
        drops_total, last_speed = 0, 1.0
        try:
            while todo:
                passes += 1
                if passes > 1:
                    todo = [p for p in todo if p.result is None]  # late answers to earlier attempts count
                    if not todo:
                        break
                    # The wait for the previous pass was the back-off; its end rate is where this one starts.
                    speed = CONFIRM_SPEEDUP if passes == 2 else 1.0
                    pacer.set_ceiling(rate * speed, (pacer.rate / last_speed) * speed)
                    last_speed = speed
                self._pass = passes
                now = time.monotonic()
                for sender in senders:
                    history = self.loss.get((sender.point, rate_octave(pacer.rate)))
                    sender.passes.append(_PassLoss(pacer.rate, history.rate(now) if history is not None else 0.0))
                items: list[tuple[_Probe, bool]] = [(p, False) for p in todo]
                if passes > 1:
                    items = _interleave(items, self._canaries(pending, todo))
                self._outstanding, self._recovered, self._canary_attempts = len(items), 0, []
                self._pool = {} if passes == 1 else self._pool
                sent, took = self._send_paced(poller, frames, items, pacer, pilots=passes == 1)
                sends += sent
                send_s += took
                if passes == 1:
                    self.stats["send_s"], self.stats["send_rate"] = took, sent / max(took, 1e-9)
                mark = time.monotonic()
                poller.pump_until(mark + timeout, lambda: self._outstanding <= 0)
                wait_s += time.monotonic() - mark
                mark = time.monotonic()
                dropped_now = 0
                for sender, dropped in socket_drops(senders).items():
                    dropped_now += dropped
                    if dropped:  # our own socket dropped frames: each may have been an answer of this pass
                        sender.passes[-1].lost += dropped
                        sender.passes[-1].trials += dropped
                        drops_total += dropped
                silent_canaries = self._settle(todo, self._canary_attempts, passes)
                todo = self._decide([p for p in todo if p.result is None], timeout, passes)
                decide_s += time.monotonic() - mark
                # What went missing around this pass: its silent canaries and own-socket drops, and the earlier
                # passes' probes that answered only now.
                pacer.pass_ended(silent_canaries + self._recovered + dropped_now,
                                 sum(s.passes[-1].trials for s in senders) + self._recovered, time.monotonic())
        finally:
            poller.close()
        self._remember(senders)
        self._rate_memory = (pacer.rate / last_speed, time.monotonic())
        self.stats.update(passes=passes, attempts=sends, pass_send_s=send_s, wait_s=wait_s, decide_s=decide_s,
                          final_rate=pacer.rate, pace_cuts=pacer.decreases, pace_raises=pacer.increases,
                          socket_drops=drops_total, lost=sum(p.lost for s in senders for p in s.passes))

    def _start_pace(self, live: dict[SendPoint, _Sender], rate: float) -> float:
        """The requested rate, or lower where the last run ended lower (the rate it backed off to, let back up
        by a doubling per RATE_MEMORY_SECONDS since)."""
        pace = rate
        if self._rate_memory is not None:
            last, at = self._rate_memory
            pace = min(rate, max(MIN_RATE, last) * 2 ** ((time.monotonic() - at) / RATE_MEMORY_SECONDS))
        self.stats["start_rate"] = pace
        return pace

    def _build(self, frames: "_Frames", probe: _Probe, canary: bool) -> _Attempt | None:
        """The attempt to send now for `probe`, or None (decided meanwhile, or no 5-tuple left)."""
        sender = probe.sender
        assert sender is not None
        if not canary and probe.result is not None:
            self._outstanding -= 1  # answered late (to an earlier attempt) while this pass was under way
            return None
        try:
            key, attempt = frames.build(sender, probe, canary)
        except PortExhausted as exc:
            if not canary:
                probe.result = unknown(probe.job, Evidence.ERROR, str(exc))
            self._outstanding -= 1
            return None
        if not canary:
            probe.attempts += 1
            probe.last_pass = self._pass
        else:
            self._canary_attempts.append(attempt)
        attempt.pass_no = self._pass
        sender.inflight[key] = attempt
        return attempt

    def _count_failed(self) -> None:
        self._outstanding -= 1

    def _canaries(self, pending: list[_Probe], todo: list[_Probe]) -> list[tuple[_Probe, bool]]:
        """Fresh re-probes of paths that answered in this run, per send point with silent probes, preferring
        the silent probes' own destinations: they measure the loss of this very pass."""
        out: list[tuple[_Probe, bool]] = []
        for sender in {id(p.sender): p.sender for p in todo if p.sender is not None}.values():
            silent = {p.dst for p in silent_probes(todo, sender)}
            answered = [p for p in pending if p.sender is sender and p.job.protocol is ProbeProtocol.TCP
                        and p.result is not None and p.result.verdict is Verdict.ALLOWED]
            answered.sort(key=lambda p: p.dst not in silent)
            count = len(silent_probes(todo, sender))
            wanted = max(CANARIES, -(-count // CANARY_SHARE)) if answered else 0
            if answered:
                # Enough canaries to make this very pass conclusive, where a bounded number can: every silent
                # probe has been silent in every pass so far, so the run's passes' product is its chance.
                rates = pass_rates(sender.passes[:-1])
                needed = canaries_to_conclude(silence_chance(rates), earlier_loss(sender.passes[:-1]),
                                              sender.passes[-1].history, max(wanted, count // MAX_CANARY_SHARE))
                if needed is not None and needed > wanted:
                    self.stats["extra_canaries"] = self.stats.get("extra_canaries", 0) + needed - wanted
                    wanted = needed
            out.extend((answered[n % len(answered)], True) for n in range(wanted))
        return out

    def _send_paced(self, poller: "_Poller", frames: "_Frames", items: list[tuple[_Probe, bool]], pacer: Pacer,
                    pilots: bool) -> tuple[int, float]:
        """Send every item at the pacer's rate (bursts of at most MAX_BURST), building each frame just before
        it leaves and draining answers meanwhile. With `pilots`, one in PILOT_SHARE slots also carries a canary
        (a path of the same send point that answered already): the pacer's evidence while nothing else has any.
        Canaries past the pacer's deadline slow it down."""
        total, n, sent, t0 = len(items), 0, 0, time.monotonic()
        base_t, base_n, rate = t0, 0, pacer.rate
        watch: deque[_Attempt] = deque()
        pool = self._pool
        while n < total:
            now = time.monotonic()
            while watch and (watch[0].answered or now - watch[0].sent_at > pacer.deadline()):
                if not watch.popleft().answered:
                    pacer.missing(now)
            if pacer.rate != rate:  # re-anchor the schedule at the new rate
                base_t, base_n, rate = now, n, pacer.rate
            due = min(total, base_n + int((now - base_t) * rate) + 1, n + MAX_BURST)
            while n < due:
                probe, canary = items[n]
                n += 1
                attempt = self._build(frames, probe, canary)
                if attempt is None:
                    continue
                if canary:
                    watch.append(attempt)
                sent += self._emit(attempt)
                if pilots and n % PILOT_SHARE == 0:
                    answered = pool.get(id(probe.sender))
                    if answered:
                        self._outstanding += 1
                        pilot = self._build(frames, answered[(n // PILOT_SHARE) % len(answered)], True)
                        if pilot is not None:
                            watch.append(pilot)
                            sent += self._emit(pilot)
            poller.poll(max(0.0, base_t + (n - base_n) / rate - time.monotonic()))
        return sent, time.monotonic() - t0

    def _emit(self, attempt: _Attempt) -> int:
        sender = attempt.probe.sender  # type: ignore[union-attr]
        try:
            _send(sender, attempt.frame)  # type: ignore[arg-type]
            attempt.sent_at = time.monotonic()
        except OSError as exc:
            attempt.answered = True  # nothing will answer; never counted as loss
            probe = attempt.probe
            if probe is not None and not attempt.canary and probe.result is None:
                probe.result = unknown(probe.job, Evidence.ERROR, f"send failed: {exc}")
            self._outstanding -= 1
        return 1

    def _on_answer(self, sender: _Sender, kind: pk.Kind, key: pk.Key, extra: int, now: float) -> None:
        attempt = sender.inflight.get(key)
        if attempt is None or attempt.answered:
            return
        if (kind is pk.Kind.SYN_ACK or kind is pk.Kind.RST) and attempt.ack != extra:
            return  # not an answer to this SYN (stale or foreign)
        attempt.answered = True
        probe = attempt.probe
        if probe is None:
            return  # a warm-up echo
        if attempt.canary:
            sender.passes[attempt.pass_no - 1].trials += 1
            self._pacer.answered(now - attempt.sent_at)
            if attempt.pass_no == self._pass:
                self._outstanding -= 1
            return
        if probe.result is not None:
            return
        for silent in probe.silent_passes:  # it is allowed: each pass it ended silent in lost it
            sender.passes[silent - 1].lost += 1
            sender.passes[silent - 1].trials += 1
            self._recovered += 1
        if attempt.pass_no not in probe.silent_passes:
            sender.passes[attempt.pass_no - 1].trials += 1
        probe.result = answered(probe.job, kind, extra, now - attempt.sent_at, key)
        if kind is pk.Kind.SYN_ACK and probe.job.protocol is ProbeProtocol.TCP:
            self._pool.setdefault(id(sender), []).append(probe)  # a path the pilot canaries may re-probe
        if probe.last_pass == self._pass:
            self._outstanding -= 1

    def _settle(self, todo: list[_Probe], canaries: list[_Attempt], pass_no: int) -> int:
        """What this pass showed: silent canaries are losses, silent probes remember the pass. Returns the
        number of silent canaries."""
        silent = 0
        for attempt in canaries:
            if not attempt.answered:
                loss = attempt.probe.sender.passes[pass_no - 1]  # type: ignore[union-attr]
                loss.lost += 1
                loss.trials += 1
                silent += 1
        for probe in todo:
            if probe.result is None:
                probe.silent_passes.append(pass_no)
        return silent

    def _remember(self, senders: list[_Sender]) -> None:
        """Fold this run's passes into each send point's history at their pace (for later runs)."""
        now = time.monotonic()
        for sender in senders:
            for loss in sender.passes:
                if loss.trials:
                    self.loss.setdefault((sender.point, rate_octave(loss.pace)), LossEstimate()).record(
                        loss.lost, loss.trials, now)

    def _decide(self, silent: list[_Probe], timeout: float, passes: int) -> list[_Probe]:
        """Call what has been silent long enough; return what needs another pass."""
        again = []
        rates: dict[int, list[float]] = {}  # per sender: each pass's loss rate (computed once, not per probe)
        # Probes of one sender silent in the same passes after as many attempts share their chance and wording.
        groups: dict[tuple[int, tuple[int, ...], int, bool], tuple[Verdict | None, str]] = {}
        for probe in silent:
            sender = probe.sender
            assert sender is not None
            key = (id(sender), tuple(probe.silent_passes), probe.attempts, probe.needs_confirmation)
            decision = groups.get(key)
            if decision is None:
                per_pass = rates.get(id(sender))
                if per_pass is None:
                    per_pass = rates[id(sender)] = pass_rates(sender.passes)
                decision = groups[key] = self._decision(probe, silence_chance(per_pass[k - 1] for k in key[1]),
                                                        timeout, passes)
            verdict, detail = decision
            if verdict is None:
                again.append(probe)
            elif verdict is Verdict.DENIED:
                probe.result = ProbeResult(probe.job, Verdict.DENIED, Evidence.NO_ANSWER_TARGET_ALIVE, detail)
            else:
                probe.result = unknown(probe.job, Evidence.UNCONFIRMED, detail)
                self.stats["unconfirmed"] = self.stats.get("unconfirmed", 0) + 1
        return again

    @staticmethod
    def _decision(probe: _Probe, chance: float, timeout: float, passes: int) -> tuple[Verdict | None, str]:
        """The rule (see `loss`): denied once silence is conclusive after MIN_ATTEMPTS, unknown after
        MAX_ATTEMPTS, else None (another pass)."""
        deny = not probe.needs_confirmation or (probe.attempts >= MIN_ATTEMPTS and chance <= EPSILON)
        if not deny and probe.attempts < MAX_ATTEMPTS:
            return None, ""
        window = f"{probe.attempts} probes over {passes} passes, {timeout:g}s wait each"
        if deny:
            return Verdict.DENIED, (f"no answer to {window}; {_alive(probe)}; an allowed path would have stayed "
                                    f"silent with p <= {chance:.1e}")
        return Verdict.UNKNOWN, (f"no answer to {window}, but answers are going missing here (an allowed path "
                                 f"would have stayed silent with p ~ {chance:.1e}): not confirmed as a drop")


def pass_rates(passes: list[_PassLoss]) -> list[float]:
    """Each pass's loss rate, the earlier passes of the run weighing in (see `loss.pass_loss`)."""
    return [loss.rate(earlier_loss(passes[:k])) for k, loss in enumerate(passes)]


def _alive(probe: _Probe) -> str:
    """What showed the target alive: its answer to ARP, or to neighbour discovery (IPv6)."""
    return "neighbour discovery answered" if len(probe.dst) == 16 else "ARP answered"


def earlier_loss(passes: list[_PassLoss]) -> float:
    lost, trials = sum(p.lost for p in passes), sum(p.trials for p in passes)
    return lost / trials if lost and trials else 0.0


def socket_drops(senders: Iterable[_Sender]) -> dict[_Sender, int]:
    """Frames each sender's socket dropped since the last call (PACKET_STATISTICS resets on reading)."""
    out = {}
    for sender in senders:
        try:
            _packets, dropped = struct.unpack("II", sender.sock.getsockopt(  # type: ignore[union-attr]
                SOL_PACKET, PACKET_STATISTICS, 8))
        except (OSError, AttributeError):
            dropped = 0
        out[sender] = dropped
    return out


def silent_probes(todo: list[_Probe], sender: _Sender) -> list[_Probe]:
    return [p for p in todo if p.sender is sender]


class _Frames:
    """Builds each attempt's frame from a per-target template, with a fresh source port (or ICMP id)."""

    def __init__(self, allocator: SourcePortAllocator) -> None:
        self.allocator = allocator
        self._tcp: dict[tuple[int, bytes, int], pk6.TcpSyn] = {}
        self._udp: dict[tuple[int, bytes, int], pk6.Udp] = {}
        self._icmp: dict[tuple[int, bytes], pk6.IcmpEcho] = {}

    def build(self, sender: _Sender, probe: _Probe, canary: bool) -> tuple[pk.Key, _Attempt]:
        dst, proto, port = probe.dst, probe.job.protocol, probe.job.dst_port or 0
        mac = sender.neighbours[dst]
        if proto is ProbeProtocol.TCP:
            cached = probe.tcp  # each re-probe and canary of a probe reuses its key and template (the hot path)
            if cached is None:
                tcp = self._tcp.get((id(sender), dst, port))
                if tcp is None:
                    tcp = self._tcp[(id(sender), dst, port)] = pk6.tcp_syn_template(sender.mac, mac, sender.ip, dst, port)
                cached = probe.tcp = ((sender.ip, dst, port, pk.IPPROTO_TCP), tcp)
            sport = self.allocator.allocate(cached[0])
            tcp = cached[1]
            seq = random.getrandbits(32)
            return (pk.IPPROTO_TCP, dst, port, sport), _Attempt(probe, tcp.frame(sport, seq), (seq + 1) & 0xFFFFFFFF,
                                                                canary)
        if proto is ProbeProtocol.UDP:
            sport = self.allocator.allocate((sender.ip, dst, port, pk.IPPROTO_UDP))
            udp = self._udp.get((id(sender), dst, port))
            if udp is None:
                udp = self._udp[(id(sender), dst, port)] = pk6.udp_template(sender.mac, mac, sender.ip, dst, port)
            return (pk.IPPROTO_UDP, dst, port, sport), _Attempt(probe, udp.frame(sport), canary=canary)
        ident = self.allocator.allocate((sender.ip, dst, None, pk.IPPROTO_ICMP))
        icmp = self._icmp.get((id(sender), dst))
        if icmp is None:
            icmp = self._icmp[(id(sender), dst)] = pk6.echo_template(sender.mac, mac, sender.ip, dst)
        return (pk.IPPROTO_ICMP, dst, ident, 1), _Attempt(probe, icmp.frame(ident, 1), canary=canary)


def _interleave(items: list[tuple[_Probe, bool]], canaries: list[tuple[_Probe, bool]]) -> list[tuple[_Probe, bool]]:
    """Canaries spread through the pass, so they see the loss its whole length sees."""
    if not canaries:
        return items
    step = max(1, len(items) // len(canaries))
    out: list[tuple[_Probe, bool]] = []
    rest = iter(canaries)
    for n, item in enumerate(items):
        if n % step == 0:
            out.extend(c for c in (next(rest, None),) if c is not None)
        out.append(item)
    out.extend(rest)
    return out


def _send(sender: _Sender, frame: bytes) -> None:
    sender.sock.send(frame)  # type: ignore[union-attr]


def _mark_answered(sender: _Sender, kind: pk.Kind, key: pk.Key, extra: int, now: float) -> None:
    attempt = sender.inflight.get(key)
    if attempt is not None:
        attempt.answered = True


def _ignore(sender: _Sender, kind: pk.Kind, key: pk.Key, extra: int, now: float) -> None:
    return None


class _Poller:
    """One epoll over every sender's socket: ARP replies fill `neighbours`, probe answers go to `on_answer`."""

    def __init__(self, senders: Iterable[_Sender], on_answer: AnswerHandler = _ignore) -> None:
        self._epoll = select.epoll()
        self._by_fd: dict[int, _Sender] = {}
        for sender in senders:
            if sender.sock is not None:
                self._epoll.register(sender.sock.fileno(), select.EPOLLIN)
                self._by_fd[sender.sock.fileno()] = sender
        self._buf = bytearray(65536)
        self._view = memoryview(self._buf)
        self._on_answer = on_answer

    @staticmethod
    def sender_of(attempt: _Attempt) -> _Sender:
        assert attempt.probe is not None and attempt.probe.sender is not None
        return attempt.probe.sender

    def close(self) -> None:
        self._epoll.close()

    def pump_until(self, deadline: float, done: Callable[[], bool]) -> None:
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
        parse, on_answer = pk.parse_answer if len(sender.ip) == 4 else pk6.parse_answer6, self._on_answer
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
            if n >= 14 and buf[12] == 0x86 and buf[13] == 0xDD and ndp.is_advertisement(frame):
                advert = ndp.parse_advertisement(frame, sender.ip)
                if advert is not None and advert[0] not in sender.neighbours:
                    sender.neighbours[advert[0]] = advert[1]
                continue
            if not sender.inflight:
                continue
            answer = parse(frame)
            if answer is not None:
                kind, key, extra = answer
                on_answer(sender, kind, key, extra, time.monotonic())


def _pace(t0: float, n: int, interval: float, poller: _Poller) -> None:
    """Wait (draining sockets) until frame n is due."""
    while True:
        wait = t0 + n * interval - time.monotonic()
        if wait <= 0:
            return
        poller.poll(wait)
