"""The OVN match language subset ACLs use: what parses, what a packet makes true, false or undecidable.

Every evaluation table is written against one default packet (a new TCP connection from the pod to the DB at
5432) and names the packet fields it changes. OVN's own grammar (ovn/lib/expr.c) is the reference.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from segcheck.agent.core.ovn_match import (
    And,
    Compare,
    Const,
    MatchSyntaxError,
    Not,
    Or,
    Packet,
    Predicate,
    Resolver,
    evaluate,
    parse_match,
    port_constants,
)

T, F, U = True, False, None
ip = ipaddress.ip_address

POD = Packet(inport="lsp-pod", outport="lsp-vm", src=ip("192.168.200.10"), dst=ip("192.168.200.5"), protocol="tcp",
             dst_port=5432)
RES = Resolver(
    port_groups={"pg_a": frozenset({"lsp-pod", "lsp-vm"}), "pg_vm": frozenset({"lsp-vm"}), "empty": frozenset()},
    address_sets={"as_db": ("192.168.200.5", "192.168.201.0/24"), "as_v6": ("fd00::5",), "as_empty": ()},
    port_ips={"lsp-pod": (ip("192.168.200.10"), ip("fd00::10")), "lsp-vm": (ip("192.168.200.20"),)},
)


def ev(match: str, **changes: object) -> bool | None:
    return evaluate(parse_match(match), replace(POD, **changes), RES)  # type: ignore[arg-type]


def v6(**changes: object) -> dict[str, object]:
    return {"src": ip("fd00::10"), "dst": ip("fd00::5"), **changes}


# ----------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text,tree", [
    ("tcp.dst == 5432", Compare("tcp.dst", "==", (Const(5432, "int"),))),
    ("tcp.dst==5432", Compare("tcp.dst", "==", (Const(5432, "int"),))),
    ("tcp.dst == 0x1538", Compare("tcp.dst", "==", (Const(5432, "int"),))),
    ("5432 == tcp.dst", Compare("tcp.dst", "==", (Const(5432, "int"),))),
    ("1024 > tcp.dst", Compare("tcp.dst", "<", (Const(1024, "int"),))),
    ("8000<=tcp.dst<=8100", And((Compare("tcp.dst", ">=", (Const(8000, "int"),)),
                                 Compare("tcp.dst", "<=", (Const(8100, "int"),))))),
    ("tcp.dst == {80, 443}", Compare("tcp.dst", "==", (Const(80, "int"), Const(443, "int")))),
    ("tcp.dst == {80 443}", Compare("tcp.dst", "==", (Const(80, "int"), Const(443, "int")))),
    ("ip4.dst == 192.168.200.5/32",
     Compare("ip4.dst", "==", (Const(ipaddress.ip_network("192.168.200.5/32"), "net"),))),
    ("ip4.dst == 192.168.200.5", Compare("ip4.dst", "==", (Const(ipaddress.ip_network("192.168.200.5/32"), "net"),))),
    ("ip6.src == fd00::/64", Compare("ip6.src", "==", (Const(ipaddress.ip_network("fd00::/64"), "net"),))),
    ("outport == @a123_ingressDefaultDeny", Compare("outport", "==", (Const("a123_ingressDefaultDeny", "portgroup"),))),
    ("ip4.src == {$a1, $a2}", Compare("ip4.src", "==", (Const("a1", "addrset"), Const("a2", "addrset")))),
    ('inport == "default.tenantblue_default_podclient"',
     Compare("inport", "==", (Const("default.tenantblue_default_podclient", "str"),))),
    ("tcp", Predicate("tcp")),
    ("ct.est", Predicate("ct.est")),
    ("!tcp", Not(Predicate("tcp"))),
    ("tcp && udp && sctp", And((Predicate("tcp"), Predicate("udp"), Predicate("sctp")))),
    ("tcp || udp", Or((Predicate("tcp"), Predicate("udp")))),
    ("(arp || nd)", Or((Predicate("arp"), Predicate("nd")))),
    ("!(tcp && udp)", Not(And((Predicate("tcp"), Predicate("udp"))))),
])
def test_parse_tree(text, tree):
    assert parse_match(text) == tree


@pytest.mark.parametrize("text", [
    "", "   ", "tcp.dst ==", "tcp.dst = 80", "(tcp", "tcp)", "tcp &&", "&& tcp", "tcp.dst == 80 80", "!",
    "ip4.src == {1.2.3.4", "tcp.dst == 80 #", "()",
])
def test_syntax_errors(text):
    with pytest.raises(MatchSyntaxError):
        parse_match(text)


@pytest.mark.parametrize("text", ['@pg inport == "x"', "{80} tcp.dst 1", '"p" q r'])
def test_garbage_after_a_constant_is_a_syntax_error(text):
    with pytest.raises(MatchSyntaxError):
        parse_match(text)


def test_descending_range_is_ovn_syntax():
    assert parse_match("8100 >= tcp.dst >= 8000") == And((Compare("tcp.dst", "<=", (Const(8100, "int"),)),
                                                          Compare("tcp.dst", ">=", (Const(8000, "int"),))))


@pytest.mark.parametrize("text", ["tcp || udp && sctp", "tcp && udp || sctp", "!tcp.dst == 80", "5 > tcp.dst < 3"])
def test_forms_ovn_refuses_are_syntax_errors(text):
    with pytest.raises(MatchSyntaxError):
        parse_match(text)


def test_ipv6_constant_first():
    assert ev("fd00::5 == ip6.dst", **v6()) is T


# ----------------------------------------------------------------------------- comparison operators

@pytest.mark.parametrize("match,want", [
    ("tcp.dst == 5432", T), ("tcp.dst == 5433", F),
    ("tcp.dst != 5432", F), ("tcp.dst != 80", T),
    ("tcp.dst < 5432", F), ("tcp.dst < 5433", T),
    ("tcp.dst <= 5431", F), ("tcp.dst <= 5432", T),
    ("tcp.dst > 5432", F), ("tcp.dst > 5431", T),
    ("tcp.dst >= 5433", F), ("tcp.dst >= 5432", T),
    ("5432 == tcp.dst", T), ("5433 == tcp.dst", F), ("5432 != tcp.dst", F),
    ("5431 < tcp.dst", T), ("5432 < tcp.dst", F), ("5432 <= tcp.dst", T),
    ("5433 > tcp.dst", T), ("5432 > tcp.dst", F), ("5432 >= tcp.dst", T),
    ("5432<=tcp.dst<=5432", T), ("5000<=tcp.dst<=6000", T), ("5433<=tcp.dst<=6000", F), ("5000<=tcp.dst<=5431", F),
    ("5431<tcp.dst<5433", T), ("5432<tcp.dst<6000", F), ("5000<tcp.dst<5432", F),
    ("tcp.dst == 0x1538", T),
    ("tcp.src == 40000", T), ("tcp.src == 5432", F),
    ("ip.proto == 6", T), ("ip.proto == 17", F), ("nw_proto == 6", T),
])
def test_operators(match, want):
    assert ev(match) is want


@pytest.mark.parametrize("match,want", [
    ("tcp.dst == {80, 443, 5432}", T), ("tcp.dst == {80, 443}", F),  # == : any member
    ("tcp.dst != {80, 443}", T), ("tcp.dst != {80, 5432}", F),  # != : no member
    ("{80, 5432} == tcp.dst", T),
    ("tcp.dst <= {80, 6000}", U),  # ordering against a set is not a comparison segcheck guesses at
])
def test_sets(match, want):
    assert ev(match) is want


@pytest.mark.parametrize("match,want", [
    ("ip4.dst == 192.168.200.0/24", T), ("ip4.dst == 192.168.201.0/24", F),
    ("ip4.dst == 192.168.200.5", T), ("ip4.dst == 192.168.200.5/32", T), ("ip4.dst == 192.168.200.4/32", F),
    ("ip4.dst == 192.168.200.4/31", T), ("ip4.dst == 192.168.200.6/31", F),
    ("ip4.dst == 192.168.200.0/255.255.255.0", T),
    ("ip4.src == 192.168.200.10", T), ("ip4.src == 192.168.200.5", F),
    ("ip4.dst != {192.168.200.16/28, 192.168.200.32/28}", T), ("ip4.dst != {192.168.200.0/28}", F),
    ("ip4.dst == 0.0.0.0/0", T),
    ("ip4.dst == fd00::5", F),  # an IPv6 constant never holds an IPv4 address
])
def test_ipv4_cidrs(match, want):
    assert ev(match) is want


@pytest.mark.parametrize("match,want", [
    ("ip6.dst == fd00::/64", T), ("ip6.dst == fd01::/64", F), ("ip6.dst == fd00::5", T), ("ip6.dst == fd00::5/128", T),
    ("ip6.src == fd00::10", T), ("ip6.src == ::/0", T), ("ip6.dst != {fd00::4/127}", F),
    ("ip6.dst == $as_v6", T), ("ip6.src == $pg_a_ip6", T), ("ip6.dst == $pg_a_ip6", F),
])
def test_ipv6_cidrs(match, want):
    assert ev(match, **v6()) is want


@pytest.mark.parametrize("match,want", [
    ("inport == @pg_a", T), ("outport == @pg_a", T), ("inport == @pg_vm", F), ("outport == @pg_vm", T),
    ("inport != @pg_vm", T), ("inport == @empty", F), ("inport != @empty", T),
    ("inport == {@pg_vm, @empty}", F), ("outport == {@pg_vm, @empty}", T),
    ("inport == @ghost", U),  # a port group that is not in NB: undecidable, not false
])
def test_port_groups(match, want):
    assert ev(match) is want


@pytest.mark.parametrize("match,want", [
    ("ip4.dst == $as_db", T), ("ip4.dst == {$as_db}", T), ("ip4.src == $as_db", F), ("ip4.dst != $as_db", F),
    ("ip4.dst == $as_empty", F), ("ip4.dst != $as_empty", T),
    ("ip4.dst == $ghost", U),
    # $<port group>_ip4 / _ip6: the addresses of the group's ports, derived by OVN itself.
    ("ip4.src == $pg_a_ip4", T), ("ip4.dst == $pg_a_ip4", F), ("ip4.src == $pg_vm_ip4", F),
    ("ip4.src == $pg_a_ip6", F), ("ip4.src == $empty_ip4", F), ("ip4.src == $ghost_ip4", U),
])
def test_address_sets(match, want):
    assert ev(match) is want


def test_address_set_entries_are_hosts_or_cidrs():
    assert ev("ip4.dst == $as_db") is T  # the host entry 192.168.200.5
    assert ev("ip4.dst == $as_db", dst=ip("192.168.201.7")) is T  # the CIDR entry
    assert ev("ip4.dst == $as_db", dst=ip("192.168.202.7")) is F


@pytest.mark.parametrize("match,want", [
    ('inport == "lsp-pod"', T), ('outport == "lsp-pod"', F), ('inport == {"lsp-x", "lsp-pod"}', T),
    ('inport != {"lsp-x", "lsp-y"}', T), ('"lsp-vm" == outport', T),
])
def test_quoted_port_names(match, want):
    assert ev(match) is want


# ----------------------------------------------------------------------------- predicates

PREDICATE_PACKETS = {
    "tcp4": {}, "udp4": {"protocol": "udp"}, "sctp4": {"protocol": "sctp"}, "icmp4": {"protocol": "icmp", "dst_port": None},
    "tcp6": v6(), "udp6": v6(protocol="udp"), "icmp6": v6(protocol="icmp", dst_port=None),
}
# Default: false. Exceptions: (predicate, packet) pairs that hold.
PREDICATES_TRUE = (
    {(p, pkt) for p in ("1", "eth", "ip") for pkt in PREDICATE_PACKETS}
    | {("ip4", pkt) for pkt in PREDICATE_PACKETS if pkt.endswith("4")}
    | {("ip6", pkt) for pkt in PREDICATE_PACKETS if pkt.endswith("6")}
    | {("tcp", "tcp4"), ("tcp", "tcp6"), ("udp", "udp4"), ("udp", "udp6"), ("sctp", "sctp4"),
       ("icmp", "icmp4"), ("icmp", "icmp6"), ("icmp4", "icmp4"), ("icmp6", "icmp6")}
)


@pytest.mark.parametrize("predicate", ["1", "0", "eth", "ip", "ip4", "ip6", "tcp", "udp", "sctp", "icmp", "icmp4",
                                       "icmp6", "arp", "nd"])
def test_predicates_truth_table(predicate):
    got = {pkt: ev(predicate, **changes) for pkt, changes in PREDICATE_PACKETS.items()}
    want = {pkt: (predicate, pkt) in PREDICATES_TRUE for pkt in PREDICATE_PACKETS}
    assert got == want


def test_arp_allow_of_default_deny_never_opens_ip_traffic():
    assert ev("outport == @pg_a && (arp || nd)") is F
    assert ev("outport == @pg_a && (arp || nd)", **v6()) is F


# ----------------------------------------------------------------------------- fields absent from the packet

@pytest.mark.parametrize("match,changes,want", [
    ("tcp.dst == 5432", {"protocol": "udp"}, F),
    ("tcp.dst != 5432", {"protocol": "udp"}, F),  # OVN adds the `tcp` prerequisite to the comparison itself
    ("tcp.dst < 65535", {"protocol": "udp"}, F),
    ("!(tcp.dst == 5432)", {"protocol": "udp"}, T),
    ("udp.dst == 5432", {"protocol": "udp"}, T),
    ("sctp.dst == 5432", {"protocol": "sctp"}, T),
    ("udp.dst == 5432", {}, F),
    ("tcp.dst == 5432", {"protocol": "icmp", "dst_port": None}, F),
    ("ip6.src == ::/0", {}, F),
    ("ip6.dst != fd00::5", {}, F),
    ("ip4.src == 0.0.0.0/0", v6(), F),
    ("ip4.dst == $as_db", v6(), F),
    ("ip4.dst == $ghost", v6(), F),  # absent beats unresolvable: no IPv4 header, no match
])
def test_fields_absent_from_the_packet_never_match(match, changes, want):
    assert ev(match, **changes) is want


# ----------------------------------------------------------------------------- unknown fields, three-valued logic

@pytest.mark.parametrize("match", ["reg0[7] == 1", "reg0[7]", "ct.est", "ct.new", "ct_label.blocked == 0",
                                   "eth.src == 0a:58:c0:a8:c8:0a", "tcp.flags == 2", "ip.ttl > 1", "frobnicate"])
def test_unknown_fields_are_undecidable(match):
    assert ev(match) is U


@pytest.mark.parametrize("match,want", [
    # && : false wins, then unknown.
    ("1 && 1", T), ("1 && 0", F), ("0 && ct.est", F), ("ct.est && 0", F), ("1 && ct.est", U), ("ct.est && ct.new", U),
    # || : true wins, then unknown.
    ("0 || 0", F), ("0 || 1", T), ("1 || ct.est", T), ("ct.est || 1", T), ("0 || ct.est", U), ("ct.est || ct.new", U),
    # ! : unknown stays unknown.
    ("!1", F), ("!0", T), ("!ct.est", U), ("!(ct.est && 0)", T), ("!(ct.est || 1)", F), ("!(ct.est || 0)", U),
    # An OVN-K rule ACL with a conntrack term it cannot decide: decided only where another term is false.
    ("ct.est && tcp && tcp.dst == 5432", U), ("ct.est && tcp && tcp.dst == 80", F),
])
def test_three_valued_logic(match, want):
    assert ev(match) is want


@pytest.mark.parametrize("match,want", [
    ("!1 && 0", F), ("!(1 && 0)", T),  # ! binds tighter than &&
    ("!0 || 1", T), ("!(0 || 1)", F),  # ... and than ||
    ("(1 || 0) && 0", F), ("1 || (0 && 0)", T),
    ("(0 && 1) || 1", T), ("0 && (1 || 1)", F),
    ("((tcp))", T), ("!(!(tcp))", T),
])
def test_precedence_and_parentheses(match, want):
    assert ev(match) is want


# ----------------------------------------------------------------------------- the ACLs OVN-K writes

PG = "a5682957034861081537"
DENY_PG = "a12774876968309337435_egressDefaultDeny"
OVNK_RES = Resolver({PG: frozenset({"lsp-pod"}), DENY_PG: frozenset({"lsp-pod"})}, {"a99": ("192.168.200.20",)},
                    {"lsp-pod": (ip("192.168.200.10"),)})


@pytest.mark.parametrize("match,port,protocol,want", [
    (f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{PG}", 5432, "tcp", T),
    (f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{PG}", 5433, "tcp", F),
    (f"ip4.dst == 192.168.200.5/32 && tcp && tcp.dst==5432 && inport == @{PG}", 5432, "udp", F),
    (f"ip4.dst == 192.168.200.0/24 && ip4.dst != {{192.168.200.4/30}} && tcp && tcp.dst==5432 && inport == @{PG}",
     5432, "tcp", F),
    (f"ip4.dst == 192.168.200.5/32 && tcp && (tcp.dst=={{80,5432}} || 8000<=tcp.dst<=8100) && inport == @{PG}",
     5432, "tcp", T),
    (f"ip4.dst == 192.168.200.5/32 && tcp && (tcp.dst=={{80,5432}} || 8000<=tcp.dst<=8100) && inport == @{PG}",
     8050, "tcp", T),
    (f"ip4.dst == 192.168.200.5/32 && tcp && (tcp.dst=={{80,5432}} || 8000<=tcp.dst<=8100) && inport == @{PG}",
     8101, "tcp", F),
    (f"ip4 && udp && inport == @{PG}", 53, "udp", T),
    (f"(ip4 || ip6) && inport == @{PG}", 1, "sctp", T),
    (f"ip4.dst == {{$a99}} && inport == @{PG}", 1, "tcp", F),
    (f"inport == @{DENY_PG}", 1, "tcp", T),
    (f"inport == @{DENY_PG} && (arp || nd)", 1, "tcp", F),
])
def test_ovnk_acl_matches(match, port, protocol, want):
    pkt = Packet("lsp-pod", None, ip("192.168.200.10"), ip("192.168.200.5"), protocol, port)
    assert evaluate(parse_match(match), pkt, OVNK_RES) is want


# ----------------------------------------------------------------------------- port constants

@pytest.mark.parametrize("match,cuts", [
    ("tcp.dst == 80", {"tcp": {80, 81}}),
    ("tcp.dst != 80", {"tcp": {80, 81}}),
    ("tcp.dst < 80", {"tcp": {80}}),
    ("tcp.dst <= 80", {"tcp": {81}}),
    ("tcp.dst > 80", {"tcp": {81}}),
    ("tcp.dst >= 80", {"tcp": {80}}),
    ("80 < tcp.dst", {"tcp": {81}}),
    ("80 >= tcp.dst", {"tcp": {81}}),
    ("8000<=tcp.dst<=8100", {"tcp": {8000, 8101}}),
    ("8000<tcp.dst<8100", {"tcp": {8001, 8100}}),
    ("tcp.dst == {80, 443}", {"tcp": {80, 81, 443, 444}}),
    ("tcp.dst != {80, 443}", {"tcp": {80, 81, 443, 444}}),
    ("tcp.dst == 65535", {"tcp": {65535, 65536}}),
    ("tcp.dst == 80 || udp.dst == 53 || sctp.dst >= 9", {"tcp": {80, 81}, "udp": {53, 54}, "sctp": {9}}),
    ("!(udp.dst == 53)", {"udp": {53, 54}}),
    ("ip4 && (tcp && (tcp.dst == 1 || !(tcp.dst > 2)))", {"tcp": {1, 2, 3}}),
    ("tcp.src == 80", {}),  # the source port is the prober's, not a dimension of the matrix
    ("tcp.dst == $ports", {}),
    ("ip4.dst == 10.0.0.0/8 && inport == @pg", {}),
    ("ct.est", {}),
])
def test_port_constants(match, cuts):
    assert port_constants(parse_match(match)) == cuts


@pytest.mark.parametrize("match", [
    "tcp.dst == 100", "tcp.dst != 100", "tcp.dst < 100", "tcp.dst <= 100", "tcp.dst > 100", "tcp.dst >= 100",
    "90 < tcp.dst <= 110", "tcp.dst == {95, 100, 105}", "!(tcp.dst >= 100) || tcp.dst == 120",
])
def test_port_constants_are_exactly_where_the_verdict_changes(match):
    expr = parse_match(match)
    cuts = port_constants(expr).get("tcp", set())
    verdicts = {p: evaluate(expr, replace(POD, dst_port=p), RES) for p in range(80, 130)}
    changes = {p for p in range(81, 130) if verdicts[p] != verdicts[p - 1]}
    assert changes == {c for c in cuts if 81 <= c < 130}
