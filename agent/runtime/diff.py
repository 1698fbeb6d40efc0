"""The `segcheck diff` use case: two declared states (e.g. a policies repository's base and head checkouts)
compared network by network, with the policy findings each change brings or fixes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..core.diff import VERDICT_CHANGES, ChangeKind, NetworkDiff, compare, rule_ports
from ..core.enforcement import OvnkProfile, network_findings
from ..core.findings import Finding
from ..core.inventory import Inventory
from ..core.model import Ref
from ..core.reachability import NetworkReachability
from .checks import UsageError
from .status import Status


class FailOnChange(enum.Enum):
    """Which changes make `diff` fail (exit 1): the CI gate a reviewer chooses."""

    OPENED = "opened"  # a cell becomes reachable (the default: new exposure needs a look)
    CHANGED = "changed"  # any verdict changes (opened, closed or unknown)
    NEVER = "never"  # report only


@dataclass
class NetworkDiffReport:
    diff: NetworkDiff
    new_findings: list[Finding] = field(default_factory=list)  # in the head state, not in the base
    fixed_findings: list[Finding] = field(default_factory=list)  # in the base state, gone from the head


@dataclass
class DiffReport:
    profile: str
    networks: list[NetworkDiffReport]
    fail_on: FailOnChange = FailOnChange.OPENED

    def count(self, kind: ChangeKind) -> int:
        return sum(len(n.diff.of(kind)) for n in self.networks)

    @property
    def status(self) -> Status:
        failing = {FailOnChange.OPENED: (ChangeKind.OPENED,), FailOnChange.CHANGED: VERDICT_CHANGES, FailOnChange.NEVER: ()}
        return Status.DRIFT if any(self.count(k) for k in failing[self.fail_on]) else Status.MATCH


def _only(found: list[Finding], other: list[Finding]) -> list[Finding]:
    seen = set(other)
    return [f for f in found if f not in seen]


def diff_states(base: Inventory, head: Inventory, profile: OvnkProfile, *, network: Ref | None = None,
                namespace: str | None = None, fail_on: FailOnChange = FailOnChange.OPENED) -> DiffReport:
    """The cells whose expected verdict (or deciding rules) differ from `base` to `head`, per network."""
    states = (base, head)
    known = set(base.networks) | set(head.networks)
    if network is not None and network not in known:
        raise UsageError(f"no NetworkAttachmentDefinition {network} in either state")
    if namespace is not None and not any(a.ref.namespace == namespace for s in states for a in s.attachments):
        raise UsageError(f"no pod or VM in namespace {namespace!r} in either state")
    cuts = rule_ports(base.policies) + rule_ports(head.policies)
    reports = []
    for net in [network] if network is not None else sorted(known):
        before, after = (NetworkReachability(s, net, profile=profile, namespace=namespace)
                         if net in s.networks else None for s in states)
        old, new = (network_findings(s, net, profile) if net in s.networks else [] for s in states)
        reports.append(NetworkDiffReport(compare(net, before, after, cuts), _only(new, old), _only(old, new)))
    return DiffReport(profile.name, reports, fail_on)
