"""OVN's ACL pipeline on a logical switch, as typed stages: what each stage did to one packet.

A packet meets the `from-lport` ACLs twice as it leaves its port (before load balancing, then after:
`options:apply-after-lb`, where OVN-K puts egress policy) and the `to-lport` ACLs as it is delivered. In a
stage, tiers are evaluated in ascending order; within a tier the highest-priority matching ACL decides,
`pass` defers to the next tier, and no match in any tier allows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .model import Reason, Verdict
from .northbound import Acl
from .ovn_match import Expr

FROM_LPORT = "from-lport"
TO_LPORT = "to-lport"
ALLOW_ACTIONS = frozenset({"allow", "allow-related", "allow-stateless"})
DENY_ACTIONS = frozenset({"drop", "reject"})
PASS_ACTION = "pass"


class Stage(enum.Enum):
    EGRESS_BEFORE_LB = "egress before LB"
    EGRESS_AFTER_LB = "egress after LB"
    INGRESS = "ingress"

    @property
    def direction(self) -> str:
        return TO_LPORT if self is Stage.INGRESS else FROM_LPORT

    @property
    def port_field(self) -> str:
        """The match field naming the port an ACL of this stage is attached to."""
        return "outport" if self is Stage.INGRESS else "inport"

    def holds(self, acl: Acl) -> bool:
        if acl.direction != self.direction:
            return False
        return self is Stage.INGRESS or acl.after_lb == (self is Stage.EGRESS_AFTER_LB)


class Effect(enum.Enum):
    PASS = "pass"  # defers to the next tier
    ALLOW = "allow"
    DENY = "deny"
    NO_MATCH = "no-match"  # no ACL of the tier (or stage) matched: OVN allows
    UNKNOWN = "unknown"  # an ACL that might match cannot be evaluated
    REMOTE = "judged on another node"  # interconnect: the stage runs in another node's zone

    @classmethod
    def of(cls, action: str) -> "Effect":
        if action == PASS_ACTION:
            return cls.PASS
        return cls.ALLOW if action in ALLOW_ACTIONS else cls.DENY if action in DENY_ACTIONS else cls.UNKNOWN


@dataclass(frozen=True)
class StageEffect:
    """What one tier of one stage did (tier None, acl None: the stage holds no ACL for this port)."""

    stage: Stage
    tier: int | None
    acl: Acl | None
    effect: Effect
    node: str | None = None  # with Effect.REMOTE: the node whose zone runs the stage (None: not known here)

    def to_json(self) -> dict[str, str | int | None]:
        return {"stage": self.stage.value, "tier": self.tier, "acl": self.acl.short if self.acl else None,
                "effect": self.effect.value}

    def __str__(self) -> str:
        if self.effect is Effect.REMOTE:
            return f"judged on node {self.node}" if self.node else "judged on the node the other end runs on"
        where = "no ACL" if self.tier is None else f"tier {self.tier}"
        acl = f" ({self.acl.short})" if self.acl is not None else ""
        return f"{where} {self.effect.value}{acl}" if self.tier is not None else f"{where}: {self.effect.value}"


@dataclass(frozen=True)
class RankedAcl:
    """An ACL of one stage and tier with its parsed match and the ports it can apply to (None: any)."""

    acl: Acl
    expr: Expr | None
    ports: frozenset[str] | None


def stage_verdict(effects: tuple[StageEffect, ...]) -> Verdict:
    """A stage's verdict from its tiers' effects: the last one decides (earlier ones can only pass)."""
    last = effects[-1].effect
    if last is Effect.UNKNOWN:
        return Verdict.UNKNOWN
    if last is Effect.REMOTE:
        return Verdict.REMOTE
    return Verdict.DENIED if last is Effect.DENY else Verdict.ALLOWED


def effect_chain(effects: tuple[StageEffect, ...]) -> dict[Stage, str]:
    """Per stage, its tiers in order: `{egress after LB: "tier 0 pass (acl/…) -> tier 2 allow (acl/…)"}`."""
    out: dict[Stage, list[str]] = {}
    for e in effects:
        out.setdefault(e.stage, []).append(str(e))
    return {stage: " -> ".join(parts) for stage, parts in out.items()}


def acl_reason(acl: Acl, owner: str) -> Reason:
    return Reason(acl.short, f"{acl.direction} tier {acl.tier} priority {acl.priority} {acl.action}, owner {owner}: "
                             f"{acl.match}")
