"""The declared world: everything parsed from manifests or the Kubernetes API, indexed for lookups."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Attachment, ExternalEndpoint, IPAddress, NamespaceInfo, Network, Ref
from .policy import Policy


@dataclass
class Inventory:
    networks: dict[Ref, Network] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    namespaces: dict[str, NamespaceInfo] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)
    externals: list[ExternalEndpoint] = field(default_factory=list)

    def namespace_labels(self, name: str) -> dict[str, str]:
        return self.namespaces.get(name, NamespaceInfo(name)).label_map

    def same_network(self, network: Ref) -> frozenset[Ref]:
        """The NADs that are one network with `network`: OVN-K names a network by its CNI config `name`, so NADs
        of one name in several namespaces share one logical switch (and policies, `shouldApplyMultiPolicy`)."""
        net = self.networks.get(network)
        if net is None:
            return frozenset({network})
        return frozenset(ref for ref, other in self.networks.items() if other.cni_name == net.cni_name)

    def attachments_on(self, network: Ref) -> list[Attachment]:
        """Attachments through `network` or any NAD of the same network."""
        nads = self.same_network(network)
        return [a for a in self.attachments if a.network in nads]

    def externals_on(self, network: Ref) -> list[ExternalEndpoint]:
        """External endpoints of a network; an endpoint with no network is on all of them."""
        nads = self.same_network(network)
        return [e for e in self.externals if e.network is None or e.network in nads]

    def find_workload(self, text: str, default_namespace: str | None = None) -> list[Attachment]:
        """Attachments of the pod or VM named `[ns/]name` (one per network it is attached to); a bare name with a
        namespace given (`-n`) is looked up in that namespace only, as kubectl does."""
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
