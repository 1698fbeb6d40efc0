"""The raw prober's confirmation of silence, on a simulated wire (tests/unit/raw_wire.py): the real prober code,
its sockets answering in-process with seeded loss.

The rule under test (agent/adapters/probers/loss.py): a silent probe is `denied` only once the loss its silent
passes showed makes "an allowed path stayed silent in all of them" at most EPSILON, and after at least
MIN_ATTEMPTS attempts; else it is re-probed, and after MAX_ATTEMPTS it is `unknown` — never `denied`.
"""

from __future__ import annotations

from segcheck.agent.adapters.probers.loss import (
    EPSILON,
    MAX_ATTEMPTS,
    MIN_ATTEMPTS,
    canaries_to_conclude,
    pass_loss,
    silence_chance,
)
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import Evidence

from .raw_wire import ALLOWED_PORT, Wire, WiredProber, half_and_half, only_5432

TIMEOUT = 0.05


def run(wire: Wire, count: int = 2000, rate: float = 50000.0) -> tuple[WiredProber, list]:  # type: ignore[type-arg]
    prober = WiredProber(wire)
    return prober, prober.run(half_and_half(count), timeout=TIMEOUT, rate=rate)


def expected(result) -> Verdict:  # type: ignore[no-untyped-def]
    return Verdict.ALLOWED if result.job.dst_port == ALLOWED_PORT else Verdict.DENIED


def test_the_rule_is_a_product_of_pass_losses() -> None:
    assert silence_chance([0.01, 0.001]) == 0.01 * 0.001
    assert silence_chance([]) == 1.0
    clean = pass_loss(0, 10000, 0.0, 0.0)
    assert silence_chance([clean]) > EPSILON  # one silent attempt is never conclusive...
    assert silence_chance([clean, pass_loss(0, 500, 0.0, 0.0)]) <= EPSILON  # ...one clean re-probe is
    lossy = pass_loss(800, 10000, 0.0, 0.0)
    assert silence_chance([lossy, pass_loss(0, 500, lossy, 0.0)]) > EPSILON  # after loss, one is not enough
    assert MIN_ATTEMPTS >= 2


def test_canaries_are_sized_to_conclude_in_one_more_pass_where_a_bounded_number_can() -> None:
    slight = pass_loss(20, 10000, 0.0, 0.0)  # pass 1 lost 0.2 %: 500 clean canaries would not conclude
    assert silence_chance([slight, pass_loss(0, 500, slight, 0.0)]) > EPSILON
    needed = canaries_to_conclude(slight, slight, 0.0, 5000)
    assert needed is not None and 500 < needed <= 5000
    assert silence_chance([slight, pass_loss(0, needed, slight, 0.0)]) <= EPSILON
    assert silence_chance([slight, pass_loss(0, needed - 1, slight, 0.0)]) > EPSILON  # the fewest that do
    assert canaries_to_conclude(0.2, 0.2, 0.0, 5000) is None  # heavy loss: no bounded number concludes
    assert canaries_to_conclude(slight, slight, 0.01, 10**6) is None  # nor against a lossy history


def test_a_clean_wire_confirms_every_silence_with_one_re_probe() -> None:
    wire = Wire(only_5432, loss=0.0)
    prober, results = run(wire)
    assert all(r.verdict is expected(r) for r in results)
    assert prober.stats["passes"] == 2  # first probes, then one confirmation pass
    denied = [r for r in results if r.verdict is Verdict.DENIED]
    assert len(denied) == 1000 and all(r.evidence is Evidence.NO_ANSWER_TARGET_ALIVE for r in denied)
    # Frames: every job once, the 1000 silent ones once more, canaries and pilots: far below 2x the jobs.
    assert prober.stats["attempts"] < 2000 * 1.7


def test_lost_answers_are_recovered_and_never_called_denied() -> None:
    for seed in (1, 2, 3):
        wire = Wire(only_5432, loss=0.05, seed=seed)
        prober, results = run(wire)
        assert wire.lost > 0
        allowed = [r for r in results if expected(r) is Verdict.ALLOWED]
        assert all(r.verdict is Verdict.ALLOWED for r in allowed)  # 5 % lost, every one re-probed and answered
        assert not [r for r in results if r.verdict is Verdict.DENIED and expected(r) is Verdict.ALLOWED]
        assert prober.stats["passes"] > 2  # the loss it saw cost more re-probes than a clean wire


def test_where_answers_keep_going_missing_silence_is_unknown_not_denied() -> None:
    wire = Wire(only_5432, loss=0.6)
    prober, results = run(wire, count=600)
    assert not [r for r in results if r.verdict is Verdict.DENIED]
    silent_denied = [r for r in results if expected(r) is Verdict.DENIED]
    assert all(r.verdict is Verdict.UNKNOWN and r.evidence is Evidence.UNCONFIRMED for r in silent_denied)
    assert all("not confirmed as a drop" in r.detail for r in silent_denied)
    assert prober.stats["passes"] == MAX_ATTEMPTS
    assert prober.stats["final_rate"] < 50000.0  # it backed off


def test_drops_in_the_probers_own_socket_count_as_lost_answers() -> None:
    clean, _ = run(Wire(only_5432, loss=0.0))
    dropping = Wire(only_5432, loss=0.0)
    dropping.drops_per_read = 900  # the socket says it dropped 900 frames in every pass: answers, maybe
    prober, results = run(dropping)
    assert prober.stats["socket_drops"] > 0
    assert prober.stats["passes"] > clean.stats["passes"]  # the drops were evidence of loss: more re-probes
    assert not [r for r in results if r.verdict is not expected(r) and r.verdict is not Verdict.UNKNOWN]


def test_a_later_run_starts_where_the_last_backed_off_to() -> None:
    wire = Wire(only_5432, loss=0.3)
    prober = WiredProber(wire)
    prober.run(half_and_half(600), timeout=TIMEOUT, rate=50000.0)
    assert prober.stats["pace_cuts"] >= 1
    wire.loss = 0.0
    prober.run(half_and_half(600), timeout=TIMEOUT, rate=50000.0)
    assert prober.stats["start_rate"] < 50000.0
