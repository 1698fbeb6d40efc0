"""The programmed plane: OVN northbound ACLs read back as verdicts, with the deciding ACL as provenance.

OVN's order (shared/design.md): from-lport ACLs twice — before load balancing, then after (`apply-after-lb`,
where OVN-K puts egress policy) — then to-lport; tiers ascending; in a tier the highest-priority match decides,
`pass` defers to the next tier, no match allows. Every stage must allow.
"""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from segcheck.agent.core.enforcement import enforced_policies
from segcheck.agent.core.findings import FindingKind
from segcheck.agent.core.model import (
    AddressEndpoint,
    Attachment,
    AttachmentKind,
    ExternalEndpoint,
    Network,
    PortRange,
    Protocol,
    Ref,
    Verdict,
)
from segcheck.agent.core.northbound import (
    NbSnapshot,
    OvsSnapshot,
    parse_bridge_mappings,
)
from segcheck.agent.core.acl_pipeline import Effect, Stage
from segcheck.agent.core.ovnk.versions import NbShapes
from segcheck.agent.core.programmed import (
    ProgrammedPlane,
    check_localnet_mapping,
    judge_port,
)

from tests.nb_builders import (
    LOCALNET,
    NET_REF,
    NETWORK,
    POD_LSP,
    POD_MAC,
    VM_LSP,
    VM_MAC,
    Nb,
    acl,
    seed_inventory,
    seed_nb,
)

A, D, U = Verdict.ALLOWED, Verdict.DENIED, Verdict.UNKNOWN
TCP, UDP = Protocol.TCP, Protocol.UDP
ip = ipaddress.ip_address

POD = Attachment(AttachmentKind.POD, Ref("default", "podclient"), NET_REF, ips=(ip("192.168.200.10"),))
VM = Attachment(AttachmentKind.VM, Ref("default", "vm-server"), NET_REF, ips=(ip("192.168.200.20"),))
DB = ExternalEndpoint("db", (ip("192.168.200.5"),), NET_REF)
BOTH = (POD_LSP, VM_LSP)


def plane(nb: Nb | NbSnapshot, network: Network = NETWORK) -> ProgrammedPlane:
    return ProgrammedPlane(nb.build() if isinstance(nb, Nb) else nb, network)


def verdict(p: ProgrammedPlane, src=POD, dst=DB, port: int = 5432, protocol: Protocol = TCP) -> Verdict:
    return p.judge(src, dst, port, protocol).verdict


def kinds(p: ProgrammedPlane) -> list[FindingKind]:
    return [f.kind for f in p.findings]


# ----------------------------------------------------------------------------- the seed as OVN-K programs it

@pytest.fixture(scope="module")
def seed() -> ProgrammedPlane:
    return plane(seed_nb())


def seed_acl(p: ProgrammedPlane, owner: str, **ids: str):
    """The one ACL of the seed with that owner (and external_ids)."""
    [found] = [a for a in p.nb.acls.values() if a.ids.get("k8s.ovn.org/name") == owner
               and all(a.ids.get(k) == v for k, v in ids.items())]
    return found


SEED_KEYS = {"pod": POD, "vm": VM, "db": DB}
# Default: denied. Exceptions per (port, protocol): the pairs OVN lets through.
SEED_TABLE = {
    (5432, TCP): {("pod", "db"): A, ("vm", "db"): A},
    (5433, TCP): {},
    (5431, TCP): {},
    (5432, UDP): {},
    (22, TCP): {},
}


@pytest.mark.parametrize("port,protocol", list(SEED_TABLE))
def test_seed_truth_table(seed, port, protocol):
    exceptions = SEED_TABLE[(port, protocol)]
    want = {(s, d): exceptions.get((s, d), D) for s in SEED_KEYS for d in SEED_KEYS
            if s != d and (s, d) != ("db", "db")}
    got = {(s, d): verdict(seed, SEED_KEYS[s], SEED_KEYS[d], port, protocol) for s, d in want}
    assert got == want


def test_seed_db_egress_is_allowed_by_the_after_lb_allow_related_acl(seed):
    allow = seed_acl(seed, "default:allow-db-egress")
    assert (allow.direction, allow.priority, allow.action, allow.tier, allow.after_lb) == \
        ("from-lport", 1001, "allow-related", 2, True)
    j = seed.judge(POD, DB, 5432, TCP)
    assert j.because == [allow.short]
    assert j.reasons[0].detail == (f"from-lport tier 2 priority 1001 allow-related, owner default:allow-db-egress: "
                                   f"{allow.match}")


