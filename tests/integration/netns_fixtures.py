"""A small probing topology in throw-away network namespaces (nothing is added to the root namespace).

    cli (pod-like, 10.99.0.10) ─┐
    srv (server,   10.99.0.20) ─┼─ br0 in `mid`
    vml (virt-launcher-like) ───┘   pod1 ── k6t-pod1 ── tap0 ══ eth0 in `gst` (the "guest", 10.99.0.30)

The server listens on TCP and UDP ports; its "firewall" is policy routing (`ip rule ... blackhole` ahead of the
local table), because this kernel has no tc actions and nft is not installed: blackholed packets vanish
silently, like an OVN drop ACL. 10.99.0.99 does not exist.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from segcheck.agent.adapters import netns
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import ProbeJob, ProbeProtocol, SendPoint

SUBNET = "10.99.0.0/24"
CLIENT_IP, SERVER_IP, GUEST_IP, DEAD_IP = (ipaddress.IPv4Address(f"10.99.0.{n}") for n in (10, 20, 30, 99))
GUEST_MAC = "02:5c:00:00:00:30"
TCP_OPEN, TCP_BLOCKED, TCP_CLOSED = 8080, 8081, 8082  # listener / blackholed / no listener (RST)
UDP_ECHO, UDP_BLOCKED, UDP_CLOSED = 5353, 5354, 5355  # echo / blackholed / no listener (port unreachable)
GUEST_TCP = 2222
BULK_ALLOWED = range(1024, 2048)  # no listener: RST, i.e. allowed
BULK_DENIED = range(2048, 3072)  # blackholed


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _in(ns: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *args], check=True, capture_output=True, timeout=10)


@dataclass
class Topology:
    prefix: str
    namespaces: list[str] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    @property
    def client(self) -> SendPoint:
        """Pod-like: the namespace owns the IP; its kernel RSTs the SYN-ACKs."""
        return SendPoint(self.ns("cli"), "eth0", CLIENT_IP)

    @property
    def vm(self) -> SendPoint:
        """VM-like: send on the k6t- bridge of the launcher namespace with the guest's MAC and IP."""
        return SendPoint(self.ns("vml"), "k6t-pod1", GUEST_IP, GUEST_MAC)

    def expected(self, job: ProbeJob) -> Verdict:
        """What the topology's firewall says about a job."""
        if job.dst_ip == DEAD_IP or not (job.dst_ip in (SERVER_IP, GUEST_IP, CLIENT_IP)):
            return Verdict.UNKNOWN
        if job.dst_ip != SERVER_IP:
            return Verdict.ALLOWED
        if job.protocol is ProbeProtocol.ICMP:
            return Verdict.DENIED if job.source.ip == GUEST_IP else Verdict.ALLOWED
        if job.protocol is ProbeProtocol.TCP:
            blocked = job.dst_port == TCP_BLOCKED or job.dst_port in BULK_DENIED
        else:
            blocked = job.dst_port == UDP_BLOCKED
        return Verdict.DENIED if blocked else Verdict.ALLOWED

    def cells(self) -> list[ProbeJob]:
        """One job per interesting cell, from both send points."""
        jobs = []
        for point, kind in ((self.client, "pod"), (self.vm, "vm")):
            for proto, port in ((ProbeProtocol.TCP, TCP_OPEN), (ProbeProtocol.TCP, TCP_BLOCKED),
                                (ProbeProtocol.TCP, TCP_CLOSED), (ProbeProtocol.UDP, UDP_ECHO),
                                (ProbeProtocol.UDP, UDP_BLOCKED), (ProbeProtocol.UDP, UDP_CLOSED),
                                (ProbeProtocol.ICMP, None)):
                jobs.append(ProbeJob(point, SERVER_IP, port, proto, tag=f"{kind}->srv {proto.value}/{port}"))
            jobs.append(ProbeJob(point, DEAD_IP, TCP_OPEN, ProbeProtocol.TCP, tag=f"{kind}->dead TCP"))
            jobs.append(ProbeJob(point, DEAD_IP, None, ProbeProtocol.ICMP, tag=f"{kind}->dead ICMP"))
        jobs.append(ProbeJob(self.client, GUEST_IP, GUEST_TCP, ProbeProtocol.TCP, tag="pod->vm TCP"))
        jobs.append(ProbeJob(self.vm, CLIENT_IP, 9, ProbeProtocol.TCP, tag="vm->pod TCP"))
        return jobs

    def bulk(self, count: int, point: SendPoint | None = None) -> list[ProbeJob]:
        """`count` TCP probes, half to allowed and half to blackholed ports, spread over 2048 ports."""
        point = point or self.client
        ports = [p for pair in zip(BULK_ALLOWED, BULK_DENIED) for p in pair]
        return [ProbeJob(point, SERVER_IP, ports[i % len(ports)], ProbeProtocol.TCP) for i in range(count)]

    # -- life cycle -------------------------------------------------------------------------------------------

    def build(self) -> Topology:
        for role in ("mid", "cli", "srv", "vml", "gst"):
            _ip("netns", "add", self.ns(role))
            self.namespaces.append(self.ns(role))
            _ip("-n", self.ns(role), "link", "set", "lo", "up")
        mid, vml = self.ns("mid"), self.ns("vml")
        _ip("-n", mid, "link", "add", "br0", "type", "bridge")
        _ip("-n", vml, "link", "add", "k6t-pod1", "type", "bridge")
        veths = [  # (ns, name, peer ns, peer name, bridge of the first end)
            (mid, "c0", self.ns("cli"), "eth0", "br0"),
            (mid, "s0", self.ns("srv"), "eth0", "br0"),
            (mid, "v0", vml, "pod1", "br0"),
            (vml, "tap0", self.ns("gst"), "eth0", "k6t-pod1"),
        ]
        for ns, name, peer_ns, peer, bridge in veths:
            _ip("-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer, "netns", peer_ns)
            _ip("-n", ns, "link", "set", name, "master", bridge)
        _ip("-n", vml, "link", "set", "pod1", "master", "k6t-pod1")
        _ip("-n", self.ns("gst"), "link", "set", "eth0", "address", GUEST_MAC)
        for ns, addr in (("cli", CLIENT_IP), ("srv", SERVER_IP), ("gst", GUEST_IP)):
            _ip("-n", self.ns(ns), "addr", "add", f"{addr}/24", "dev", "eth0")
        for ns, name, peer_ns, peer, _b in veths:
            for n, i in ((ns, name), (peer_ns, peer)):
                _in(n, "ethtool", "-K", i, "tx", "off")  # checksum offload off, as in the real lab
                _ip("-n", n, "link", "set", i, "up")
        _ip("-n", mid, "link", "set", "br0", "up")
        _ip("-n", vml, "link", "set", "k6t-pod1", "up")
        srv = self.ns("srv")
        for rule in (["ipproto", "tcp", "dport", str(TCP_BLOCKED)],
                     ["ipproto", "tcp", "dport", f"{BULK_DENIED.start}-{BULK_DENIED.stop - 1}"],
                     ["ipproto", "udp", "dport", str(UDP_BLOCKED)],
                     ["ipproto", "icmp", "from", str(GUEST_IP)]):
            _ip("-n", srv, "rule", "add", "pref", "10", *rule, "blackhole")
        _ip("-n", srv, "rule", "add", "pref", "100", "lookup", "local")
        _ip("-n", srv, "rule", "del", "pref", "0", "lookup", "local")
        self._listen(srv, SERVER_IP, [TCP_OPEN, TCP_BLOCKED], [UDP_ECHO, UDP_BLOCKED])
        self._listen(self.ns("gst"), GUEST_IP, [GUEST_TCP], [])
        return self

    def _listen(self, ns: str, ip: ipaddress.IPv4Address, tcp: list[int], udp: list[int]) -> None:
        for port in tcp:
            sock = netns.open_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((str(ip), port))
            sock.listen(4096)  # never accepted: probes are half-open and end with the client's RST
            self._sockets.append(sock)
        for port in udp:
            sock = netns.open_socket(ns, socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((str(ip), port))
            sock.settimeout(0.1)
            self._sockets.append(sock)
            thread = threading.Thread(target=self._echo, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _echo(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(2048)
                sock.sendto(data, peer)
            except (TimeoutError, OSError):
                continue

    def destroy(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in self._sockets:
            sock.close()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)
        self.namespaces.clear()


def topology() -> Iterator[Topology]:
    """Generator for a pytest fixture: build, yield, always remove (also when building fails half-way)."""
    topo = Topology(prefix=f"scp{os.getpid() % 10000}{secrets.token_hex(2)}")
    try:
        yield topo.build()
    finally:
        topo.destroy()
