"""The pacing controller on a simulated wire: it backs off when canaries go missing and comes back when they answer."""

from __future__ import annotations

import random

from segcheck.agent.adapters.probers.pacing import DECREASE, FLOOR_SHARE, MIN_DEADLINE, MIN_RATE, Pacer


def drive(pacer: Pacer, capacity: float, seconds: float, rng: random.Random, start: float = 0.0) -> float:
    """Simulated time: one canary per 25 frames at the pacer's rate; above `capacity` frames/s the wire loses the
    excess share of them (a receive buffer overflowing). Returns the end time."""
    now = start
    while now < start + seconds:
        now += 25 / pacer.rate
        excess = max(0.0, 1 - capacity / pacer.rate)
        if rng.random() < excess:
            pacer.missing(now + pacer.deadline())
        else:
            pacer.answered(0.001)
    return now


def test_it_settles_below_the_wire_capacity_and_climbs_back_when_capacity_returns() -> None:
    rng = random.Random(7)
    pacer = Pacer(40000.0)
    now = drive(pacer, capacity=15000.0, seconds=2.0, rng=rng)
    assert pacer.decreases > 0
    assert 5000 <= pacer.rate <= 20000  # around the capacity, not at the ceiling
    drive(pacer, capacity=1e9, seconds=2.0, rng=rng, start=now)
    assert pacer.rate == 40000.0  # clean again: back to the rate asked for, never above it


def test_random_loss_that_slowing_down_cannot_cure_does_not_drag_it_down() -> None:
    rng = random.Random(3)
    pacer = Pacer(40000.0)
    now = 0.0
    for _ in range(20000):  # 5 % of canaries lost at any rate (a lossy link, not an overflowing buffer)
        now += 25 / pacer.rate
        if rng.random() < 0.05:
            pacer.missing(now + pacer.deadline())
        else:
            pacer.answered(0.001)
    assert pacer.rate >= 20000.0


def test_one_burst_of_loss_is_one_cut() -> None:
    pacer = Pacer(40000.0)
    pacer.answered(0.001)
    for k in range(50):  # fifty canaries of one burst found missing within one deadline
        pacer.missing(1.0 + k * 0.0001)
    assert pacer.decreases == 1 and pacer.rate == 40000.0 * DECREASE
    pacer.missing(1.0 + pacer.deadline() + 0.001)
    assert pacer.decreases == 2


def test_it_never_goes_below_its_floor_nor_above_its_ceiling() -> None:
    pacer = Pacer(40000.0)
    for k in range(1000):
        pacer.missing(float(k))
    assert pacer.rate == max(MIN_RATE, 40000.0 * FLOOR_SHARE)  # a run's duration stays bounded
    for _ in range(10000):
        pacer.answered(0.001)
    assert pacer.rate == 40000.0
    pacer.set_ceiling(80000.0, pacer.rate * 2)
    assert pacer.rate == 80000.0
    pacer.set_ceiling(40000.0)
    assert pacer.rate == 40000.0


def test_the_deadline_follows_the_round_trips_seen() -> None:
    pacer = Pacer(40000.0)
    assert pacer.deadline() >= MIN_DEADLINE  # nothing seen yet: generous
    for _ in range(20):
        pacer.answered(0.0001)
    assert pacer.deadline() == MIN_DEADLINE  # fast answers: never shorter than the floor
    for _ in range(64):
        pacer.answered(0.05)  # a slow node: a late canary is not mistaken for a lost one
    assert pacer.deadline() >= 0.05 * 4


def test_a_low_rate_asked_for_is_kept_never_raised_to_the_floor() -> None:
    pacer = Pacer(100.0)  # the agent's leak budget
    assert pacer.rate == 100.0
    pacer.missing(0.0)
    pacer.missing(0.0)
    pacer.missing(0.0)
    assert pacer.rate == 100.0  # the floor never exceeds what was asked for
    pacer.set_ceiling(200.0, 400.0)
    assert pacer.rate == 200.0