def test_seed_other_ports_are_denied_by_the_egress_default_deny(seed):
    deny = seed_acl(seed, "default", direction="Egress", type="defaultDeny")
    assert (deny.direction, deny.priority, deny.action, deny.after_lb) == ("from-lport", 1000, "drop", True)
    j = seed.judge(POD, DB, 5433, TCP)
    assert j.because == [deny.short]
    assert "owner default:" in j.reasons[0].detail


def test_seed_ingress_is_denied_by_the_to_lport_default_deny(seed):
    deny = seed_acl(seed, "default", direction="Ingress", type="defaultDeny")
    assert (deny.direction, deny.priority, deny.action) == ("to-lport", 1000, "drop")
    assert seed.judge(DB, VM, 22, TCP).because == [deny.short]


def test_seed_pod_to_vm_is_denied_at_both_ends(seed):
    egress = seed_acl(seed, "default", direction="Egress", type="defaultDeny")
    ingress = seed_acl(seed, "default", direction="Ingress", type="defaultDeny")
    assert seed.judge(POD, VM, 5432, TCP).because == [egress.short, ingress.short]


def test_seed_arp_allow_acls_do_not_open_tcp(seed):
    arp = [a for a in seed.nb.acls.values() if a.ids.get("type") == "arpAllow"]
    assert len(arp) == 2 and all(a.priority == 1001 and a.action == "allow" for a in arp)
    assert not {a.short for a in arp} & {r for s in SEED_KEYS.values() for d in SEED_KEYS.values() if s != d
                                        for r in seed.judge(s, d, 80, TCP).because}


def test_seed_has_no_findings_and_every_policy_is_programmed(seed):
    assert seed.findings == []
    policies = enforced_policies(seed_inventory(), NET_REF).policies
    assert {str(p.ref) for p in policies} == {"default/default-deny", "default/allow-db-egress"}
    assert seed.policy_findings(policies) == []


def test_seed_segments_split_at_the_db_port(seed):
    allow = seed_acl(seed, "default:allow-db-egress")
    deny = seed_acl(seed, "default", direction="Egress", type="defaultDeny")
    assert [(str(r), j.verdict, j.because) for r, j in seed.segments(POD, DB, TCP)] == [
        ("1-5431/TCP", D, [deny.short]), ("5432/TCP", A, [allow.short]), ("5433-65535/TCP", D, [deny.short])]
    assert [(str(r), j.verdict) for r, j in seed.segments(POD, DB, UDP)] == [("*/UDP", D)]
    assert seed.boundary(TCP) == [1, 5432, 5433, 65536]


def test_policy_without_port_group_or_acls_is_not_programmed():
    inv = seed_inventory()
    nb = seed_nb(inv)
    [(name, pg)] = [(n, pg) for n, pg in nb.port_groups.items() if dict(pg.external_ids).get("name") == "default_allow-db-egress"]
    pgs = {n: g for n, g in nb.port_groups.items() if n != name}
    policies = enforced_policies(inv, NET_REF).policies
    acls_left = NbSnapshot(nb.switches, nb.ports, pgs, nb.address_sets, nb.acls)
    assert plane(acls_left).policy_findings(policies) == []  # its ACLs still name it as their owner
    assert verdict(plane(acls_left), POD, DB, 5432) is D  # but they apply to no port any more
    gone = NbSnapshot(nb.switches, nb.ports, pgs, nb.address_sets,
                      {u: a for u, a in nb.acls.items() if u not in pg.acls})
    found = plane(gone).policy_findings(policies)
    assert [(f.kind, str(f.policy), str(f.network)) for f in found] == [
        (FindingKind.POLICY_NOT_PROGRAMMED, "default/allow-db-egress", "default/tenantblue")]


# ----------------------------------------------------------------------------- stages

def egress(nb: Nb, *acls) -> Nb:
    return nb.group("pg", BOTH, *acls)


