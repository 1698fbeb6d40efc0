"""Finding a workload's network namespace on a real node (the DaemonSet runs with hostPID): by OVS identity.

ovs-vswitchd's ports live in the host's namespace (PID 1's); each workload is the br-int Interface bound to its
logical switch port, followed through its veth to the pod's (or virt-launcher pod's) namespace, among those of
`/run/netns` and `/proc/*/ns/net`. See `ovs_locator` for the steps and cross-checks.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..core.northbound import OvsSnapshot
from .ovs_locator import DEFAULT_CACHE_SECONDS, OvsLocator, node_namespaces

HOST_NETNS = "/proc/1/ns/net"


class NodeLocator(OvsLocator):
    def __init__(self, ovs: Callable[[], OvsSnapshot | None], ovs_netns: str = HOST_NETNS,
                 namespaces: Callable[[], Iterable[str]] = node_namespaces,
                 cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        super().__init__(ovs, ovs_netns, namespaces, cache_seconds=cache_seconds)
