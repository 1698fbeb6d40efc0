"""Adaptive pacing: how fast the raw prober sends, steered by canaries that go missing.

Where answers are lost at speed (measured on the lab, see benchmarks/README.md): not in the prober's own
receive socket nor in any veth, but in ovs-vswitchd's receive socket on the workload's veth (208 KiB, ~270
frames), which overflows whenever its main thread falls behind (a busy CPU, a burst). Nothing the prober can read
from the workload's namespace shows that drop, so the only evidence is an answer that does not come: a canary
(a fresh re-probe of a path that answered in this run) left unanswered past a deadline a few round trips long.

The controller is AIMD on that evidence. Overflow loss comes in bursts (a stalled reader loses hundreds of frames
in a row), random loss (a lossy link, a policer) does not, and slowing down only helps against the first: so a cut
(rate *= DECREASE) needs BURST of the last WINDOW canaries missing, and happens once per deadline (one burst is
one cut); every INCREASE_AFTER canaries answered since the last cut or raise raise the rate by INCREASE of the
ceiling. The rate
stays between the ceiling (the rate asked for) and FLOOR_SHARE of it (or MIN_RATE), so a pass's duration stays
bounded by its size. It is pure (time is passed in), so tests drive it with a simulated wire.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MIN_RATE = 500.0  # never slower than this
FLOOR_SHARE = 1 / 16  # ... nor than this share of the ceiling, so a pass's duration stays bounded by its size
DECREASE = 0.7  # a lost canary: rate *= this
INCREASE = 0.02  # INCREASE_AFTER answered canaries in a row: rate += this share of the ceiling
INCREASE_AFTER = 32  # (one pilot per 25 frames: at 40k/s a raise per 20 ms at most, 0.5 s from half to full)
MIN_DEADLINE = 0.02  # a canary not answered this long after it left (or DEADLINE_RTTS median RTTs) is missing
DEADLINE_RTTS = 8.0
WINDOW = 8  # a cut needs BURST of the last WINDOW canaries missing: after a miss, 5 % random loss does that
BURST = 3  # 4 % of the time, a buffer overflow every time
PASS_LOSSY = 0.02  # a pass that lost more than this share of what it could show is one cut at its end


@dataclass
class Pacer:
    """The rate to send at, lowered when canaries go missing and raised back while they answer."""

    ceiling: float
    rate: float = 0.0
    decreases: int = 0
    increases: int = 0
    _streak: int = 0
    _quiet_until: float = float("-inf")
    _rtts: list[float] = field(default_factory=list)
    _recent: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))  # last canaries: missing?

    def __post_init__(self) -> None:
        self.ceiling = max(1.0, self.ceiling)  # the rate asked for is a ceiling, however low (leak budgets)
        self.rate = min(self.ceiling, max(self.floor, self.rate or self.ceiling))

    @property
    def floor(self) -> float:
        return min(self.ceiling, max(MIN_RATE, self.ceiling * FLOOR_SHARE))

    def set_ceiling(self, ceiling: float, rate: float | None = None) -> None:
        """A new pass: its ceiling, and the rate to start it at (default: where the last pass ended, capped)."""
        self.ceiling = max(1.0, ceiling)
        self.rate = min(self.ceiling, max(self.floor, rate if rate is not None else self.rate))
        self._streak = 0

    def deadline(self) -> float:
        """How long a canary may take before it counts as missing (for pacing only; verdicts wait the timeout)."""
        if not self._rtts:
            return MIN_DEADLINE * 5
        ordered = sorted(self._rtts[-64:])
        return max(MIN_DEADLINE, DEADLINE_RTTS * ordered[len(ordered) // 2])

    def answered(self, rtt: float) -> None:
        self._rtts.append(rtt)
        if len(self._rtts) > 256:
            del self._rtts[:128]
        self._recent.append(False)
        self._streak += 1
        if self._streak >= INCREASE_AFTER:
            self._streak = 0
            if self.rate < self.ceiling:
                self.rate = min(self.ceiling, self.rate + INCREASE * self.ceiling)
                self.increases += 1

    def pass_ended(self, lost: int, trials: int, now: float) -> None:
        """A pass's own tally (canaries silent at its end, probes it lost that answered later): a share above
        PASS_LOSSY is one cut, whatever the bursts looked like."""
        if trials and lost / trials > PASS_LOSSY:
            self.rate = max(self.floor, self.rate * DECREASE)
            self.decreases += 1
            self._streak = 0
            self._quiet_until = now + self.deadline()

    def missing(self, now: float) -> None:
        """A canary is past its deadline: slow down, once per deadline (one burst of loss is one cut)."""
        self._recent.append(True)
        if now < self._quiet_until or sum(self._recent) < BURST:
            return
        self._streak = 0
        self.rate = max(self.floor, self.rate * DECREASE)
        self.decreases += 1
        self._quiet_until = now + self.deadline()
