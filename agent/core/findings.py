"""Typed findings: things segcheck noticed that are not a per-cell verdict.

Each kind says whether retrying can help (`transient`): a policy quirk will not fix itself, a source that
is down may come back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .model import Ref


class Severity(enum.Enum):
    WARNING = "warning"
    ERROR = "error"


class FindingKind(enum.Enum):
    # Policy semantics as OVN-Kubernetes enforces them.
    NO_POLICY_TYPES = "no-policy-types"
    RULES_OUTSIDE_POLICY_TYPES = "rules-outside-policy-types"
    SELECTOR_PEER_WITHOUT_IPAM = "selector-peer-without-ipam"
    ALL_PEERS_IPV4_ONLY = "all-peers-ipv4-only"
    ADDRESSES_JUDGED_APART = "addresses-judged-apart"
    NAMED_PORT = "named-port"
    END_PORT_IGNORED = "end-port-ignored"
    WHOLE_PROTOCOL_NARROWED = "whole-protocol-narrowed"
    PROTOCOL_DEFAULTED = "protocol-defaulted"
    UNKNOWN_NETWORK = "policy-for-unknown-network"
    NO_POLICY_FOR = "no-policy-for"
    SELECTS_NOTHING = "selects-nothing"
    API_VERSION_NOT_SERVED = "api-version-not-served"
    # The declared world as a whole.
    NAD_MISSING = "nad-missing"
    ADDRESS_CONFLICT = "address-conflict"
    DEFAULT_NETWORK_ONLY = "default-network-only"
    NETWORK_CONFIG_CONFLICT = "network-config-conflict"
    # Programmed plane.
    UNOWNED_ACL = "unowned-acl"
    UNKNOWN_ACL = "unknown-acl"
    POLICY_NOT_PROGRAMMED = "policy-not-programmed"
    LOCALNET_UNMAPPED = "localnet-unmapped"
    PATCH_PORT_MISSING = "patch-port-missing"
    LOCALNET_SWITCH_MISSING = "localnet-switch-missing"
    PROFILE_MISMATCH = "ovnk-profile-mismatch"
    ATTACHMENT_PORT_MISSING = "attachment-port-missing"
    # Observed plane / sources.
    SOURCE_DOWN = "source-down"
    ATTACHMENT_NOT_LOCATED = "attachment-not-located"

    @property
    def transient(self) -> bool:
        return self in (FindingKind.SOURCE_DOWN, FindingKind.ATTACHMENT_NOT_LOCATED)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    message: str
    policy: Ref | None = None
    network: Ref | None = None
    severity: Severity = Severity.WARNING

    def to_json(self) -> dict[str, str | None]:
        return {
            "policy": str(self.policy) if self.policy else None,
            "network": str(self.network) if self.network else None,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "message": self.message,
        }
