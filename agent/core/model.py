"""The data model shared by every plane: networks, attachments, endpoints, ports, verdicts.

Everything here is immutable and hashable, so planes can be compared and cached freely.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

MIN_PORT = 1
MAX_PORT = 65535

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Protocol(enum.Enum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"

    @classmethod
    def parse(cls, text: str) -> "Protocol":
        try:
            return cls(text.upper())
        except ValueError:
            raise ValueError(f"unknown protocol {text!r} (expected TCP, UDP or SCTP)") from None


class Verdict(enum.Enum):
    """Whether traffic passes. `unknown` means no evidence either way: a failed probe is not a block."""

    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"
    # Programmed plane in interconnect mode only: this node's half lets the traffic pass and the half that can
    # still deny it is enforced (and judged) on another node. No claim either way; never a leak or a blackhole.
    REMOTE = "remote"

    @property
    def glyph(self) -> str:
        return {"allowed": ".", "denied": "X", "unknown": "?", "remote": "~"}[self.value]


class AttachmentKind(enum.Enum):
    POD = "pod"
    VM = "vm"


@dataclass(frozen=True, order=True)
class Ref:
    """A namespaced object name, printed `ns/name`."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str, default_namespace: str) -> "Ref":
        if "/" in text:
            ns, _, name = text.partition("/")
            if not ns or not name or "/" in name:
                raise ValueError(f"bad reference {text!r} (expected NAME or NAMESPACE/NAME)")
            return cls(ns, name)
        if not text:
            raise ValueError("empty reference")
        return cls(default_namespace, text)


@dataclass(frozen=True)
class Network:
    """A NetworkAttachmentDefinition of OVN-Kubernetes (the localnet topology is the one segcheck checks).

    OVN-K's network is the CNI config `name`: NADs of one name in several namespaces are one network (one
    logical switch). The inventory keys each network by its first NAD (by namespace/name), whose `nads` lists
    every NAD of the network."""

    ref: Ref
    cni_name: str
    topology: str
    cni_type: str = "ovn-k8s-cni-overlay"
    subnets: tuple[str, ...] = ()
    exclude_subnets: tuple[str, ...] = ()
    vlan_id: int | None = None
    mtu: int | None = None
    physical_network_name: str | None = None
    nads: tuple[Ref, ...] = ()  # every NAD of this network (set on the network's entry in the inventory)

    @property
    def identity(self) -> tuple[str, str]:
        """What makes NADs one network: OVN-K's controller runs one network per CNI config name."""
        return (self.cni_type, self.cni_name)

    @property
    def has_ipam(self) -> bool:
        return bool(self.subnets)

    @property
    def localnet_name(self) -> str:
        """The name matched against the node's bridge mappings."""
        return self.physical_network_name or self.cni_name


@dataclass(frozen=True)
class Attachment:
    """One workload's interface on one secondary network."""

    kind: AttachmentKind
    ref: Ref
    network: Ref
    labels: tuple[tuple[str, str], ...] = ()
    interface: str | None = None
    mac: str | None = None
    ips: tuple[IPAddress, ...] = ()  # every address of the interface (dual-stack: both families)
    node: str | None = None
    nad: Ref | None = None  # the NAD the workload named, when not the network's own key (`network`)
    one_of_several: bool = False  # the workload has other attachments to this network (net1, net2)

    @property
    def nad_ref(self) -> Ref:
        """The NAD the workload attached through (OVN-K names the logical switch port after it)."""
        return self.nad or self.network

    @property
    def label_map(self) -> Mapping[str, str]:
        return dict(self.labels)

    @property
    def ip(self) -> IPAddress | None:
        """The address probes use and ipBlocks are matched against."""
        return self.ips[0] if self.ips else None

    @cached_property
    def key(self) -> str:  # hot: every cell of a large matrix asks for it
        """`ns/name`, or `ns/name@interface` for each of several attachments of a workload to one network."""
        return f"{self.ref}@{self.interface}" if self.one_of_several else str(self.ref)


# libpq's sslmode values, weakest first.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class TcpCheck:
    """A full TCP connect from the workload's namespace (the kernel's handshake, beyond the probe's SYN)."""


