"""What the OVSDB adapter reads, as plain immutable data: the OVN northbound rows and the node's OVS rows
that decide a localnet network's traffic."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import IPAddress, parse_ip

APPLY_AFTER_LB = "apply-after-lb"  # ACL option: a from-lport ACL evaluated after load balancing


@dataclass(frozen=True)
class Acl:
    uuid: str
    direction: str  # "from-lport" | "to-lport"
    priority: int
    action: str  # allow, allow-related, allow-stateless, drop, reject, pass
    match: str
    tier: int = 0
    after_lb: bool = False
    external_ids: tuple[tuple[str, str], ...] = ()
    name: str | None = None

    @property
    def ids(self) -> dict[str, str]:
        return dict(self.external_ids)

    @property
    def short(self) -> str:
        return f"acl/{self.uuid[:8]}"


@dataclass(frozen=True)
class LogicalPort:
    name: str
    type: str = ""
    addresses: tuple[str, ...] = ()
    external_ids: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    up: bool | None = None

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        out = []
        for entry in self.addresses:
            for word in entry.split()[1:]:
                try:
                    out.append(parse_ip(word))
                except ValueError:
                    continue
        return tuple(out)

    @property
    def macs(self) -> tuple[str, ...]:
        return tuple(e.split()[0].lower() for e in self.addresses if e and e.split()[0].count(":") == 5)


@dataclass(frozen=True)
class PortGroup:
    name: str
    ports: frozenset[str]
    acls: tuple[str, ...] = ()
    external_ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LogicalSwitch:
    name: str
    ports: tuple[str, ...]
    acls: tuple[str, ...] = ()
    external_ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NbSnapshot:
    switches: dict[str, LogicalSwitch] = field(default_factory=dict)
    ports: dict[str, LogicalPort] = field(default_factory=dict)
    port_groups: dict[str, PortGroup] = field(default_factory=dict)
    address_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    acls: dict[str, Acl] = field(default_factory=dict)


@dataclass(frozen=True)
class OvsSnapshot:
    bridge_mappings: tuple[tuple[str, str], ...] = ()  # (physnet, bridge)
    bridges: dict[str, tuple[str, ...]] = field(default_factory=dict)  # bridge -> port names
    iface_ids: dict[str, str] = field(default_factory=dict)  # interface name -> external_ids:iface-id
    interface_state: dict[str, str] = field(default_factory=dict)  # interface name -> link_state / admin_state


def parse_bridge_mappings(text: str) -> tuple[tuple[str, str], ...]:
    """`physnet1:br-ex,tenantblue:br-ex` -> (("physnet1", "br-ex"), ("tenantblue", "br-ex"))."""
    out = []
    for item in text.split(","):
        physnet, sep, bridge = item.strip().partition(":")
        if sep and physnet and bridge:
            out.append((physnet, bridge))
    return tuple(out)
