"""The raw prober under answer loss on the real lab: a lost answer is re-probed, never reported as a drop;
silence is called denied only after a re-probe with a fresh 5-tuple.

The seed allows podclient and vm-server to reach the DB at 5432 only; every other DB port is dropped by OVN. An
nftables rule inside the DB's namespace drops 1 % or 5 % of the DB's answers at random.
"""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import Evidence, ProbeJob

from .packet_loss import answer_loss
from .planes import seeded

pytestmark = pytest.mark.lab
DB = ipaddress.IPv4Address("192.168.200.5")
ALLOWED_PORT = 5432
DENIED_PORTS = range(21000, 21400)
PER_SENDER = 800  # half allowed, half denied


@pytest.fixture(scope="module")
def seed_lab(lab):
    with seeded(lab):
        yield lab


def jobs(lab) -> list[ProbeJob]:
    out = []
    for name in ("podclient", "vm-server"):
        point = lab.send_point(name)
        for n in range(PER_SENDER):
            port = ALLOWED_PORT if n % 2 == 0 else DENIED_PORTS[(n // 2) % len(DENIED_PORTS)]
            out.append(ProbeJob(point, DB, port, tag=name))
    return out


def outcomes(results) -> Counter:
    return Counter((r.job.dst_port == ALLOWED_PORT and "allowed" or "denied", r.verdict.value) for r in results)


@pytest.mark.parametrize("percent", [1, 5])
def test_lost_answers_are_never_a_denied_verdict(seed_lab, percent: int) -> None:
    prober = RawSocketProber()
    with answer_loss(seed_lab.netns("db"), percent):
        results = prober.run(jobs(seed_lab), timeout=0.5, rate=5000)
    seen = outcomes(results)
    print(f"{percent} % loss: {dict(seen)}; stats {prober.stats}")
    assert seen[("allowed", "denied")] == 0, "a lost answer was reported as a drop"
    assert seen[("denied", "allowed")] == 0
    assert seen[("allowed", "allowed")] == PER_SENDER  # 2 senders x half: every lost answer recovered by a re-probe
    assert prober.stats["lost"] > 0, "no loss was seen: the rule did not drop anything"
    assert prober.stats["passes"] >= 2
    unconfirmed = [r for r in results if r.verdict is Verdict.UNKNOWN]
    assert all(r.evidence is Evidence.UNCONFIRMED for r in unconfirmed)


def test_without_loss_a_silent_port_is_denied_after_a_fresh_retry(seed_lab) -> None:
    prober = RawSocketProber()
    results = prober.run(jobs(seed_lab), timeout=0.5, rate=5000)
    seen = outcomes(results)
    assert seen == Counter({("allowed", "allowed"): PER_SENDER, ("denied", "denied"): PER_SENDER}), seen
    denied = [r for r in results if r.verdict is Verdict.DENIED]
    assert all(r.evidence is Evidence.NO_ANSWER_TARGET_ALIVE for r in denied)
    assert all(int(r.detail.split("no answer to ")[1].split()[0]) >= 2 for r in denied), denied[0].detail