@dataclass(frozen=True)
class HttpCheck:
    """An HTTP GET of `path`; any HTTP status line is an answer."""

    path: str = "/"


@dataclass(frozen=True)
class PostgresCheck:
    """A PostgreSQL startup as `user` for `database`, negotiating TLS as libpq's `sslmode` does."""

    user: str
    database: str
    sslmode: str = "prefer"


PortCheck = TcpCheck | HttpCheck | PostgresCheck


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: Protocol = Protocol.TCP
    check: PortCheck | None = None  # the application-level check an allowed cell to this port gets

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol.value}"


@dataclass(frozen=True)
class ExternalEndpoint:
    """A host on the physical side of a localnet network (for the seed: the PostgreSQL DB)."""

    name: str
    ips: tuple[IPAddress, ...]
    network: Ref | None = None
    ports: tuple[ServicePort, ...] = ()
    description: str = ""

    @property
    def ip(self) -> IPAddress | None:
        return self.ips[0] if self.ips else None

    @cached_property
    def key(self) -> str:
        return f"ext:{self.name}"

    def check_for(self, port: int, protocol: Protocol) -> PortCheck | None:
        """The check declared for this port, if any."""
        return next((p.check for p in self.ports if p.port == port and p.protocol is protocol), None)


@dataclass(frozen=True)
class AddressEndpoint:
    """A bare IP given on the command line."""

    address: IPAddress

    @property
    def ip(self) -> IPAddress:
        return self.address

    @property
    def key(self) -> str:
        return str(self.address)

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        return (self.address,)


Endpoint = Attachment | ExternalEndpoint | AddressEndpoint


def endpoint_key(endpoint: Endpoint) -> str:
    return endpoint.key


# IP families as cells name them (`"family": "ipv4"`): only on dual-stack networks, where a pair's IPv4 and IPv6
# traffic can get different verdicts.
FAMILY_NAMES = {4: "ipv4", 6: "ipv6"}


def address_of(endpoint: Endpoint, family: int | None) -> IPAddress | None:
    """The address a packet of one family leaves from or goes to (the first of that family; None: the
    endpoint's first address, whatever its family). Probes use it, and policies judge it."""
    if family is None:
        return endpoint.ip
    return next((ip for ip in endpoint.ips if ip.version == family), None)


def families_of(endpoint: Endpoint) -> frozenset[int]:
    return frozenset(ip.version for ip in endpoint.ips)


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def label_map(self) -> dict[str, str]:
        merged = dict(self.labels)
        # The API server sets this label on every namespace; selectors rely on it.
        merged.setdefault("kubernetes.io/metadata.name", self.name)
        return merged


@dataclass(frozen=True)
class PortRange:
    """An inclusive range of ports of one protocol."""

    protocol: Protocol
    first: int = MIN_PORT
    last: int = MAX_PORT

    @property
    def is_all(self) -> bool:
        return self.first == MIN_PORT and self.last == MAX_PORT

    def __contains__(self, port: int) -> bool:
        return self.first <= port <= self.last

    def __str__(self) -> str:
        if self.is_all:
            return f"*/{self.protocol.value}"
        if self.first == self.last:
            return f"{self.first}/{self.protocol.value}"
        return f"{self.first}-{self.last}/{self.protocol.value}"


@dataclass(frozen=True)
class Reason:
    """Provenance of a verdict: which policy rule or ACL decided, in words and as a stable reference."""

    ref: str
    detail: str = ""

    def __str__(self) -> str:
        return self.ref


@dataclass(frozen=True)
class Judgement:
    """A verdict with the reasons that produced it."""

    verdict: Verdict
    reasons: tuple[Reason, ...] = field(default=())

    @property
    def because(self) -> list[str]:
        return [r.ref for r in self.reasons]


def parse_ip(text: str) -> IPAddress:
    """An address, with or without a prefix length (`192.168.200.10/24`)."""
    address, slash, prefix = text.strip().partition("/")
    ip = ipaddress.ip_address(address)  # cheaper than ip_interface, which builds the network as well
    if slash and not (prefix.isdigit() and len(prefix) <= 3 and int(prefix) <= ip.max_prefixlen):
        raise ValueError(f"invalid prefix length in {text!r}")
    return ip
