"""Where probes leave from in the lab: the same send points a node would use (pod namespace and `net1`;
for a VM the virt-launcher namespace and its `k6t-` bridge with the guest's MAC/IP), plus the physical hosts."""

from __future__ import annotations

from ..core.model import Attachment, Endpoint, ExternalEndpoint
from ..core.probe import SendPoint
from .lab import Lab


class LabLocator:
    def __init__(self, lab: Lab):
        self.lab = lab
        self._names = set(lab.topology.names())

    def host_name(self, endpoint: Endpoint) -> str | None:
        if isinstance(endpoint, Attachment):
            name = endpoint.ref.name
        elif isinstance(endpoint, ExternalEndpoint):
            name = endpoint.name
        else:
            return None
        return name if name in self._names else None

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        name = self.host_name(endpoint)
        return self.lab.send_point(name) if name is not None else None

    def application_netns(self, endpoint: Endpoint) -> str | None:
        """The namespace whose own sockets speak for the endpoint (a VM's guest, a pod's namespace)."""
        name = self.host_name(endpoint)
        return self.lab.netns(name) if name is not None else None
