"""Resolving what a user typed (`vm-server`, `default/podclient`, `db:5432`, `192.168.200.5:5432/TCP`) into
endpoints, a network and a port."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .inventory import Inventory
from .model import MAX_PORT, MIN_PORT, AddressEndpoint, Attachment, Endpoint, Protocol, Ref


class ResolveError(ValueError):
    """The user's words do not name exactly one thing (a usage error, exit 2)."""


@dataclass(frozen=True)
class Target:
    text: str
    port: int | None
    protocol: Protocol


def split_target(text: str) -> Target:
    """`NAME[:PORT[/PROTO]]`; IPv6 addresses with a port go in brackets: `[fd00::5]:5432`."""
    name, port_part = text, ""
    if text.startswith("ext:"):  # the matrix's key for an external endpoint
        inner = split_target(text[4:])
        return Target("ext:" + inner.text, inner.port, inner.protocol)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ResolveError(f"{text!r}: missing ']'")
        name, port_part = host, rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        name, _, port_part = text.partition(":")
    protocol = Protocol.TCP
    if "/" in port_part:
        port_part, _, proto = port_part.partition("/")
        try:
            protocol = Protocol.parse(proto)
        except ValueError as exc:
            raise ResolveError(str(exc)) from None
    port = None
    if port_part:
        if not port_part.isdigit() or not MIN_PORT <= int(port_part) <= MAX_PORT:
            raise ResolveError(f"{text!r}: port must be a number from {MIN_PORT} to {MAX_PORT}")
        port = int(port_part)
    if not name:
        raise ResolveError(f"{text!r}: nothing to resolve")
    return Target(name, port, protocol)


def resolve_endpoint(inventory: Inventory, text: str, network: Ref | None, namespace: str | None) -> list[Endpoint]:
    """Every endpoint `text` may mean (one per network for a workload attached several times)."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        ip = None
    if ip is not None:
        hits = [h for h in inventory.find_by_ip(ip) if network is None or h.network in (None, network)]
        return list(hits) or [AddressEndpoint(ip)]
    if text.startswith("ext:"):
        text = text[4:]
    workloads: list[Endpoint] = [a for a in inventory.find_workload(text, namespace) if network is None or a.network == network]
    external = inventory.find_external(text)
    if external is not None and (network is None or external.network in (None, network)):
        workloads.append(external)
    if not workloads:
        where = (f" in namespace {namespace!r}" if namespace else "") + (f" on {network}" if network else "")
        raise ResolveError(f"not found: {text!r} is neither a pod, a VM nor an external endpoint{where}")
    return workloads


def asked_family(*texts: str) -> int | None:
    """The IP family an address typed for an end picks (`explain 192.168.200.10 [fd00::5]:5432`): on a
    dual-stack network it chooses which of the pair's packets is judged. Two ends of two families are an error."""
    families = set()
    for text in texts:
        try:
            families.add(ipaddress.ip_address(text[4:] if text.startswith("ext:") else text).version)
        except ValueError:
            continue
    if len(families) > 1:
        raise ResolveError("an IPv4 and an IPv6 address cannot be the two ends of one packet")
    return families.pop() if families else None


def networks_of(endpoint: Endpoint, inventory: Inventory) -> set[Ref]:
    if isinstance(endpoint, Attachment):
        return {endpoint.network}
    net = getattr(endpoint, "network", None)
    return {net} if net is not None else set(inventory.networks)


def resolve_pair(inventory: Inventory, source: str, destination: str, network: Ref | None,
                 namespace: str | None) -> tuple[Ref, Endpoint, Endpoint]:
    """Pick the one network both ends share, and the endpoint on it for each. `network` may name any NAD of
    the network."""
    if network is not None:
        network = inventory.network_of(network) or network
    sources = resolve_endpoint(inventory, source, network, namespace)
    destinations = resolve_endpoint(inventory, destination, network, namespace)
    candidates: set[Ref] = set()
    for s in sources:
        for d in destinations:
            candidates |= networks_of(s, inventory) & networks_of(d, inventory)
    if network is not None:
        candidates &= {network}
    if not candidates:
        raise ResolveError(f"{source} and {destination} share no network")
    if len(candidates) > 1:
        raise ResolveError(
            f"{source} and {destination} share several networks ({', '.join(sorted(map(str, candidates)))}); "
            "choose one with --network")
    net = candidates.pop()
    src = next(s for s in sources if net in networks_of(s, inventory))
    dst = next(d for d in destinations if net in networks_of(d, inventory))
    if src.key == dst.key:
        raise ResolveError(f"{source} and {destination} are the same endpoint")
    if not isinstance(src, Attachment) and not isinstance(dst, Attachment):
        raise ResolveError("one end must be a pod or a VM: traffic between external hosts is not policed")
    return net, src, dst
