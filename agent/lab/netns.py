"""Network namespaces and links, always created *inside* namespaces: nothing touches the root namespace.

Veth pairs are made with `ip -n A link add X type veth peer name Y netns B`, so neither end ever exists in
the root namespace, and the lab's addresses (192.168.200.0/24) live only inside namespaces.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import procs

NETNS_DIR = Path("/run/netns")


def list_netns() -> list[str]:
    out = procs.run(["ip", "-j", "netns", "list"], check=False).stdout.strip()
    try:
        return [entry["name"] for entry in json.loads(out or "[]")]
    except (ValueError, KeyError, TypeError):
        return [line.split()[0] for line in out.splitlines() if line.strip()]


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def add(name: str, ipv6: bool = False) -> None:
    """Create a namespace with loopback up and IPv6 off (no router/neighbour chatter on the segment), or, for a
    host of an IPv6 lab, IPv6 on without duplicate address detection (addresses are usable at once: nothing
    waits for DAD) and without router advertisements (no address or route appears that the lab did not add)."""
    procs.run(["ip", "netns", "add", name])
    procs.run(["ip", "-n", name, "link", "set", "lo", "up"])
    if ipv6:
        settings = [(f"net.ipv6.conf.{c}.{k}", v) for c in ("all", "default")
                    for k, v in (("disable_ipv6", "0"), ("accept_dad", "0"), ("dad_transmits", "0"),
                                 ("accept_ra", "0"), ("autoconf", "0"))]
    else:
        settings = [("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1")]
    for key, value in settings:
        procs.run(["sysctl", "-q", "-w", f"{key}={value}"], netns=name, check=ipv6 and key.endswith("disable_ipv6"))


def delete(name: str) -> None:
    procs.run(["ip", "netns", "delete", name], check=False)


def pids(name: str) -> list[int]:
    out = procs.run(["ip", "netns", "pids", name], check=False).stdout
    return [int(tok) for tok in out.split() if tok.isdigit()]


def add_veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    procs.run(["ip", "-n", ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b])
    # The userspace datapath does not fill in offloaded checksums: without this TCP fails silently.
    for ns, ifname in ((ns_a, name_a), (ns_b, name_b)):
        tx_offload_off(ns, ifname)


def tx_offload_off(ns: str, ifname: str) -> None:
    procs.run(["ethtool", "-K", ifname, "tx", "off"], netns=ns)


def set_mac(ns: str, ifname: str, mac: str) -> None:
    procs.run(["ip", "-n", ns, "link", "set", ifname, "address", mac])


def set_up(ns: str, ifname: str) -> None:
    procs.run(["ip", "-n", ns, "link", "set", ifname, "up"])


def add_address(ns: str, ifname: str, address: str) -> None:
    """An IPv6 address is added `nodad`: usable at once, not tentative (the namespace also skips DAD)."""
    procs.run(["ip", "-n", ns, "addr", "add", address, "dev", ifname, *(["nodad"] if ":" in address else [])])


def add_default_route(ns: str, gateway: str, ifname: str) -> None:
    procs.run(["ip", "-n", ns, "route", "add", "default", "via", gateway, "dev", ifname])


def add_bridge(ns: str, name: str) -> None:
    procs.run(["ip", "-n", ns, "link", "add", name, "type", "bridge", "stp_state", "0"])


def enslave(ns: str, ifname: str, bridge: str) -> None:
    procs.run(["ip", "-n", ns, "link", "set", ifname, "master", bridge])
