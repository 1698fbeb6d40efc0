"""Finding a local workload's network namespace by its OVS identity, never by its address.

From the workload's logical switch port to the namespace that holds its interface:

1. OVS: the br-int Interface whose `external_ids:iface-id` is the workload's logical switch port (a VM's: its
   virt-launcher pod's). None: not on this node; several: ambiguous.
2. That Interface is the host side of a veth in the namespace OVS runs in; netlink gives its peer's ifindex and
   the id this namespace has for the peer's namespace (IFLA_LINK_NETNSID).
3. The namespace whose id (RTM_GETNSID, asked from the OVS namespace) is that one, among the node's namespaces
   (`/run/netns`, `/proc/*/ns/net`); its link with that ifindex must point back to the host side.
4. Cross-checks: the interface name the attachment declares (`net1`), and its MAC against the declared one and
   OVS's `external_ids:attached_mac`. A VM's pod interface must sit in KubeVirt's `k6t-` bridge, from which
   probes leave with the guest's MAC and IP.

Anything not positively identified is `None` with the reason (`locate`): no probe is ever sent from a namespace
that merely holds the same address (secondary networks overlap).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..core.model import Attachment, AttachmentKind, Endpoint, IPAddress
from ..core.northbound import OvsSnapshot
from ..core.ovs_identity import INTEGRATION_BRIDGE, workload_ports
from ..core.probe import SendPoint
from . import netlink
from .netns import NETNS_RUN_DIR, netns_path

KUBEVIRT_BRIDGE_PREFIX = "k6t-"
DEFAULT_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Location:
    """Where a workload is on this node, or why it is not positively identified."""

    point: SendPoint | None
    netns: str | None  # the namespace holding the workload's interface (a VM's: its launcher pod's)
    reason: str  # how it was identified, or why not

    @property
    def found(self) -> bool:
        return self.point is not None


def _missing(reason: str) -> Location:
    return Location(None, None, reason)


def node_namespaces(run_dir: Path = Path(NETNS_RUN_DIR), proc: Path = Path("/proc")) -> list[str]:
    """One path per distinct network namespace: named ones (`/run/netns`) first, then every process's."""
    candidates = sorted(str(p) for p in run_dir.glob("*")) if run_dir.is_dir() else []
    candidates += [str(entry / "ns" / "net") for entry in proc.iterdir() if entry.name.isdigit()]
    seen: dict[tuple[int, int], str] = {}
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue  # a process that exited, a namespace deleted meanwhile
        seen.setdefault((st.st_dev, st.st_ino), path)
    return list(seen.values())


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(netns_path(path))
    except OSError:
        return None
    return st.st_dev, st.st_ino


