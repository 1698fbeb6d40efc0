"""The selector memo kept across re-plans: answers by value, so a change is matched again exactly where it can
differ, and the expected plane built with it equals one built afresh."""

from __future__ import annotations

from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.core.selectors import LabelSelector, MatchMemo
from tests.unit.test_incremental_plan import NET, World, _policy

WEB = (("app", "web"),)
API = (("app", "api"),)


def test_memo_answers_as_the_selector_does_and_matches_each_label_set_once_per_round():
    memo = MatchMemo()
    web = LabelSelector((("app", "web"),))
    assert memo.matches(web, WEB) and not memo.matches(web, API)
    assert memo.matches(web, WEB) and memo.misses == 2
    memo.next_round()
    assert memo.matches(web, WEB) and memo.misses == 2  # kept from the previous round


def test_memo_drops_what_a_round_did_not_ask_for():
    memo = MatchMemo()
    web = LabelSelector((("app", "web"),))
    memo.matches(web, WEB)
    memo.next_round()
    memo.matches(web, API)  # a round that no longer has the web label set
    memo.next_round()
    memo.matches(web, WEB)
    assert memo.misses == 3  # matched again: the memo holds only the last round's world


def reach(world: World, memo: MatchMemo | None) -> NetworkReachability:
    return NetworkReachability(world.inventory(), NET, matches=memo)


def same_plane(a: NetworkReachability, b: NetworkReachability) -> bool:
    return list(a.cells()) == list(b.cells()) and a.class_index == b.class_index and a.sides == b.sides


def test_a_label_change_is_matched_again_and_the_plane_equals_a_fresh_one():
    world, memo = World.base(), MatchMemo()
    before = reach(world, memo)
    memo.next_round()
    world.pods["p5"] = ("web", world.pods["p5"][1])  # db -> web: a label set the memo has seen
    world.pods["p6"] = ("cache", world.pods["p6"][1])  # a label set it has not
    misses = memo.misses
    after = reach(world, memo)
    fresh = reach(world, None)
    assert same_plane(after, fresh) and not same_plane(before, after)
    # Only the new label set was matched (against each pod selector that can see it), nothing else again.
    assert 0 < memo.misses - misses <= len({p.pod_selector for p in fresh.policies}) + 2 * len(fresh.rules)


def test_a_namespace_relabel_changes_the_namespace_selector_answer():
    world, memo = World.base(), MatchMemo()
    world.policies["deny"] = {"podSelector": {}, "policyTypes": ["Ingress"]}  # egress open: ingress decides
    del world.policies["db-out"]
    before = reach(world, memo)
    memo.next_round()
    world.team = "red"  # team-in admits namespaces labelled team=blue only
    after = reach(world, memo)
    fresh = reach(world, None)
    assert same_plane(after, fresh)
    assert list(after.cells()) != list(before.cells())  # the relabel did change verdicts: not served stale


def test_a_policy_edit_matches_only_its_own_selector_again():
    world, memo = World.base(), MatchMemo()
    reach(world, memo)
    memo.next_round()
    misses = memo.misses
    spec = _policy("web", 8080, "Ingress", "api")
    spec["podSelector"] = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}
    world.policies["web-in"] = spec  # a selector no policy had; its peer selector (app=api) is one seen before
    after = reach(world, memo)
    assert same_plane(after, reach(world, None))
    label_sets = {labels for _, labels in ((a.ref.namespace, a.labels) for a in world.inventory().attachments)}
    assert memo.misses - misses == len(label_sets)  # the one new selector against each label set, once


def test_unchanged_label_sets_are_not_scanned_again_after_a_policy_edit():
    world, memo = World.base(), MatchMemo()
    reach(world, memo)
    memo.next_round()
    scans = memo.scans
    edit = _policy("web", 8443, "Ingress", "api")  # web-in's port only: every selector is one seen before
    world.policies["web-in"] = edit
    after = reach(world, memo)
    assert memo.scans == scans and same_plane(after, reach(world, None))
    memo.next_round()
    edit["podSelector"] = {"matchExpressions": [{"key": "app", "operator": "Exists"}]}
    after = reach(world, memo)
    # The new selector, scanned for whom it isolates and for whether it selects anything (one universe each).
    assert memo.scans - scans == 2 and same_plane(after, reach(world, None))


def test_a_pod_moving_to_another_existing_label_set_keeps_the_scans_and_equals_a_fresh_plane():
    world, memo = World.base(), MatchMemo()
    reach(world, memo)
    memo.next_round()
    scans = memo.scans
    world.pods["p5"] = ("web", world.pods["p5"][1])  # db -> web: db and web label sets both still held
    after = reach(world, memo)
    assert memo.scans == scans and same_plane(after, reach(world, None))
    memo.next_round()
    del world.pods["p2"], world.pods["p8"]  # the last db pods: the db label set is gone, the universes differ
    after = reach(world, memo)
    assert memo.scans > scans and same_plane(after, reach(world, None))
