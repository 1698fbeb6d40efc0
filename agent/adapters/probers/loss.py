"""How much a send point's answers go missing, and when silence is strong enough to call a probe denied.

A probe that gets no answer is either dropped (denied) or lost on the way (a busy node, a congested veth, an
overloaded ovs-vswitchd). Loss shows itself: a probe answered only on a retry (each pass it was silent in lost
it), or a re-probe of a path that answered before (a canary) going unanswered. Each pass of a run gets its own
loss estimate: `(lost + 1) / (trials + PRIOR_TRIALS)` while it shows none (never zero, so one silent attempt is
never conclusive), the evidence `(lost + 1) / (trials + SEEN_PRIOR_TRIALS)` once it does (earlier passes of the
run weighing in), and never below what the send point showed recently at that pace (`LossEstimate`, decayed with a half-life, so a
node that starts losing answers is believed within a minute; loss grows with the rate, so history is kept per
rate octave).

The rule (`silence_chance`): a probe silent in passes i, j, … would, if its path were allowed, have been lost in
each of them, independently (every attempt has a fresh 5-tuple, so it hashes and queues apart from the others):
probability p_i · p_j · …. It is called denied once that is at most `EPSILON` (and it had `MIN_ATTEMPTS`), unknown
after `MAX_ATTEMPTS`. So a clean send point confirms in one re-probe (p_1 · p_2 ≈ 1e-4 · 1e-3), a pass that lost
answers costs more re-probes, and a node that keeps losing them gets `unknown`, never `denied`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

EPSILON = 1e-6
PRIOR_TRIALS = 1000.0  # a pass with no evidence of its own is assumed to lose at most 0.1 %
CARRIED_TRIALS = 50.0  # weight of the earlier passes' loss in a later pass's estimate
SEEN_PRIOR_TRIALS = 10.0  # once loss is seen, the evidence speaks: a rate believed after a few trials
HALF_LIFE_SECONDS = 60.0
MIN_ATTEMPTS = 2  # never deny on one silent probe: re-probe with a fresh 5-tuple first
MAX_ATTEMPTS = 5


@dataclass
class LossEstimate:
    lost: float = 0.0
    trials: float = 0.0
    at: float | None = None

    def _decay(self, now: float) -> None:
        if self.at is not None and now > self.at:
            keep = 0.5 ** ((now - self.at) / HALF_LIFE_SECONDS)
            self.lost *= keep
            self.trials *= keep
        self.at = now

    def record(self, lost: int, trials: int, now: float) -> None:
        self._decay(now)
        self.lost += lost
        self.trials += trials

    def rate(self, now: float) -> float:
        """The recent loss rate (0 while no loss is seen); it fades towards 0 as the evidence ages."""
        self._decay(now)
        return self.lost / (self.trials + SEEN_PRIOR_TRIALS) if self.lost >= 0.5 else 0.0


def seen_rate(lost: float, trials: float) -> float:
    """A loss rate where loss was seen, pessimistic for few trials (0 where none was)."""
    return min(1.0, (lost + 1.0) / (trials + SEEN_PRIOR_TRIALS)) if lost >= 0.5 else 0.0


def pass_loss(lost: int, trials: int, earlier: float, history: float) -> float:
    """The loss rate to assume for one pass: the prior while no loss is seen, the evidence once it is — with
    the loss of the run's earlier passes (`earlier`) counted as CARRIED_TRIALS trials, since a few canaries
    alone cannot show that loss went away — and never below recent history."""
    carried = seen_rate(lost + earlier * CARRIED_TRIALS, trials + CARRIED_TRIALS) if earlier > 0 else 0.0
    return max(history, carried, seen_rate(lost, trials), min(1.0, (lost + 1.0) / (trials + PRIOR_TRIALS)))


def silence_chance(rates: Iterable[float]) -> float:
    """The chance that an allowed path stayed silent in every pass with these loss rates (see the module)."""
    chance = 1.0
    for rate in rates:
        chance *= rate
    return chance


def canaries_to_conclude(prior_chance: float, earlier: float, history: float, most: int) -> int | None:
    """How many canaries, all answered, would make the next pass conclusive for probes already silent with
    `prior_chance` (its loss rate ≤ EPSILON / prior_chance), or None when even `most` would not (the pass then
    gets its usual share and the rule asks for another pass). Canaries are paid per frame; a pass is paid a
    timeout and every silent probe again, so a few thousand canaries beat a third pass."""
    target = EPSILON / prior_chance if prior_chance > 0 else 1.0
    if pass_loss(0, most, earlier, history) > target:
        return None
    low, high = 0, most
    while low < high:
        mid = (low + high) // 2
        if pass_loss(0, mid, earlier, history) <= target:
            high = mid
        else:
            low = mid + 1
    return low


def rate_octave(rate: float) -> int:
    return max(0, int(math.log2(max(rate, 1.0))))
