"""The naive pairwise evaluator: MultiNetworkPolicy semantics written out directly from shared/design.md,
one (source, destination, port, protocol) at a time, from the *raw* policies. The fast class-based
evaluator must agree with it everywhere. Deliberately shares no code with agent/core/reachability.py or
agent/core/enforcement.py beyond the data model and selectors."""

from __future__ import annotations

from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Attachment, Endpoint, Protocol, Ref, Verdict
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


def peer_matches(peer: Peer, policy: Policy, endpoint: Endpoint, inventory: Inventory) -> bool:
    if peer.ip_block is not None:
        ip = endpoint.ip
        if ip is None or ip.version != peer.ip_block.cidr.version or ip not in peer.ip_block.cidr:
            return False
        return all(ip not in ex for ex in peer.ip_block.excepts)
    if not isinstance(endpoint, Attachment):
        return False
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


def side_allows(policies: list[Policy], endpoint: Endpoint, peer: Endpoint, direction: Direction, port: int,
                protocol: Protocol, inventory: Inventory, end_port: bool, named_widen: bool) -> bool:
    if not isinstance(endpoint, Attachment):
        return True
    selecting = [p for p in policies if selects(p, endpoint)]
    if not any(direction in p.policy_types for p in selecting):
        return True
    for p in selecting:
        for rule in (p.egress if direction is Direction.EGRESS else p.ingress):
            if (not rule.peers or any(peer_matches(x, p, peer, inventory) for x in rule.peers)) and \
                    port_matches(rule, port, protocol, end_port, named_widen):
                return True
    return False


def naive_verdict(inventory: Inventory, network: Ref, src: Endpoint, dst: Endpoint, port: int, protocol: Protocol,
                  end_port: bool = False, named_widen: bool = True,
                  api_versions: tuple[str, ...] = ("k8s.cni.cncf.io/v1beta1",)) -> Verdict:
    policies = [p for p in inventory.policies if applies(p, network, inventory, end_port, api_versions)]
    ok = side_allows(policies, src, dst, Direction.EGRESS, port, protocol, inventory, end_port, named_widen) and \
        side_allows(policies, dst, src, Direction.INGRESS, port, protocol, inventory, end_port, named_widen)
    return Verdict.ALLOWED if ok else Verdict.DENIED
