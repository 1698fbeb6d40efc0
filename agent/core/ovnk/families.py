"""Which IP families OVN-Kubernetes programs a secondary network's policies for (gress_policy.go, `IPMode()` of
the network: the families of its subnets).

- selector peers become one address set per family the network has (`..._v4` / `..._v6`, by the `ip-family` id),
  matched as `ip4.src == {$..} || ip6.src == {$..}`: a network without subnets has none;
- a rule with no peers matches `allIPsMatch()`: `(ip4 || ip6)`, `ip6` or, by default (no subnets: IPAM-less),
  `ip4` only, so on an IPAM-less network such a rule never admits IPv6 traffic;
- an ipBlock peer matches only its own family (`ip6.src == fd00::/64`).
"""

from __future__ import annotations

import ipaddress

from ..model import Network


def network_families(network: Network) -> tuple[int, ...]:
    """`IPMode()` of a secondary network: the families of its subnets (none without IPAM)."""
    # A layer3 subnet reads `10.1.0.0/16/24` (cluster CIDR / host prefix): the family is in its first part.
    return tuple(sorted({ipaddress.ip_network("/".join(s.strip().split("/")[:2]), strict=False).version
                         for s in network.subnets}))


def selector_families(network: Network) -> frozenset[int]:
    """The families whose traffic a selector peer can match (its address sets exist only for these)."""
    return frozenset(network_families(network))


def all_ips_families(network: Network) -> frozenset[int]:
    """The families a rule without peers matches: the network's, or IPv4 alone when it has no subnets."""
    return frozenset(network_families(network)) or frozenset({4})


__all__ = ["all_ips_families", "network_families", "selector_families"]
