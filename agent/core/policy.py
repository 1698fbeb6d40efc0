"""MultiNetworkPolicy as written by its author (before OVN-Kubernetes' interpretation, see `enforcement`)."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from .model import IPAddress, Protocol, Ref
from .selectors import LabelSelector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

POLICY_FOR_ANNOTATION = "k8s.v1.cni.cncf.io/policy-for"


class Direction(enum.Enum):
    INGRESS = "ingress"
    EGRESS = "egress"

    @property
    def policy_type(self) -> str:
        return self.value.capitalize()


@dataclass(frozen=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: IPAddress) -> bool:
        if ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip in ex for ex in self.excepts)

    def __str__(self) -> str:
        if not self.excepts:
            return str(self.cidr)
        return f"{self.cidr} except {','.join(map(str, self.excepts))}"


@dataclass(frozen=True)
class Peer:
    """One entry of `from`/`to`: selectors (ANDed when both) or an ipBlock."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    @property
    def uses_selectors(self) -> bool:
        return self.pod_selector is not None or self.namespace_selector is not None

    def __str__(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector}")
        return " and ".join(parts)


@dataclass(frozen=True)
class PortSpec:
    """One entry of `ports`. `port` is None (all ports), a number, or a name."""

    protocol: Protocol = Protocol.TCP
    port: int | str | None = None
    end_port: int | None = None
    protocol_defaulted: bool = False

    def __str__(self) -> str:
        if self.port is None:
            return f"*/{self.protocol.value}"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol.value}"
        return f"{self.port}/{self.protocol.value}"


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule. Empty `peers` means every peer; empty `ports` every port of every protocol."""

    direction: Direction
    index: int
    peers: tuple[Peer, ...] = ()
    ports: tuple[PortSpec, ...] = ()

    def ref(self, policy: Ref) -> str:
        return f"{policy}:{self.direction.value}[{self.index}]"


@dataclass(frozen=True)
class Policy:
    ref: Ref
    pod_selector: LabelSelector
    policy_types: frozenset[Direction]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    policy_for: tuple[str, ...] = ()
    policy_types_declared: bool = True
    api_version: str = "k8s.cni.cncf.io/v1beta1"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.ingress + self.egress

    def networks(self) -> tuple[Ref, ...]:
        """The NADs named by the policy-for annotation (`name` is in the policy's namespace)."""
        return tuple(Ref.parse(item, self.ref.namespace) for item in self.policy_for)
