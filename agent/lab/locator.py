"""Where probes leave from in the lab: found the way a node finds them, by OVS identity (`OvsLocator`: the br-int
Interface bound to the workload's logical switch port, followed through its veth), never by name or address;
plus the physical hosts, which the lab itself made (they have no OVS port)."""

from __future__ import annotations

import os
from typing import Callable

from ..adapters.ovs_locator import DEFAULT_CACHE_SECONDS, Location, OvsLocator
from ..adapters.ovsdb import OvsReader
from ..core.model import Attachment, AttachmentKind, Endpoint, ExternalEndpoint
from ..core.northbound import OvsSnapshot
from ..core.probe import SendPoint
from .lab import Lab


def _same_namespace(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(Lab.netns_path(a) if "/" not in a else a), os.stat(Lab.netns_path(b) if "/" not in b else b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


class LabLocator:
    """The workloads of one lab (a one-node lab, or one node of a cluster) and the physical hosts it made (a
    cluster node has none: they live on the segment, where no node's agent probes from)."""

    def __init__(self, lab: Lab, ovs: Callable[[], OvsSnapshot | None] | None = None,
                 cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        self.lab = lab
        self._reader: OvsReader | None = None
        self.workloads = OvsLocator(ovs or self._read_ovs, lab.ovs_netns, cache_seconds=cache_seconds)

    def _read_ovs(self) -> OvsSnapshot:
        if self._reader is None:
            self._reader = OvsReader(self.lab.ovs_url)
        return self._reader.snapshot()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _host(self, endpoint: Endpoint) -> str | None:
        if not isinstance(endpoint, ExternalEndpoint):
            return None
        return endpoint.name if endpoint.name in {h.name for h in self.lab.topology.hosts} else None

    def locate(self, endpoint: Endpoint) -> Location:
        host = self._host(endpoint)
        if host is not None:
            point = self.lab.send_point(host)
            return Location(point, point.netns, f"physical host {host} of the lab")
        return self.workloads.locate(endpoint)

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        return self.locate(endpoint).point

    def why_not(self, endpoint: Endpoint) -> str | None:
        location = self.locate(endpoint)
        return None if location.found else location.reason

    def application_netns(self, endpoint: Endpoint) -> str | None:
        """The namespace whose own sockets speak for the endpoint: a pod's, a physical host's, or the guest of a
        VM whose launcher namespace was identified as that VM's."""
        location = self.locate(endpoint)
        if location.netns is None:
            return None
        if isinstance(endpoint, Attachment) and endpoint.kind is AttachmentKind.VM:
            vm = endpoint.ref.name
            if vm in {v.name for v in self.lab.topology.vms} and _same_namespace(location.netns,
                                                                                self.lab.launcher_netns(vm)):
                return self.lab.netns(vm)
            return None
        return location.netns
