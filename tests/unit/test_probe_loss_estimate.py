"""When silence is strong enough to call a probe denied: the loss each pass is assumed to have."""

from __future__ import annotations

from segcheck.agent.adapters.probers.loss import (
    EPSILON,
    HALF_LIFE_SECONDS,
    PRIOR_TRIALS,
    LossEstimate,
    pass_loss,
    rate_octave,
)


def test_a_pass_without_loss_is_assumed_to_lose_a_little_never_nothing() -> None:
    assert pass_loss(0, 0, 0.0, 0.0) == 1 / PRIOR_TRIALS
    assert 0 < pass_loss(0, 100_000, 0.0, 0.0) < pass_loss(0, 10, 0.0, 0.0)
    assert pass_loss(0, 0, 0.0, 0.0) > EPSILON  # one silent attempt is never conclusive
    assert pass_loss(0, 0, 0.0, 0.0) ** 2 <= EPSILON  # two silent attempts on a clean path are


def test_seen_loss_is_believed_over_the_prior() -> None:
    assert pass_loss(20, 400, 0.0, 0.0) >= 20 / 400  # 5 % seen: at least 5 %, whatever the prior says
    assert pass_loss(1, 30, 0.0, 0.0) > 1 / 30  # few trials: pessimistic


def test_earlier_passes_loss_carries_into_a_pass_with_little_evidence() -> None:
    clean_canaries = pass_loss(0, 20, 0.0, 0.0)
    after_loss = pass_loss(0, 20, 0.05, 0.0)
    assert after_loss > 10 * clean_canaries and after_loss > 0.03
    assert pass_loss(0, 5000, 0.05, 0.0) < 0.001  # plenty of own evidence outweighs the earlier passes


def test_history_is_a_floor_and_fades_with_its_half_life() -> None:
    history = LossEstimate()
    history.record(lost=50, trials=1000, now=0.0)
    assert pass_loss(0, 10_000, 0.0, history.rate(0.0)) >= 0.049  # 5 % lost lately: not forgotten in a clean pass
    before = history.rate(0.0)
    assert 0 < history.rate(4 * HALF_LIFE_SECONDS) < before
    assert history.rate(20 * HALF_LIFE_SECONDS) == 0.0
    assert LossEstimate().rate(0.0) == 0.0


def test_history_is_kept_per_rate_octave() -> None:
    assert rate_octave(2100) == rate_octave(4000) != rate_octave(40000)
