"""Contract of KubeSource, driven through the real `kubernetes` client against the fake API server.

Every wait is on a condition with a deadline (`wait_until`, `wait_for_change`); nothing sleeps to synchronise.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from segcheck.agent.adapters.kube import Backoff, KubeSource

try:
    from tests.fake_kube import FakeKubeServer
except ImportError:  # plain `pytest` (unlike `python -m pytest`) does not put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.fake_kube import FakeKubeServer

TOKEN = "sha256~not-a-real-token-but-a-secret-all-the-same"
DEADLINE = 5.0  # seconds any expected convergence may take; generous, only a failing test waits this long
FAST = Backoff(initial=0.02, factor=2.0, cap=0.2, jitter=0.5)
VMIS = "virtualmachineinstances.kubevirt.io"


def pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def nad(name: str) -> dict[str, Any]:
    config = '{"cniVersion": "0.3.1", "name": "%s", "type": "ovn-k8s-cni-overlay", "topology": "localnet"}' % name
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"config": config}}


def mnp(name: str) -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"k8s.v1.cni.cncf.io/policy-for": "default/tenantblue"}},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def vmi(name: str) -> dict[str, Any]:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"domain": {"devices": {}}}}


class ManualClock:
    """Wall clock for health timestamps that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    fake = FakeKubeServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def make_source(server: FakeKubeServer) -> Iterator[Callable[..., KubeSource]]:
    started: list[KubeSource] = []

    def make(**options: Any) -> KubeSource:
        configuration = client.Configuration(host=server.url, api_key={"authorization": f"Bearer {TOKEN}"})
        settings: dict[str, Any] = {"watch_timeout_seconds": 2, "backoff": FAST, "slow_retry_seconds": 0.3}
        source = KubeSource(client.ApiClient(configuration), **{**settings, **options})
        source.start()
        started.append(source)
        return source

    yield make
    for source in started:
        source.stop()


def converged(source: KubeSource, server: FakeKubeServer) -> bool:
    return dict(source.snapshot().objects) == server.objects()


def wait_converged(source: KubeSource, server: FakeKubeServer) -> None:
    expected = server.objects()
    assert source.wait_until(lambda: dict(source.snapshot().objects) == expected, DEADLINE), (
        f"store {sorted(source.snapshot().objects)} never matched server {sorted(expected)}")


def synced(source: KubeSource) -> None:
    assert source.wait_for_sync(DEADLINE), source.health()


# -- listing --------------------------------------------------------------------------------------------------------


def test_initial_list_holds_every_kind_with_api_version_and_kind(server, make_source):
    for obj in (namespace("default"), pod("podclient"), nad("tenantblue"), mnp("deny-all"), vmi("vm-server")):
        server.create(obj)
    source = make_source()
    synced(source)

    snapshot = source.snapshot()
    assert dict(snapshot.objects) == server.objects()
    assert {key.kind for key in snapshot.objects} == {
        "Namespace", "Pod", "NetworkAttachmentDefinition", "MultiNetworkPolicy", "VirtualMachineInstance"}
    assert snapshot.of_kind("Pod")[0]["apiVersion"] == "v1"
    assert snapshot.generation > 0
    assert all(h.up and h.synced and h.available for h in source.health().values())


def test_large_lists_are_paged_and_reassembled(server, make_source):
    for i in range(5):
        server.create(pod(f"p{i}"))
    source = make_source(list_page_size=2)
    synced(source)

    assert len(source.snapshot().of_kind("Pod")) == 5
    pages = [r for r in server.requests("pods", watch=False)]
    assert [r.query.get("continue") is not None for r in pages] == [False, True, True]


def test_requests_carry_the_token(server, make_source):
    synced(make_source())
    assert {r.authorization for r in server.requests()} == {f"Bearer {TOKEN}"}


# -- watching -------------------------------------------------------------------------------------------------------


def test_adds_updates_and_deletes_arrive_through_the_watch(server, make_source):
    server.create(pod("a"))
    source = make_source()
    synced(source)

    server.create(pod("b"))
    wait_converged(source, server)
    server.update(pod("a", role="db"))
    wait_converged(source, server)
    assert source.snapshot().objects[("Pod", "default", "a")]["metadata"]["labels"] == {"role": "db"}
    server.delete(pod("b"))
    wait_converged(source, server)

    assert len(server.requests("pods", watch=False)) == 1  # one list; everything else came from the watch


