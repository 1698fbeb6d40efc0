"""Finding a workload's network namespace on a real node (the DaemonSet runs with hostPID).

Pods: the namespace that has the attachment's interface (`net1`) with the attachment's MAC or IPv4 address.
VMs (KubeVirt bridge binding): the namespace of the `virt-launcher` process started with `--name <vm>
--namespace <ns>`; probes go out on its `k6t-` bridge with the guest's MAC and IP.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import time
from pathlib import Path

from ..core.model import Attachment, AttachmentKind, Endpoint
from ..core.probe import SendPoint
from .netns import run_in_netns

SIOCGIFHWADDR = 0x8927
SIOCGIFADDR = 0x8915


def _interfaces() -> dict[str, tuple[str | None, str | None]]:
    """name -> (MAC, IPv4) of every interface of the calling thread's namespace."""
    out: dict[str, tuple[str | None, str | None]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            packed = struct.pack("256s", name.encode()[:15])
            try:
                mac = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, packed)[18:24].hex(":")
            except OSError:
                mac = None
            try:
                ip: str | None = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, packed)[20:24])
            except OSError:
                ip = None
            out[name] = (mac, ip)
    return out


class NodeLocator:
    def __init__(self, proc: Path = Path("/proc"), cache_seconds: float = 30.0):
        self.proc = proc
        self.cache_seconds = cache_seconds
        self._cache: tuple[float, dict[str, dict[str, tuple[str | None, str | None]]]] | None = None

    def _namespaces(self) -> dict[str, dict[str, tuple[str | None, str | None]]]:
        """One path per distinct network namespace of the node -> its interfaces (cached briefly)."""
        now = time.monotonic()
        if self._cache is not None and now - self._cache[0] < self.cache_seconds:
            return self._cache[1]
        seen: dict[tuple[int, int], str] = {}
        for entry in self.proc.iterdir():
            if not entry.name.isdigit():
                continue
            path = entry / "ns" / "net"
            try:
                st = os.stat(path)
            except OSError:
                continue
            seen.setdefault((st.st_dev, st.st_ino), str(path))
        found = {}
        for path in seen.values():
            try:
                found[path] = run_in_netns(path, _interfaces, timeout=5.0)
            except Exception:  # noqa: BLE001 - a process that exited meanwhile
                continue
        self._cache = (now, found)
        return found

    def _launcher(self, attachment: Attachment) -> str | None:
        for entry in self.proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not argv or not argv[0].endswith(b"virt-launcher"):
                continue
            args = [a.decode(errors="replace") for a in argv]
            if _arg(args, "--name") == attachment.ref.name and _arg(args, "--namespace") == attachment.ref.namespace:
                return str(entry / "ns" / "net")
        return None

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        if not isinstance(endpoint, Attachment) or endpoint.ip is None:
            return None
        if endpoint.kind is AttachmentKind.VM:
            path = self._launcher(endpoint)
            if path is None or endpoint.mac is None:
                return None
            ifaces = self._namespaces().get(path) or run_in_netns(path, _interfaces, timeout=5.0)
            bridge = next((n for n in sorted(ifaces) if n.startswith("k6t-")), None)
            return SendPoint(path, bridge, endpoint.ip, endpoint.mac) if bridge else None
        for path, ifaces in self._namespaces().items():
            for name, (mac, ip) in ifaces.items():
                if endpoint.interface and name != endpoint.interface:
                    continue
                if (endpoint.mac and mac == endpoint.mac) or (ip is not None and ip == str(endpoint.ip)):
                    return SendPoint(path, name, endpoint.ip, mac)
        return None

    def application_netns(self, endpoint: Endpoint) -> str | None:
        """A pod's own namespace; None for a VM, whose sockets live in the guest, out of this node's reach."""
        if isinstance(endpoint, Attachment) and endpoint.kind is AttachmentKind.VM:
            return None
        point = self.send_point(endpoint)
        return point.netns if point is not None else None


def _arg(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None