class OvsLocator:
    """A node's workloads by OVS identity. `ovs` reads the node's OVS (None: unreadable now); `ovs_netns` is the
    namespace ovs-vswitchd's ports live in; `namespaces` lists the node's namespaces to look for peers in."""

    def __init__(self, ovs: Callable[[], OvsSnapshot | None], ovs_netns: str,
                 namespaces: Callable[[], Iterable[str]] = node_namespaces, bridge: str = INTEGRATION_BRIDGE,
                 cache_seconds: float = DEFAULT_CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ovs, self.ovs_netns, self.namespaces, self.bridge = ovs, ovs_netns, namespaces, bridge
        self.cache_seconds, self.clock = cache_seconds, clock
        self._cache: dict[tuple[str, str, str | None, str | None], tuple[float, Location]] = {}
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}  # namespace path -> the id OVS's namespace has for it
        self._ids_at = float("-inf")

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        return self.locate(endpoint).point

    def application_netns(self, endpoint: Endpoint) -> str | None:
        """A pod's own namespace; None for a VM, whose sockets live in the guest, out of this node's reach."""
        if isinstance(endpoint, Attachment) and endpoint.kind is AttachmentKind.VM:
            return None
        return self.locate(endpoint).netns

    def why_not(self, endpoint: Endpoint) -> str | None:
        """Why probes cannot be sent as `endpoint` here (None: they can)."""
        location = self.locate(endpoint)
        return None if location.found else location.reason

    def locate(self, endpoint: Endpoint) -> Location:
        if not isinstance(endpoint, Attachment):
            return _missing("not a pod or VM: no OVS port on any node")
        key = (str(endpoint.network), endpoint.key, endpoint.mac, str(endpoint.ip))  # one pod, several networks
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.cache_seconds:
                return hit[1]
        location = self._locate(endpoint)
        with self._lock:
            self._cache[key] = (now, location)
        return location

    def _locate(self, att: Attachment) -> Location:
        ip = att.ip
        if ip is None:
            return _missing(f"{att.key} has no address to probe from")
        try:
            ovs = self.ovs()
        except Exception as exc:  # noqa: BLE001 - an unreadable OVS identifies nothing
            return _missing(f"OVS cannot be read: {exc}")
        if ovs is None:
            return _missing("OVS cannot be read")
        ports = workload_ports(att, ovs, self.bridge)
        if not ports:
            return _missing(f"no {self.bridge} interface bound to {att.key}'s logical switch port on this node")
        if len(ports) > 1:
            return _missing(f"ambiguous: {len(ports)} {self.bridge} interfaces bound to {att.key}'s logical switch "
                            f"ports ({', '.join(f'{p.interface}={p.lsp}' for p in ports)})")
        port = ports[0]
        try:
            return self._follow(att, ip, port.interface, port.lsp, ovs.attached_macs.get(port.interface))
        except (OSError, TimeoutError) as exc:
            return _missing(f"cannot follow {port.interface} to its namespace: {exc}")

    def _namespaces_with_id(self, nsid: int) -> list[str]:
        """The node's namespaces that OVS's namespace knows by `nsid`. The id map is shared by every lookup for
        the cache period; each match is confirmed afresh (a cached path may name another namespace by now: its
        process gone, the PID reused), and a miss reads the map again (a pod started meanwhile)."""
        for refresh in (False, True):
            paths = [path for path, found in self._id_map(refresh).items() if found == nsid]
            confirmed = [path for path, found in netlink.namespace_ids(self.ovs_netns, paths).items() if found == nsid]
            if confirmed:
                return confirmed
        return []

    def _id_map(self, refresh: bool) -> dict[str, int]:
        now = self.clock()
        with self._lock:
            if not refresh and now - self._ids_at < self.cache_seconds:
                return self._ids
        own = _inode(self.ovs_netns)
        known = netlink.namespace_ids(self.ovs_netns, [p for p in self.namespaces() if _inode(p) != own])
        with self._lock:
            self._ids, self._ids_at = known, now
        return known

    def _follow(self, att: Attachment, ip: IPAddress, interface: str, lsp: str, attached_mac: str | None) -> Location:
        host = next((link for link in netlink.links(self.ovs_netns).values() if link.name == interface), None)
        if host is None:
            return _missing(f"OVS interface {interface} ({lsp}) does not exist in OVS's namespace")
        if host.kind != "veth" or host.peer_index is None or host.peer_netnsid is None:
            return _missing(f"OVS interface {interface} ({lsp}) is not a veth into another namespace")
        matches = self._namespaces_with_id(host.peer_netnsid)
        if len(matches) != 1:
            return _missing(f"the peer namespace of {interface} (nsid {host.peer_netnsid}) is "
                            + ("not among this node's namespaces" if not matches else f"ambiguous: {matches}"))
        ns = matches[0]
        peer_links = netlink.links(ns)
        peer = peer_links.get(host.peer_index)
        if peer is None or peer.peer_index != host.index:
            return _missing(f"{ns} has no link pointing back to {interface}")
        declared = att.mac.lower() if att.mac else None
        if declared and attached_mac and declared != attached_mac:
            return _missing(f"{att.key}: declared MAC {declared} but OVS attached {attached_mac} on {interface}")
        mac = declared or attached_mac
        if att.kind is AttachmentKind.VM:
            bridge = peer_links.get(peer.master) if peer.master is not None else None
            if bridge is None or bridge.kind != "bridge" or not bridge.name.startswith(KUBEVIRT_BRIDGE_PREFIX):
                return _missing(f"{att.key}: the launcher's {peer.name} in {ns} is not in a KubeVirt "
                                f"{KUBEVIRT_BRIDGE_PREFIX} bridge")
            if mac is None:
                return _missing(f"{att.key}: the VM's MAC is not known (VMI status, OVS attached_mac)")
            return Location(SendPoint(ns, bridge.name, ip, mac), ns,
                            f"{lsp} on {interface}, launcher namespace {ns}, bridge {bridge.name}")
        if att.interface and peer.name != att.interface:
            return _missing(f"{att.key}: the peer of {interface} in {ns} is {peer.name}, not {att.interface}")
        if mac and peer.mac != mac:
            return _missing(f"{att.key}: {peer.name} in {ns} has MAC {peer.mac}, expected {mac}")
        return Location(SendPoint(ns, peer.name, ip, peer.mac), ns, f"{lsp} on {interface}, peer {peer.name} in {ns}")


__all__ = ["KUBEVIRT_BRIDGE_PREFIX", "Location", "OvsLocator", "node_namespaces"]