def test_generation_grows_only_on_change_and_snapshots_stay_frozen(server, make_source):
    source = make_source()
    synced(source)
    before = source.snapshot()
    assert source.wait_for_change(before.generation, 0.05) == before.generation  # nothing changed: timeout

    server.create(pod("a"))
    after_generation = source.wait_for_change(before.generation, DEADLINE)

    assert after_generation > before.generation
    assert ("Pod", "default", "a") not in before.objects  # an old snapshot does not move
    assert ("Pod", "default", "a") in source.snapshot().objects
    with pytest.raises(TypeError):
        before.objects[("Pod", "default", "x")] = {}  # type: ignore[index]


def test_watch_closed_by_server_resumes_from_last_resource_version_without_relist(server, make_source):
    server.create(pod("a"))
    source = make_source()
    synced(source)
    listed_at = source.health()["pods"].resource_version
    assert server.wait_for_watches("pods")

    server.close_watches()
    server.create(pod("b"))  # happens while the client re-establishes its watch: replayed from history
    server.create(pod("c"))
    wait_converged(source, server)

    assert len(server.requests("pods", watch=False)) == 1
    assert source.health()["pods"].relists == 0
    rewatch_versions = [r.query["resourceVersion"] for r in server.requests("pods", watch=True)]
    assert rewatch_versions[0] == listed_at and len(rewatch_versions) >= 2


def test_bookmarks_advance_the_resource_version_so_compaction_does_not_force_a_relist(server, make_source):
    source = make_source()
    synced(source)
    server.create(nad("tenantblue"))  # moves the global resourceVersion past what the pod watch has seen
    assert server.wait_for_watches("pods")
    server.send_bookmarks()
    target = str(server.resource_version)
    assert source.wait_until(lambda: source.health()["pods"].resource_version == target, DEADLINE)

    server.compact()
    server.close_watches()
    server.create(pod("a"))
    wait_converged(source, server)

    assert source.health()["pods"].relists == 0


# -- 410 Gone -------------------------------------------------------------------------------------------------------


def test_compaction_while_disconnected_forces_relist_that_converges_including_deletes(server, make_source):
    for name in ("a", "b", "c"):
        server.create(pod(name))
    source = make_source()
    synced(source)

    server.stop()
    server.delete(pod("a"))  # a delete the client can only learn from a relist
    server.update(pod("b", tier="web"))
    server.create(pod("d"))
    server.compact()
    server.start()

    wait_converged(source, server)
    assert source.health()["pods"].relists >= 1
    assert ("Pod", "default", "a") not in source.snapshot().objects


def test_http_410_on_watch_also_relists(server, make_source):
    source = make_source()
    synced(source)
    server.fail_next(1, status=410, resource="pods")
    server.close_watches()

    assert source.wait_until(lambda: source.health()["pods"].relists == 1, DEADLINE)
    server.create(pod("a"))
    wait_converged(source, server)


# -- outages and errors ---------------------------------------------------------------------------------------------


def test_outage_marks_resources_down_and_stale_then_recovery_converges(server, make_source):
    clock = ManualClock()
    server.create(pod("a"))
    source = make_source(clock=clock)
    synced(source)
    assert source.health()["pods"].staleness_seconds() == 0.0

    server.stop()
    assert source.wait_until(lambda: not any(h.up for h in source.health().values()), DEADLINE)
    clock.now += 30
    down = source.health()["pods"]
    assert down.staleness_seconds() == pytest.approx(30.0)
    assert down.last_error_temporary is True and down.last_error
    assert dict(source.snapshot().objects) != {}  # the last known state is kept, only flagged stale

    server.delete(pod("a"))
    server.create(pod("b"))
    server.start()

    assert source.wait_until(lambda: all(h.up for h in source.health().values()), DEADLINE)
    wait_converged(source, server)
    assert source.health()["pods"].staleness_seconds() == 0.0
    assert source.health()["pods"].relists == 0  # history survived the outage: resumed, not relisted


