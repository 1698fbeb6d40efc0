"""Which liveness checks an agent runs: its node's ovs-vswitchd and ovn-controller, and each external endpoint's
service, asked from a local workload that the declared policies let reach it (never from one they deny: the
answer would say nothing about the service)."""

from __future__ import annotations


from ..adapters.liveness import CHECK_INTERVAL, EndpointCheck, LivenessMonitor
from ..core.enforcement import DEFAULT_PROFILE, OvnkProfile
from ..core.model import Attachment, Protocol, Verdict
from ..core.reachability import NetworkReachability
from ..core.sources import Locator, Sources
from .declared import DeclaredSource

ENDPOINT_CHECK_SECONDS = 30.0  # a real connection to someone's service: not too often


class EndpointChecks:
    """One check per external endpoint with a declared TCP port that a workload of this node may reach there;
    recomputed when the declared state changes."""

    def __init__(self, declared: DeclaredSource, locator: Locator | None, profile: OvnkProfile = DEFAULT_PROFILE,
                 interval: float = ENDPOINT_CHECK_SECONDS):
        self.declared, self.locator, self.profile, self.interval = declared, locator, profile, interval
        self._generation: int | None = None
        self._checks: list[EndpointCheck] = []

    def _netns(self, attachment: Attachment) -> str | None:
        """The namespace whose own sockets speak for the workload (a VM's guest, not its launcher)."""
        return self.locator.application_netns(attachment) if self.locator is not None else None

    def __call__(self) -> list[EndpointCheck]:
        if not self.declared.synced():
            return []
        generation = self.declared.generation()
        if generation == self._generation:
            return self._checks
        inventory, _ = self.declared.inventory()
        checks: dict[str, EndpointCheck] = {}
        for network in sorted(inventory.networks):
            reach: NetworkReachability | None = None
            vantages = [(a, ns) for a in inventory.attachments_on(network) if (ns := self._netns(a)) is not None]
            for endpoint in inventory.externals_on(network):
                name = f"ext:{endpoint.name}"
                if name in checks or endpoint.ip is None:
                    continue
                for port in (p.port for p in endpoint.ports if p.protocol is Protocol.TCP):
                    for attachment, netns in vantages:
                        reach = reach or NetworkReachability(inventory, network, profile=self.profile)
                        if reach.judge(attachment, endpoint, port, Protocol.TCP).verdict is Verdict.ALLOWED:
                            checks[name] = EndpointCheck(name, netns, str(endpoint.ip), port,
                                                         endpoint.check_for(port, Protocol.TCP),
                                                         interval=self.interval)
                            break
                    if name in checks:
                        break
        self._generation, self._checks = generation, list(checks.values())
        return self._checks


def agent_liveness(sources: Sources, declared: DeclaredSource, profile: OvnkProfile = DEFAULT_PROFILE, *,
                   interval: float = CHECK_INTERVAL, endpoint_interval: float = ENDPOINT_CHECK_SECONDS
                   ) -> LivenessMonitor:
    """The node's daemons (as its sources find them) and the external endpoints' services."""
    daemons = sources.daemon_checks()
    endpoints = EndpointChecks(declared, sources.locator(), profile, endpoint_interval)
    return LivenessMonitor(lambda: [*daemons, *endpoints()], interval)
