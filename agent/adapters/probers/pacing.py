"""Adaptive pacing: how fast the raw prober sends, steered by canaries that go missing.

Where answers are lost at speed (measured on the lab, see benchmarks/README.md): not in the prober's own
receive socket nor in any veth, but in ovs-vswitchd's receive socket on the workload's veth (208 KiB, ~270
frames), which overflows whenever its main thread falls behind (a busy CPU, a burst). Nothing the prober can read
from the workload's namespace shows that drop, so the only evidence is an answer that does not come: a canary
(a fresh re-probe of a path that answered in this run) left unanswered past a deadline a few round trips long.

The controller is AIMD on that evidence: a lost canary cuts the rate by DECREASE (once per deadline, so one burst
of loss is one cut), every INCREASE_AFTER canaries answered in a row raise it by INCREASE of the ceiling, never above
the ceiling (the rate asked for) nor below FLOOR_SHARE of it (random loss looks like congestion: a run's duration
stays bounded) or MIN_RATE. It is pure (time is passed in), so tests drive it with a
simulated wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_RATE = 500.0  # never slower than this
FLOOR_SHARE = 1 / 16  # ... nor than this share of the ceiling, so a pass's duration stays bounded by its size
DECREASE = 0.7  # a lost canary: rate *= this
INCREASE = 0.02  # INCREASE_AFTER answered canaries in a row: rate += this share of the ceiling
INCREASE_AFTER = 32  # (one pilot per 25 frames: at 40k/s a raise per 20 ms at most, 0.5 s from half to full)
MIN_DEADLINE = 0.02  # a canary not answered this long after it left (or DEADLINE_RTTS median RTTs) is missing
DEADLINE_RTTS = 8.0


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

    def __post_init__(self) -> None:
        self.ceiling = max(MIN_RATE, self.ceiling)
        self.rate = min(self.ceiling, max(self.floor, self.rate or self.ceiling))

    @property
    def floor(self) -> float:
        return min(self.ceiling, max(MIN_RATE, self.ceiling * FLOOR_SHARE))

    def set_ceiling(self, ceiling: float, rate: float | None = None) -> None:
        """A new pass: its ceiling, and the rate to start it at (default: where the last pass ended, capped)."""
        self.ceiling = max(MIN_RATE, ceiling)
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
        self._streak += 1
        if self._streak >= INCREASE_AFTER:
            self._streak = 0
            if self.rate < self.ceiling:
                self.rate = min(self.ceiling, self.rate + INCREASE * self.ceiling)
                self.increases += 1

    def missing(self, now: float) -> None:
        """A canary is past its deadline: slow down, once per deadline (one burst of loss is one cut)."""
        self._streak = 0
        if now < self._quiet_until:
            return
        self.rate = max(self.floor, self.rate * DECREASE)
        self.decreases += 1
        self._quiet_until = now + self.deadline()