def test_server_errors_back_off_exponentially_then_succeed(server, make_source):
    server.create(pod("a"))
    server.fail_next(3, status=500, resource="pods")
    source = make_source(backoff=Backoff(initial=0.05, factor=2.0, cap=1.0, jitter=0.0))
    synced(source)

    lists = [r.at for r in server.requests("pods", watch=False)]
    gaps = [later - earlier for earlier, later in zip(lists, lists[1:])]
    assert len(lists) == 4
    assert all(gap >= nominal * 0.95 for gap, nominal in zip(gaps, (0.05, 0.1, 0.2))), gaps
    health = source.health()["pods"]
    assert health.up and health.consecutive_failures == 0
    assert health.last_error is not None and "HTTP 500" in health.last_error and health.last_error_temporary


def test_permanent_errors_are_reported_as_such_and_retried_slowly(server, make_source):
    server.fail_next(1, status=403, resource="pods")
    source = make_source()
    assert source.wait_until(lambda: source.health()["pods"].last_error_temporary is False, DEADLINE)
    assert not source.synced()

    synced(source)  # the next attempt, a slow retry later, succeeds (RBAC fixed)
    assert "HTTP 403" in (source.health()["pods"].last_error or "")


def test_backoff_is_capped_and_jittered_below_the_nominal_delay():
    rng = random.Random(7)
    backoff = Backoff(initial=0.5, factor=2.0, cap=30.0, jitter=0.5)
    delays = [backoff.delay(failures, rng) for failures in range(1, 200)]
    nominal = [min(30.0, 0.5 * 2 ** (n - 1)) for n in range(1, 200)]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal))
    assert max(delays) <= 30.0 and len(set(delays)) == len(delays)


# -- optional APIs --------------------------------------------------------------------------------------------------


def test_missing_crd_is_reported_unavailable_and_the_rest_works(server, make_source):
    server.set_unavailable("virtualmachineinstances")
    server.create(pod("a"))
    source = make_source()
    synced(source)  # an unserved API does not hold up sync

    vmis = source.health()[VMIS]
    assert (vmis.available, vmis.up, vmis.last_error_temporary) == (False, False, False)
    assert "404" in (vmis.last_error or "")
    assert all(h.up for name, h in source.health().items() if name != VMIS)
    assert ("Pod", "default", "a") in source.snapshot().objects

    server.set_unavailable("virtualmachineinstances", False)  # KubeVirt gets installed: picked up on a slow retry
    server.create(vmi("vm-server"))
    wait_converged(source, server)
    assert source.health()[VMIS].available is True


def test_crd_removed_while_running_drops_its_objects(server, make_source):
    server.create(vmi("vm-server"))
    source = make_source()
    synced(source)

    server.set_unavailable("virtualmachineinstances")
    assert source.wait_until(lambda: source.health()[VMIS].available is False, DEADLINE)
    assert source.snapshot().of_kind("VirtualMachineInstance") == []
    assert source.synced()


# -- lifecycle and hygiene ------------------------------------------------------------------------------------------


def test_stop_returns_promptly_while_watching(server, make_source):
    source = make_source(watch_timeout_seconds=30)
    synced(source)
    assert server.wait_for_watches()
    started = time.monotonic()
    assert source.stop(timeout=2.0)
    assert time.monotonic() - started < 1.0
    assert not [t for t in threading.enumerate() if t.name.startswith("kube-")]


def test_stop_returns_promptly_while_backing_off(server, make_source):
    source = make_source(backoff=Backoff(initial=30.0, cap=30.0), slow_retry_seconds=60.0)
    synced(source)
    server.stop()
    assert source.wait_until(lambda: not source.health()["pods"].up, DEADLINE)
    started = time.monotonic()
    assert source.stop(timeout=2.0)
    assert time.monotonic() - started < 1.0


def test_token_never_reaches_logs_or_health(server, make_source, caplog):
    caplog.set_level(logging.DEBUG)
    server.fail_next(2, status=500)
    server.fail_next(1, status=401, resource="namespaces")
    source = make_source()
    synced(source)
    server.stop()
    assert source.wait_until(lambda: not source.health()["pods"].up, DEADLINE)

    assert TOKEN not in caplog.text
    assert all(TOKEN not in (h.last_error or "") for h in source.health().values())