def test_a_pre_lb_allow_does_not_beat_an_after_lb_drop():
    p = plane(egress(Nb(), acl("preallow", "from-lport", 2000, "allow-related", "inport == @pg && tcp", after_lb=False),
                     acl("postdrop", "from-lport", 1000, "drop", "inport == @pg", after_lb=True)))
    j = p.judge(POD, DB, 5432, TCP)
    assert (j.verdict, j.because) == (D, ["acl/postdrop"])


def test_a_pre_lb_drop_is_not_undone_after_lb():
    p = plane(egress(Nb(), acl("predrop0", "from-lport", 1000, "drop", "inport == @pg", after_lb=False),
                     acl("postallw", "from-lport", 2000, "allow-related", "inport == @pg", after_lb=True)))
    assert p.judge(POD, DB, 5432, TCP).because == ["acl/predrop0"]
    assert verdict(p) is D


def test_both_stages_allowing_report_both_acls():
    p = plane(egress(Nb(), acl("preallow", "from-lport", 1001, "allow-related", "inport == @pg", after_lb=False),
                     acl("postallw", "from-lport", 1001, "allow-related", "inport == @pg", after_lb=True)))
    assert (verdict(p), p.judge(POD, DB, 5432, TCP).because) == (A, ["acl/preallow", "acl/postallw"])


def test_every_judgement_says_what_each_stage_and_tier_did():
    p = plane(egress(Nb(), acl("t0pass00", "from-lport", 1000, "pass", "inport == @pg", tier=0),
                     acl("t2allow0", "from-lport", 1001, "allow-related", "inport == @pg && tcp.dst == 5432"),
                     acl("t2drop00", "from-lport", 1000, "drop", "inport == @pg")))
    j = p.judge(POD, DB, 5432, TCP)
    assert (j.verdict, j.because) == (A, ["acl/t2allow0"])
    assert [(e.stage, e.tier, e.acl.uuid if e.acl else None, e.effect) for e in j.effects] == [
        (Stage.EGRESS_BEFORE_LB, None, None, Effect.NO_MATCH),
        (Stage.EGRESS_AFTER_LB, 0, "t0pass00", Effect.PASS),
        (Stage.EGRESS_AFTER_LB, 2, "t2allow0", Effect.ALLOW),
        (Stage.INGRESS, None, None, Effect.NO_MATCH)]
    assert j.chain() == {Stage.EGRESS_BEFORE_LB: "no ACL: no-match",
                         Stage.EGRESS_AFTER_LB: "tier 0 pass (acl/t0pass00) -> tier 2 allow (acl/t2allow0)",
                         Stage.INGRESS: "no ACL: no-match"}
    assert j.effects[2].to_json() == {"stage": "egress after LB", "tier": 2, "acl": "acl/t2allow0", "effect": "allow"}
    denied = p.judge(POD, DB, 5433, TCP)
    assert [str(e) for e in denied.effects if e.stage is Stage.EGRESS_AFTER_LB] == [
        "tier 0 pass (acl/t0pass00)", "tier 2 deny (acl/t2drop00)"]


def test_a_tier_without_a_match_is_shown_and_lets_the_next_tier_decide():
    p = plane(egress(Nb(), acl("t0udp000", "from-lport", 1000, "drop", "inport == @pg && udp", tier=0),
                     acl("t2drop00", "from-lport", 1000, "drop", "inport == @pg")))
    j = p.judge(POD, DB, 5432, TCP)
    assert [(e.tier, e.effect) for e in j.effects if e.stage is Stage.EGRESS_AFTER_LB] == [
        (0, Effect.NO_MATCH), (2, Effect.DENY)]
    assert j.verdict is D


def test_egress_allowed_still_needs_ingress_at_the_destination():
    p = plane(Nb().group("pg", BOTH,
                         acl("egallow0", "from-lport", 1001, "allow-related", "inport == @pg && tcp.dst == 80"),
                         acl("indrop00", "to-lport", 1000, "drop", "outport == @pg")))
    j = p.judge(POD, VM, 80, TCP)
    assert (j.verdict, j.because) == (D, ["acl/indrop00"])  # only the denying stage is named
    assert verdict(p, POD, DB, 80) is A  # the DB is behind the localnet port, not in @pg


def test_to_lport_acls_apply_whatever_their_after_lb_flag():
    p = plane(Nb().group("pg", BOTH, acl("indrop00", "to-lport", 1000, "drop", "outport == @pg", after_lb=True)))
    assert verdict(p, DB, VM, 80) is D


