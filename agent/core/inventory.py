"""The declared world: everything parsed from manifests or the Kubernetes API, indexed for lookups."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Attachment, ExternalEndpoint, IPAddress, NamespaceInfo, Network, Ref
from .policy import Policy


@dataclass(frozen=True)
class SkippedObject:
    """A valid object of a kind that does not bear on secondary networks (a Service, a NetworkPolicy...)."""

    source: str
    kind: str
    ref: Ref


@dataclass
class Inventory:
    """`networks` holds one entry per network, keyed by its first NAD (see Network); `nads` every NAD."""

    networks: dict[Ref, Network] = field(default_factory=dict)
    nads: dict[Ref, Network] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    namespaces: dict[str, NamespaceInfo] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)
    externals: list[ExternalEndpoint] = field(default_factory=list)
    skipped: list[SkippedObject] = field(default_factory=list)

    def network_of(self, nad: Ref) -> Ref | None:
        """The key of the network a NAD belongs to (None: no such NAD)."""
        net = self.nads.get(nad)
        if net is None:
            return None
        return next((key for key, n in self.networks.items() if n.identity == net.identity), None)

    def policy_networks(self, policy: Policy) -> set[Ref]:
        """The networks a policy applies to: those of the NADs its policy-for names (OVN-K's
        shouldApplyMultiPolicy asks each network whether it has the NAD)."""
        return {key for key in map(self.network_of, policy.networks()) if key is not None}

    def namespace_labels(self, name: str) -> dict[str, str]:
        return self.namespaces.get(name, NamespaceInfo(name)).label_map

    def attachments_on(self, network: Ref) -> list[Attachment]:
        return [a for a in self.attachments if a.network == network]

    def externals_on(self, network: Ref) -> list[ExternalEndpoint]:
        """External endpoints of a network; an endpoint with no network is on all of them."""
        return [e for e in self.externals if e.network is None or e.network == network]

    def find_workload(self, text: str, default_namespace: str | None = None) -> list[Attachment]:
        """Attachments of the pod or VM named `[ns/]name` (one per network it is attached to), or the one
        attachment `[ns/]name@interface`; a bare name with a namespace given (`-n`) is looked up in that namespace
        only, as kubectl does."""
        if "@" in text:
            name, _, interface = text.partition("@")
            return [a for a in self.find_workload(name, default_namespace) if a.interface == interface]
        if "/" in text:
            ref = Ref.parse(text, "")
            return [a for a in self.attachments if a.ref == ref]
        found = [a for a in self.attachments if a.ref.name == text]
        if default_namespace is not None:
            found = [a for a in found if a.ref.namespace == default_namespace]
        return found

    def find_external(self, name: str) -> ExternalEndpoint | None:
        return next((e for e in self.externals if e.name == name), None)

    def find_by_ip(self, ip: IPAddress) -> list[Attachment | ExternalEndpoint]:
        hits: list[Attachment | ExternalEndpoint] = [a for a in self.attachments if ip in a.ips]
        hits += [e for e in self.externals if ip in e.ips]
        return hits
