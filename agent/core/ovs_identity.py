"""A workload's identity on its node, as OVS holds it: the integration bridge's Interface whose
`external_ids:iface-id` is the workload's logical switch port (for a VM, its virt-launcher pod's).

Addresses are no identity (secondary networks overlap); this is what the locators start from.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Attachment, AttachmentKind
from .northbound import OvsSnapshot
from .ovnk.names import is_launcher_port_of, pod_port

INTEGRATION_BRIDGE = "br-int"


@dataclass(frozen=True)
class OvsPort:
    """The host side of a workload's link: an Interface on br-int, and the logical switch port it binds."""

    interface: str
    lsp: str


def is_workload_port(attachment: Attachment, lsp: str) -> bool:
    """Whether `lsp` is the attachment's logical switch port (a VM's: any virt-launcher pod's of that VM), named
    after the NAD the workload attached through (another namespace's NAD of the network names another port)."""
    if attachment.kind is AttachmentKind.VM:
        return is_launcher_port_of(lsp, attachment.nad_ref, attachment.ref)
    return lsp == pod_port(attachment.nad_ref, attachment.ref)


def workload_ports(attachment: Attachment, ovs: OvsSnapshot, bridge: str = INTEGRATION_BRIDGE) -> list[OvsPort]:
    """Every Interface of `bridge` bound to the attachment's logical switch port. One: found; none: not on
    this node; more (a VM migrating, a stale port): ambiguous."""
    on_bridge = set(ovs.bridges.get(bridge, ()))
    return sorted((OvsPort(name, lsp) for name, lsp in ovs.iface_ids.items()
                   if name in on_bridge and is_workload_port(attachment, lsp)), key=lambda p: p.interface)


__all__ = ["INTEGRATION_BRIDGE", "OvsPort", "is_workload_port", "workload_ports"]