# ----------------------------------------------------------------------------- priorities, tiers, actions

@pytest.mark.parametrize("acls,want,because", [
    ([("allow-related", 1001, 2), ("drop", 1000, 2)], A, "acl/a0"),
    ([("allow-related", 1000, 2), ("drop", 1001, 2)], D, "acl/a1"),
    ([("allow", 1000, 1), ("drop", 32000, 2)], A, "acl/a0"),  # a lower tier decides first
    ([("drop", 1000, 1), ("allow", 32000, 2)], D, "acl/a0"),
    ([("pass", 2000, 1), ("drop", 1000, 2)], D, "acl/a1"),  # pass defers to the next tier
    ([("pass", 2000, 1), ("allow", 1000, 1), ("drop", 1000, 2)], D, "acl/a2"),  # ... skipping its own tier
    ([("pass", 2000, 1), ("allow-stateless", 1000, 2)], A, "acl/a1"),
    ([("pass", 2000, 1)], A, "nb/no-acl"),  # nothing after the pass: allowed
    ([("reject", 1000, 2)], D, "acl/a0"),  # reject counts as denied
    ([("allow-stateless", 1000, 2)], A, "acl/a0"),
    ([("allow", 0, 0), ("drop", 1, 0)], D, "acl/a1"),  # tier 0 (no tiers configured)
])
def test_priorities_tiers_and_actions(acls, want, because):
    made = [acl(f"a{i}", "from-lport", prio, action, "inport == @pg", tier=tier)
            for i, (action, prio, tier) in enumerate(acls)]
    j = plane(egress(Nb(), *made)).judge(POD, DB, 5432, TCP)
    assert (j.verdict, j.because) == (want, [because])


def test_no_acl_means_allowed():
    j = plane(Nb()).judge(POD, VM, 5432, TCP)
    assert (j.verdict, j.because) == (A, ["nb/no-acl"])


def test_acls_on_the_switch_count_too():
    p = plane(Nb().on_switch(acl("swdrop00", "to-lport", 1000, "drop", f'outport == "{VM_LSP}"')))
    assert (verdict(p, POD, VM, 80), verdict(p, VM, POD, 80)) == (D, A)


def test_port_groups_without_ports_on_this_switch_are_ignored():
    p = plane(Nb().group("othernet", ("blue_other_pod",), acl("otherdrp", "to-lport", 1000, "drop", "1")))
    assert verdict(p, POD, VM, 80) is A
    assert p.findings == []


# ----------------------------------------------------------------------------- undecidable and foreign ACLs

def test_unparseable_acl_is_a_finding_and_unknown_when_it_outranks():
    p = plane(egress(Nb(), acl("badmatch", "from-lport", 1001, "allow-related", "inport == @pg && tcp.dst =="),
                     acl("drop0000", "from-lport", 1000, "drop", "inport == @pg")))
    assert kinds(p) == [FindingKind.UNKNOWN_ACL]
    assert "acl/badmatch" in p.findings[0].message
    j = p.judge(POD, DB, 5432, TCP)
    assert (j.verdict, j.because) == (U, ["acl/badmatch"])


def test_unparseable_acl_below_the_deciding_acl_does_not_matter():
    p = plane(egress(Nb(), acl("badmatch", "from-lport", 999, "allow-related", "((("),
                     acl("drop0000", "from-lport", 1000, "drop", "inport == @pg")))
    assert kinds(p) == [FindingKind.UNKNOWN_ACL]
    assert p.judge(POD, DB, 5432, TCP).because == ["acl/drop0000"]


def test_malformed_acl_never_crashes_the_plane():
    p = plane(egress(Nb(), acl("garbage0", "from-lport", 1001, "allow", '@pg inport == "x"')))
    assert kinds(p) == [FindingKind.UNKNOWN_ACL]


def test_undecidable_match_is_unknown_without_a_finding():
    p = plane(egress(Nb(), acl("ctest000", "from-lport", 1001, "allow-related", "inport == @pg && ct.est"),
                     acl("drop0000", "from-lport", 1000, "drop", "inport == @pg")))
    assert p.findings == []
    assert verdict(p) is U
    assert verdict(p, DB, POD) is A  # the undecidable ACL does not match packets entering from the localnet port


