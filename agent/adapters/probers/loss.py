"""How much a send point's answers go missing, and when silence is strong enough to call a probe denied.

A probe that gets no answer is either dropped (denied) or lost on the way (a busy node, a congested veth, an
overloaded ovs-vswitchd). Loss shows itself: a probe answered only on a retry (each pass it was silent in lost
it), or a re-probe of a path that answered before (a canary) going unanswered. Each pass of a run gets its own
loss estimate, `(lost + 1) / (trials + PRIOR_TRIALS)` — never zero, and one lucky pass never makes a single
attempt conclusive — and never below what the send point showed recently at that pace (`LossEstimate`, decayed
with a half-life, so a node that starts losing answers is believed within a minute; loss grows with the rate,
so history is kept per rate octave).

A probe silent in passes i, j, … would, if allowed, have been lost in each: probability at most p_i · p_j · ….
It is called denied once that is at most `EPSILON` (and it had `MIN_ATTEMPTS`), unknown after `MAX_ATTEMPTS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EPSILON = 1e-6
PRIOR_TRIALS = 100.0
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
        """The recent loss rate (0 until some loss was seen)."""
        self._decay(now)
        return self.lost / (self.trials + PRIOR_TRIALS)


def pass_loss(lost: int, trials: int, history: float) -> float:
    """The loss rate to assume for one pass: its own evidence with the prior, never below recent history."""
    return max(history, min(1.0, (lost + 1.0) / (trials + PRIOR_TRIALS)))


def rate_octave(rate: float) -> int:
    return max(0, int(math.log2(max(rate, 1.0))))
