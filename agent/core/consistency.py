"""Findings about the declared world as a whole, not about one policy: workloads and endpoints naming a NAD
that does not exist, one address held twice, objects that segcheck skips. Nothing the user gave is dropped
without a word."""

from __future__ import annotations

from collections import defaultdict

from .findings import Finding, FindingKind, Severity
from .inventory import Inventory, SkippedObject
from .model import Attachment, ExternalEndpoint, Network, Ref

NAMES_SHOWN = 5  # objects named in one message before "and N more"
# The parts of a NAD's config that must agree across the NADs of one network.
NETWORK_FIELDS = ("topology", "subnets", "exclude_subnets", "vlan_id", "mtu", "physical_network_name")
# The Kubernetes kind (OVN-Kubernetes' owner type for policy objects happens to be spelled alike).
KUBERNETES_NETWORK_POLICY = "NetworkPolicy"
SKIP_REASONS = {KUBERNETES_NETWORK_POLICY: "it applies to the default network only"}


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:NAMES_SHOWN])
    return shown + (f" and {len(keys) - NAMES_SHOWN} more" if len(keys) > NAMES_SHOWN else "")


def _missing_nads(inventory: Inventory) -> list[Finding]:
    users: dict[Ref, list[str]] = defaultdict(list)
    for att in inventory.attachments:
        if att.network not in inventory.nads:
            users[att.network].append(att.key)
    for ext in inventory.externals:
        if ext.network is not None and ext.network not in inventory.nads:
            users[ext.network].append(ext.key)
    return [Finding(
        FindingKind.NAD_MISSING,
        f"{_names(sorted(set(keys)))} attach to {net}, but no such NetworkAttachmentDefinition exists: Multus "
        "does not start such a pod, and no matrix includes them.",
        network=net, severity=Severity.ERROR) for net, keys in sorted(users.items())]


def _address_holders(inventory: Inventory, network: Ref) -> dict[tuple[int, int], list[Attachment | ExternalEndpoint]]:
    """Per address, as (version, integer): an address object hashes through a string, ten times slower."""
    holders: dict[tuple[int, int], list[Attachment | ExternalEndpoint]] = defaultdict(list)
    endpoints: list[Attachment | ExternalEndpoint] = [*inventory.attachments_on(network), *inventory.externals_on(network)]
    for endpoint in endpoints:
        for ip in (endpoint.ips if len(endpoint.ips) < 2 else dict.fromkeys(endpoint.ips)):
            holders[(ip.version, int(ip))].append(endpoint)
    return holders


def _address_conflicts(inventory: Inventory) -> list[Finding]:
    found = []
    for network in sorted(inventory.networks):
        # Only addresses held more than once are sorted (in address order): nearly every address is held once.
        shared = [(key, holders) for key, holders in _address_holders(inventory, network).items() if len(holders) > 1]
        for (version, value), holders in sorted(shared, key=lambda kv: kv[0]):
            ip = next(a for a in holders[0].ips if a.version == version and int(a) == value)
            keys = sorted({h.key for h in holders})
            if len(keys) > 1:
                found.append(Finding(
                    FindingKind.ADDRESS_CONFLICT,
                    f"{ip} is held by {_names(keys)} on {network}: probes and ipBlocks cannot tell them apart, "
                    "and on the wire one of them answers for the other.",
                    network=network, severity=Severity.ERROR))
    return found


def _config_conflicts(inventory: Inventory) -> list[Finding]:
    found = []
    for key, network in sorted(inventory.networks.items()):
        nads: list[Network] = [inventory.nads[ref] for ref in network.nads if ref in inventory.nads]
        differ = [f for f in NETWORK_FIELDS if len({getattr(n, f) for n in nads}) > 1]
        if differ:
            values = "; ".join(f"{n.ref}: " + ", ".join(f"{f}={getattr(n, f)!r}" for f in differ) for n in nads)
            found.append(Finding(
                FindingKind.NETWORK_CONFIG_CONFLICT,
                f"the NADs of network {network.cni_name!r} disagree ({values}): OVN-K runs one network per name "
                "with the config it saw first and refuses the others, so pods attached through them do not start.",
                network=key, severity=Severity.ERROR))
    return found


def _network_policies(skipped: list[SkippedObject]) -> list[Finding]:
    return [Finding(
        FindingKind.DEFAULT_NETWORK_ONLY,
        "a NetworkPolicy applies to the cluster's default network only, never to secondary networks; restrict "
        "those with a MultiNetworkPolicy and its k8s.v1.cni.cncf.io/policy-for annotation.",
        policy=s.ref) for s in skipped if s.kind == KUBERNETES_NETWORK_POLICY]


def declared_findings(inventory: Inventory) -> list[Finding]:
    return (_missing_nads(inventory) + _config_conflicts(inventory) + _address_conflicts(inventory)
            + _network_policies(inventory.skipped))


def skipped_notices(inventory: Inventory) -> list[str]:
    """One line per skipped kind, naming its objects."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for s in inventory.skipped:
        by_kind[s.kind].append(str(s.ref) if s.ref.namespace else s.ref.name)
    return [f"skipped {len(names)} {kind} ({_names(sorted(names))}): "
            f"{SKIP_REASONS.get(kind, 'it does not bear on secondary networks')}"
            for kind, names in sorted(by_kind.items())]