def test_a_denying_stage_outweighs_an_undecidable_one():
    p = plane(Nb().group("pg", BOTH, acl("ctest000", "from-lport", 1001, "allow", "inport == @pg && ct.est"),
                         acl("indrop00", "to-lport", 1000, "drop", "outport == @pg")))
    assert (verdict(p, POD, VM, 80), p.judge(POD, VM, 80, TCP).because) == (D, ["acl/indrop00"])


@pytest.mark.parametrize("owner_type,unowned", [
    ("NetworkPolicy", False), ("NetpolNamespace", False), ("NetpolDefault", False), ("AdminNetworkPolicy", False),
    ("EgressFirewall", False), (None, True), ("SomethingElse", True),
])
def test_acl_without_ovnk_owner_is_unowned(owner_type, unowned):
    made = acl("foreign0", "from-lport", 1001, "allow", "inport == @pg", owner=None) if owner_type is None else \
        acl("foreign0", "from-lport", 1001, "allow", "inport == @pg", owner_type=owner_type)
    p = plane(egress(Nb(), made))
    assert kinds(p) == ([FindingKind.UNOWNED_ACL] if unowned else [])
    if unowned:
        assert "acl/foreign0" in p.findings[0].message and str(p.findings[0].network) == "default/tenantblue"


def test_unowned_acl_still_decides():
    p = plane(egress(Nb(), acl("foreign0", "from-lport", 2000, "allow-related", "inport == @pg", owner=None),
                     acl("drop0000", "from-lport", 1000, "drop", "inport == @pg")))
    j = p.judge(POD, DB, 22, TCP)
    assert (j.verdict, j.because) == (A, ["acl/foreign0"])
    assert "owner unowned" in j.reasons[0].detail


# ----------------------------------------------------------------------------- locating endpoints

def test_endpoint_without_logical_switch_port_is_unknown():
    p = plane(Nb().without_port(POD_LSP).port("stray", f"{POD_MAC} 10.9.9.9"))
    j = p.judge(POD, DB, 5432, TCP)
    assert (j.verdict, j.because) == (U, ["nb/port-missing"])
    assert "default/podclient" in j.reasons[0].detail


def test_missing_switch_is_unknown_and_a_finding():
    p = plane(Nb(switch=False))
    assert not p.available
    assert kinds(p) == [FindingKind.LOCALNET_SWITCH_MISSING]
    j = p.judge(POD, DB, 5432, TCP)
    assert (j.verdict, j.because) == (U, ["nb/switch-missing"])
    assert [(str(r), j.verdict) for r, j in p.segments(POD, DB, TCP)] == [("*/TCP", U)]


def test_boundary_without_switch_is_the_whole_port_space():
    assert plane(Nb(switch=False)).boundary(TCP) == [1, 65536]


def test_vm_port_is_found_by_ip_when_named_after_the_virt_launcher_pod():
    p = plane(Nb())
    assert p.port_of(POD) == POD_LSP  # named <nad prefix><namespace>_<pod>
    assert p.port_of(VM) == VM_LSP  # default.tenantblue_default_virt-launcher-vm-server-8z2cx
    assert p.port_row(VM).macs == (VM_MAC,)


def test_vm_port_is_found_by_mac_when_the_guest_address_is_not_in_nb():
    by_mac = Attachment(AttachmentKind.VM, Ref("default", "vm-server"), NET_REF, mac=VM_MAC,
                        ips=(ip("192.168.200.99"),))
    assert plane(Nb()).port_of(by_mac) == VM_LSP
    stranger = Attachment(AttachmentKind.VM, Ref("default", "vm-x"), NET_REF, ips=(ip("192.168.200.99"),))
    assert plane(Nb()).port_of(stranger) is None


def test_the_localnet_port_is_never_taken_for_a_workload():
    p = plane(Nb().port(LOCALNET, "unknown 192.168.200.20", type="localnet").without_port(VM_LSP))
    assert p.port_of(VM) is None


@pytest.mark.parametrize("endpoint", [DB, AddressEndpoint(ip("192.168.200.77"))])
def test_external_endpoints_use_the_localnet_port(endpoint):
    assert plane(Nb()).port_of(endpoint) == LOCALNET
    assert plane(Nb().without_port(LOCALNET)).judge(POD, endpoint, 80, TCP).because == ["nb/port-missing"]


