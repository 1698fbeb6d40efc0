"""The naive pairwise evaluator: MultiNetworkPolicy semantics written out directly from shared/design.md,
one (source, destination, port, protocol) at a time, from the *raw* policies. The fast class-based
evaluator must agree with it everywhere. Deliberately shares no code with agent/core/reachability.py or
agent/core/enforcement.py beyond the data model and selectors.

IP families (upstream gress_policy.go): a packet is of one family, from the source's first address of it to the
destination's; an ipBlock matches only its own family; a selector peer only the families of the network's
subnets (its address sets); a rule without peers those families too, or IPv4 alone when there are no subnets."""

from __future__ import annotations

from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Attachment, Endpoint, IPAddress, Protocol, Ref, Verdict
from segcheck.agent.core.policy import Direction, Peer, Policy, Rule


def applies(policy: Policy, network: Ref, inventory: Inventory, end_port: bool, api_versions: tuple[str, ...]) -> bool:
    if policy.api_version not in api_versions:
        return False
    net = inventory.networks.get(network)
    named = [inventory.nads.get(Ref.parse(x.strip(), policy.ref.namespace)) for x in policy.policy_for]
    # A network is its CNI config name: policy-for may name any NAD of it, in any namespace.
    if not any(n is not None and net is not None and n.cni_name == net.cni_name for n in named) and \
            network not in [Ref.parse(x.strip(), policy.ref.namespace) for x in policy.policy_for]:
        return False
    if net is not None and not net.subnets:
        for rule in policy.ingress + policy.egress:
            for peer in rule.peers:
                if peer.pod_selector is not None or peer.namespace_selector is not None:
                    return False
    return True


def selects(policy: Policy, endpoint: Endpoint) -> bool:
    return (isinstance(endpoint, Attachment) and endpoint.ref.namespace == policy.ref.namespace
            and policy.pod_selector.matches(endpoint.label_map))


def address(endpoint: Endpoint, family: int | None) -> IPAddress | None:
    for ip in endpoint.ips:
        if family is None or ip.version == family:
            return ip
    return None


def subnet_families(inventory: Inventory, network: Ref) -> set[int]:
    net = inventory.networks.get(network)
    return {6 if ":" in s else 4 for s in net.subnets} if net is not None else {4, 6}


def peer_matches(peer: Peer, policy: Policy, endpoint: Endpoint, inventory: Inventory, network: Ref,
                 family: int | None) -> bool:
    ip = address(endpoint, family)
    if peer.ip_block is not None:
        if ip is None or ip.version != peer.ip_block.cidr.version or ip not in peer.ip_block.cidr:
            return False
        return all(ip not in ex for ex in peer.ip_block.excepts)
    if not isinstance(endpoint, Attachment):
        return False
    if ip is not None and ip.version not in subnet_families(inventory, network):
        return False  # no address set of this family
    if peer.namespace_selector is None:
        if endpoint.ref.namespace != policy.ref.namespace:
            return False
    elif not peer.namespace_selector.matches(inventory.namespace_labels(endpoint.ref.namespace)):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(endpoint.label_map)


def port_matches(rule: Rule, port: int, protocol: Protocol, end_port: bool, named_widen: bool) -> bool:
    """OVN-K's per-protocol port map: numbered entries of the protocol if any, else every port if some entry of
    the protocol has no port (or a widened named one)."""
    if not rule.ports:
        return True
    numbered, whole = False, False
    for spec in rule.ports:
        if spec.protocol is not protocol:
            continue
        if spec.port is None or (isinstance(spec.port, str) and named_widen):
            whole = True
            continue
        if isinstance(spec.port, str):
            continue
        numbered = True
        last = spec.end_port if (end_port and spec.end_port is not None) else spec.port
        if spec.port <= port <= last:
            return True
    return whole and not numbered


def all_peers_match(peer: Endpoint, inventory: Inventory, network: Ref, family: int | None) -> bool:
    ip = address(peer, family)
    return ip is None or ip.version in (subnet_families(inventory, network) or {4})


def side_allows(policies: list[Policy], endpoint: Endpoint, peer: Endpoint, direction: Direction, port: int,
                protocol: Protocol, inventory: Inventory, end_port: bool, named_widen: bool, network: Ref,
                family: int | None) -> bool:
    if not isinstance(endpoint, Attachment):
        return True
    selecting = [p for p in policies if selects(p, endpoint)]
    if not any(direction in p.policy_types for p in selecting):
        return True
    for p in selecting:
        for rule in (p.egress if direction is Direction.EGRESS else p.ingress):
            if ((not rule.peers and all_peers_match(peer, inventory, network, family))
                    or any(peer_matches(x, p, peer, inventory, network, family) for x in rule.peers)) and \
                    port_matches(rule, port, protocol, end_port, named_widen):
                return True
    return False


def naive_verdict(inventory: Inventory, network: Ref, src: Endpoint, dst: Endpoint, port: int, protocol: Protocol,
                  end_port: bool = False, named_widen: bool = True,
                  api_versions: tuple[str, ...] = ("k8s.cni.cncf.io/v1beta1",), family: int | None = None) -> Verdict:
    """The verdict of one packet; `family` picks the addresses (None: each side's first address)."""
    policies = [p for p in inventory.policies if applies(p, network, inventory, end_port, api_versions)]
    ok = side_allows(policies, src, dst, Direction.EGRESS, port, protocol, inventory, end_port, named_widen,
                     network, family) and \
        side_allows(policies, dst, src, Direction.INGRESS, port, protocol, inventory, end_port, named_widen,
                    network, family)
    return Verdict.ALLOWED if ok else Verdict.DENIED
