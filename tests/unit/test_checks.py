"""The use cases (`agent/runtime/checks.py`) on sources that are neither a node nor the lab: the seed's NB as
OVN-K programs it, a simulated prober, a locator that can send as every workload. They return typed reports
and print nothing; the status each ends with is what the CLI turns into its exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest

from segcheck.agent.adapters.probers.simulated import SimulatedProber
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.model import Attachment, Endpoint, Verdict
from segcheck.agent.core.northbound import NbSnapshot, OvsSnapshot
from segcheck.agent.core.probe import ProbeJob, Prober, SendPoint
from segcheck.agent.core.sources import Locator, SnapshotReader, SourceUnavailable, Trace, Tracer
from segcheck.agent.runtime.checks import (UsageError, explain, expected_matrix, probe_cell, read_programmed,
                                           verify_networks)
from segcheck.agent.runtime.status import Status
from tests.nb_builders import seed_inventory, seed_nb

PROFILE = PROFILES["4.14"]
DB_IP = "192.168.200.5"


class Fixed:
    """A snapshot reader that hands out one snapshot, or fails as a database that is down."""

    def __init__(self, snapshot: object | None):
        self.snap, self.on_change, self.closed = snapshot, None, False

    def snapshot(self):  # type: ignore[no-untyped-def]
        if self.snap is None:
            raise SourceUnavailable("northbound down (test)")
        return self.snap

    def close(self) -> None:
        self.closed = True


class EveryWorkload:
    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        if isinstance(endpoint, Attachment) and endpoint.ip is not None:
            return SendPoint(f"/run/netns/{endpoint.ref.name}", "net1", endpoint.ip, endpoint.mac)
        return None

    def application_netns(self, endpoint: Endpoint) -> str | None:
        return None  # no PostgreSQL follow-up without a real namespace


@dataclass
class FakeSources:
    nb: NbSnapshot | None
    decide: Callable[[ProbeJob], Verdict]
    trace: Trace | None = None
    name: str = "test"
    sees_every_workload: bool = True
    node: str | None = None
    readers: list[Fixed] = field(default_factory=list)

    def unavailable(self) -> str | None:
        return None

    def northbound(self, timeout: float = 5.0) -> SnapshotReader[NbSnapshot] | None:
        self.readers.append(Fixed(self.nb))
        return self.readers[-1]

    def open_vswitch(self, timeout: float = 5.0) -> SnapshotReader[OvsSnapshot] | None:
        return None

    def tracer(self) -> Tracer | None:
        return None if self.trace is None else (lambda datapath, flow: self.trace)  # type: ignore[return-value]

    def locator(self) -> Locator:
        return EveryWorkload()

    def prober(self) -> Prober:
        return SimulatedProber(self.decide)

    def close(self) -> None:
        pass


def as_policy_says(job: ProbeJob) -> Verdict:
    """The seed's dataplane when it holds: only the DB's PostgreSQL port answers."""
    return Verdict.ALLOWED if (str(job.dst_ip), job.dst_port) == (DB_IP, 5432) else Verdict.DENIED


def everything_open(job: ProbeJob) -> Verdict:
    return Verdict.ALLOWED


@pytest.fixture(scope="module")
def seed():
    inventory = seed_inventory()
    return inventory, seed_nb(inventory)


def test_probe_of_the_service_path_matches_on_all_three_planes(seed):
    inventory, nb = seed
    sources = FakeSources(nb, as_policy_says)
    report = probe_cell(inventory, sources, "vm-server", "db:5432", PROFILE)
    assert report.status is Status.MATCH
    cell = report.cell
    assert (cell.expected.verdict, cell.programmed.verdict, cell.observed.verdict) == (Verdict.ALLOWED,) * 3
    assert cell.expected.because == ["default/allow-db-egress:egress[0]"]
    assert cell.programmed.reasons[0].ref.startswith("acl/")  # the deciding ACL is named
    assert all(r.closed for r in sources.readers)


def test_a_probe_that_passes_where_policy_denies_is_a_leak(seed):
    inventory, nb = seed
    report = probe_cell(inventory, FakeSources(nb, everything_open), "vm-server", "db:22", PROFILE)
    assert report.status is Status.DRIFT
    assert {d.value for d in report.cell.drift} == {"leak", "dataplane"}


def test_unreadable_northbound_is_could_not_check_with_the_reason(seed):
    inventory, _ = seed
    report = probe_cell(inventory, FakeSources(None, as_policy_says), "vm-server", "db:5432", PROFILE)
    assert report.status is Status.COULD_NOT_CHECK
    assert report.cell.programmed is None and report.errors == ["northbound down (test)"]


def test_an_ip_target_outside_the_declared_state_is_checked_not_crashed(seed):
    inventory, nb = seed
    report = probe_cell(inventory, FakeSources(nb, as_policy_says), "vm-server", "192.168.200.99:22", PROFILE)
    assert report.destination.key == "192.168.200.99"
    assert report.cell.expected.verdict is Verdict.DENIED and report.status is Status.MATCH


def test_usage_errors_are_typed(seed):
    inventory, nb = seed
    with pytest.raises(UsageError, match="give a port"):
        probe_cell(inventory, FakeSources(nb, as_policy_says), "vm-server", "db", PROFILE)
    with pytest.raises(UsageError):
        explain(inventory, "ghost", "db:5432", PROFILE)
    with pytest.raises(UsageError, match="needs a port"):
        explain(inventory, "vm-server", "db", PROFILE, trace_with=FakeSources(nb, as_policy_says))
    with pytest.raises(UsageError, match="namespace"):
        expected_matrix(inventory, PROFILE, namespace="nosuchns")


def test_verify_reports_every_network_and_the_worst_status(seed):
    inventory, nb = seed
    clean = verify_networks(inventory, FakeSources(nb, as_policy_says), PROFILE)
    assert clean.status is Status.MATCH and [str(r.network) for r in clean.networks] == ["default/tenantblue"]
    leaky = verify_networks(inventory, FakeSources(nb, everything_open), PROFILE, drift_only=True)
    assert leaky.status is Status.DRIFT
    assert leaky.networks[0].cells and all(c.drift for c in leaky.networks[0].cells)


def test_drift_only_of_a_clean_network_is_a_match_not_could_not_check(seed):
    inventory, nb = seed
    report = verify_networks(inventory, FakeSources(nb, as_policy_says), PROFILE, drift_only=True)
    assert report.networks[0].cells == [] and report.status is Status.MATCH


def test_explain_without_evidence_from_the_trace_could_not_check(seed):
    inventory, nb = seed
    report = explain(inventory, "vm-server", "db:5432", PROFILE,
                     trace_with=FakeSources(None, as_policy_says, trace=Trace("delivered", "")))
    assert report.judgement is not None and report.judgement.verdict is Verdict.ALLOWED
    assert report.trace is not None and report.trace.verdict == "unknown" and "down" in report.trace.text
    assert report.status is Status.COULD_NOT_CHECK
    traced = explain(inventory, "vm-server", "db:5432", PROFILE,
                     trace_with=FakeSources(nb, as_policy_says, trace=Trace("delivered", "output(...)")))
    assert traced.trace == Trace("delivered", "output(...)") and traced.status is Status.MATCH
    # Beside the trace, segcheck's own evaluation of the same ACLs, stage by stage, with the deciding ACL.
    assert traced.programmed is not None and traced.programmed.verdict is Verdict.ALLOWED
    chain = traced.programmed.chain()
    assert any("allow" in text and "acl/" in text for text in chain.values()), chain


def test_read_programmed_closes_what_it_opened(seed):
    _, nb = seed
    sources = FakeSources(nb, as_policy_says)
    got = read_programmed(sources)
    assert got.nb is nb and got.ovs is None and got.errors == []
    assert [r.closed for r in sources.readers] == [True]