def test_external_source_enters_through_the_localnet_port():
    p = plane(Nb().on_switch(acl("fromext0", "from-lport", 1000, "drop", f'inport == "{LOCALNET}"')))
    assert (verdict(p, DB, POD, 80), verdict(p, POD, DB, 80)) == (D, A)


# ----------------------------------------------------------------------------- segments

def test_segments_split_at_acl_port_constants():
    p = plane(egress(Nb(), acl("web00000", "from-lport", 1001, "allow-related", "inport == @pg && tcp.dst == 80"),
                     acl("range000", "from-lport", 1001, "allow-related", "inport == @pg && 8000<=tcp.dst<=8100"),
                     acl("drop0000", "from-lport", 1000, "drop", "inport == @pg")))
    assert [(str(r), j.verdict, j.because) for r, j in p.segments(POD, DB, TCP)] == [
        ("1-79/TCP", D, ["acl/drop0000"]), ("80/TCP", A, ["acl/web00000"]), ("81-7999/TCP", D, ["acl/drop0000"]),
        ("8000-8100/TCP", A, ["acl/range000"]), ("8101-65535/TCP", D, ["acl/drop0000"])]
    assert [str(r) for r, _ in p.segments(POD, DB, UDP)] == ["*/UDP"]


def test_segments_merge_equal_neighbours():
    # 2000 is a cut (of the shadowed ACL) but the deciding ACL and verdict are the same on both sides.
    p = plane(egress(Nb(), acl("high0000", "from-lport", 1002, "allow-related", "inport == @pg && tcp.dst >= 1000"),
                     acl("shadowed", "from-lport", 1001, "allow-related", "inport == @pg && tcp.dst == 2000"),
                     acl("drop0000", "from-lport", 1000, "drop", "inport == @pg")))
    assert p.boundary(TCP) == [1, 1000, 2000, 2001, 65536]
    assert [(str(r), j.because) for r, j in p.segments(POD, DB, TCP)] == [
        ("1-999/TCP", ["acl/drop0000"]), ("1000-65535/TCP", ["acl/high0000"])]


def test_segments_cover_the_port_space_and_agree_with_judge():
    p = plane(egress(Nb(), acl("some0000", "from-lport", 1001, "allow", "inport == @pg && (tcp.dst < 10 || tcp.dst > 65530)"),
                     acl("drop0000", "from-lport", 1000, "drop", "inport == @pg")))
    segs = p.segments(POD, DB, TCP)
    assert segs[0][0].first == 1 and segs[-1][0].last == 65535
    assert all(a[0].last + 1 == b[0].first for a, b in itertools.pairwise(segs))
    for port in (1, 9, 10, 65530, 65531, 65535):
        assert judge_port(segs, port) == p.judge(POD, DB, port, TCP)


# ----------------------------------------------------------------------------- the localnet bridge mapping

PATCHED = {"br-ex": ("br-ex", f"patch-{LOCALNET}-to-br-int"), "br-int": ("br-int", f"patch-br-int-to-{LOCALNET}")}


def ovs(mappings: str = "physnet:br-ex,tenantblue:br-ex", **bridges: tuple[str, ...]) -> OvsSnapshot:
    return OvsSnapshot(parse_bridge_mappings(mappings), bridges or dict(PATCHED))


def test_mapping_ok():
    status = check_localnet_mapping(NETWORK, ovs(), expected_bridge="br-ex")
    assert (status.ok, status.localnet, status.bridge, status.findings) == (True, "tenantblue", "br-ex", ())


def test_mapping_absent():
    status = check_localnet_mapping(NETWORK, ovs("physnet:br-ex"))
    assert (status.ok, status.bridge) == (False, None)
    assert [f.kind for f in status.findings] == [FindingKind.LOCALNET_UNMAPPED]
    assert "physnet:br-ex" in status.findings[0].message


def test_mapping_to_another_bridge():
    status = check_localnet_mapping(NETWORK, ovs("tenantblue:br-other", **{"br-other": ("br-other",
                                                 f"patch-{LOCALNET}-to-br-int"), "br-int": PATCHED["br-int"]}),
                                    expected_bridge="br-ex")
    assert (status.ok, status.bridge) == (False, "br-other")
    assert [f.kind for f in status.findings] == [FindingKind.LOCALNET_UNMAPPED]


@pytest.mark.parametrize("bridges,missing", [
    ({"br-ex": ("br-ex",), "br-int": PATCHED["br-int"]}, f"patch-{LOCALNET}-to-br-int"),
    ({"br-ex": PATCHED["br-ex"], "br-int": ("br-int",)}, f"patch-br-int-to-{LOCALNET}"),
])
def test_patch_port_missing(bridges, missing):
    status = check_localnet_mapping(NETWORK, ovs(**bridges))
    assert [f.kind for f in status.findings] == [FindingKind.PATCH_PORT_MISSING]
    assert missing in status.findings[0].message and not status.ok


def test_mapped_bridge_does_not_exist():
    status = check_localnet_mapping(NETWORK, ovs(**{"br-int": PATCHED["br-int"]}))
    assert [f.kind for f in status.findings] == [FindingKind.PATCH_PORT_MISSING]
    assert "bridge br-ex does not exist" in status.findings[0].message


def test_physical_network_name_is_what_the_mapping_names():
    renamed = Network(NET_REF, "tenantblue", "localnet", physical_network_name="physblue")
    assert check_localnet_mapping(renamed, ovs("physblue:br-ex")).ok
    assert not check_localnet_mapping(renamed, ovs("tenantblue:br-ex")).ok


def test_judge_port_picks_the_segment_holding_the_port():
    segs = plane(seed_nb()).segments(POD, DB, TCP)
    assert [judge_port(segs, p).verdict for p in (1, 5431, 5432, 5433, 65535)] == [D, D, A, D, D]
    assert segs[1][0] == PortRange(TCP, 5432, 5432)


# --- what NB reveals about the OVN-K version ----------------------------------------------------------------


def test_detects_the_acl_layout_and_a_profile_that_contradicts_it():
    from segcheck.agent.core.findings import FindingKind
    from segcheck.agent.core.programmed import detect_ovnk
    from tests.nb_builders import Nb, acl, seed_inventory

    network = seed_inventory().networks[Ref("default", "tenantblue")]
    seen, findings = detect_ovnk(seed_nb(), network, "4.14", end_port_supported=False, nb_shapes=NbShapes.V4_14)
    assert seen == ["policy port groups with only name and k8s.ovn.org/network ids (OVN-K 4.14)",
                    "one ACL per rule, peer and protocol (port-policy-protocol)", "ACL tiers in use"]
    assert findings == []
    seen, findings = detect_ovnk(seed_nb(), network, "current", end_port_supported=True, nb_shapes=NbShapes.CURRENT)
    assert [(f.kind, "--ovnk-version 4.14" in f.message) for f in findings] == [(FindingKind.PROFILE_MISMATCH, True)]
    ranged = Nb().group("pg", (), acl("rangeacl", "to-lport", 1001, "allow-related",
                                      "tcp && 8000<=tcp.dst<=8100 && outport == @pg", owner="default:range")).build()
    seen, findings = detect_ovnk(ranged, network, "4.14", end_port_supported=False)
    assert "port ranges programmed (endPort honoured)" in seen
    assert [f.kind for f in findings] == [FindingKind.PROFILE_MISMATCH]
    assert detect_ovnk(ranged, network, "current", end_port_supported=True)[1] == []


def test_layer2_networks_use_their_own_switch_and_have_no_bridge_mapping():
    from segcheck.agent.core.model import Network
    from segcheck.agent.core.northbound import NbSnapshot, OvsSnapshot
    from segcheck.agent.core.programmed import ProgrammedPlane

    layer2 = Network(Ref("default", "green"), "green", "layer2", subnets=("10.10.0.0/24",))
    plane = ProgrammedPlane(NbSnapshot(), layer2)
    assert plane.switch_name == "green_ovn_layer2_switch"
    assert "(layer2)" in plane.findings[0].message
    from segcheck.agent.runtime.checker import Checker
    from tests.builders import inventory, nad

    inv = inventory(nad("green", subnets="10.10.0.0/24", topology="layer2"))
    assert Checker(inv, Ref("default", "green"), ovs=OvsSnapshot()).mapping() is None
