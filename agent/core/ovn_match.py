"""The subset of OVN's logical-flow match language that ACLs use, parsed and evaluated against one packet.

Evaluation is three-valued: a field segcheck does not model (`reg0[7]`, `ct.est`, ...) yields `None`, so an
ACL that depends on it is reported as undecidable rather than guessed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Union

from .model import IPAddress

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!(){},])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<ref>[@$][A-Za-z0-9_.\-:]+)
  | (?P<word>[A-Za-z0-9_.:/\[\]\-]+)
""", re.VERBOSE)

# Boolean "predicate" fields and what they require of a packet.
PREDICATES = {"ip", "ip4", "ip6", "tcp", "udp", "sctp", "icmp", "icmp4", "icmp6", "arp", "nd", "eth", "1", "0"}
FIELDS = {"inport", "outport", "ip4.src", "ip4.dst", "ip6.src", "ip6.dst", "tcp.src", "tcp.dst", "udp.src",
          "udp.dst", "sctp.src", "sctp.dst", "ip.proto", "nw_proto"}


class MatchSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Const:
    """A literal: an integer, an IP network (a host is a /32 or /128), a quoted string, or a reference."""

    value: Union[int, str, ipaddress.IPv4Network, ipaddress.IPv6Network]
    kind: str  # "int", "net", "str", "portgroup", "addrset", "word"


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    values: tuple[Const, ...]


@dataclass(frozen=True)
class Predicate:
    name: str


@dataclass(frozen=True)
class Not:
    inner: "Expr"


@dataclass(frozen=True)
class And:
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["Expr", ...]


Expr = Union[Compare, Predicate, Not, And, Or]

_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise MatchSyntaxError(f"unexpected {text[pos:pos + 10]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append((kind, m.group()))
    return out


def _const(kind: str, text: str) -> Const:
    if kind == "string":
        return Const(text[1:-1], "str")
    if kind == "ref":
        return Const(text[1:], "portgroup" if text[0] == "@" else "addrset")
    try:
        return Const(int(text, 0), "int")
    except ValueError:
        pass
    try:
        return Const(ipaddress.ip_network(text, strict=False), "net")
    except ValueError:
        return Const(text, "word")


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise MatchSyntaxError(f"expected {value or 'a token'}, got {tok[1] if tok else 'end'}")
        self.i += 1
        return tok

    def parse(self) -> Expr:
        expr = self.expression()
        if self.peek() is not None:
            raise MatchSyntaxError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return expr

    def expression(self) -> Expr:
        """Operands joined by one kind of operator: OVN refuses && and || together without parentheses."""
        items = [self.unary()]
        joiner = self.peek()
        if joiner not in (("op", "&&"), ("op", "||")):
            return items[0]
        while self.peek() == joiner:
            self.take()
            items.append(self.unary())
        if self.peek() in (("op", "&&"), ("op", "||")):
            raise MatchSyntaxError("&& and || must be parenthesized when used together")
        return And(tuple(items)) if joiner == ("op", "&&") else Or(tuple(items))

    def unary(self) -> Expr:
        if self.peek() != ("op", "!"):
            return self.primary()
        self.take()
        if self.peek() in (("op", "("), ("op", "!")):
            return Not(self.unary())
        inner = self.primary()
        if isinstance(inner, Compare) or isinstance(inner, And):
            raise MatchSyntaxError("missing parentheses around operand of !")
        return Not(inner)

    def values(self) -> tuple[Const, ...]:
        if self.peek() == ("op", "{"):
            self.take()
            vals = []
            while self.peek() != ("op", "}"):
                kind, text = self.take()
                if kind == "op":
                    raise MatchSyntaxError(f"unexpected {text!r} in a set")
                vals.append(_const(kind, text))
                if self.peek() == ("op", ","):
                    self.take()
            self.take("}")
            return tuple(vals)
        kind, text = self.take()
        if kind == "op":
            raise MatchSyntaxError(f"expected a value, got {text!r}")
        return (_const(kind, text),)

    def _comparison_next(self, offset: int = 1) -> bool:
        nxt = self.toks[self.i + offset] if self.i + offset < len(self.toks) else None
        return nxt is not None and nxt[0] == "op" and nxt[1] in _FLIP

    def primary(self) -> Expr:
        tok = self.peek()
        if tok is None:
            raise MatchSyntaxError("unexpected end")
        if tok == ("op", "("):
            self.take()
            inner = self.expression()
            self.take(")")
            return inner
        kind, text = tok
        if kind == "op" and text != "{":
            raise MatchSyntaxError(f"unexpected {text!r}")
        constant = text == "{" or kind in ("string", "ref") or _const(kind, text).kind in ("int", "net")
        if not constant:
            self.take()
            if self._comparison_next(0):
                return Compare(text, self.take()[1], self.values())
            return Predicate(text)
        if text in ("0", "1") and not self._comparison_next():
            self.take()
            return Predicate(text)
        # A constant first: `5432 == tcp.dst`, or a range `8000 <= tcp.dst <= 8100` / `8100 >= tcp.dst >= 8000`.
        lo = self.values()
        op1 = self.take()[1]
        if op1 not in _FLIP:
            raise MatchSyntaxError(f"expected a comparison after a constant, got {op1!r}")
        kind, field = self.take()
        if kind != "word" or _const(kind, field).kind in ("int", "net"):
            raise MatchSyntaxError(f"expected a field after {op1!r}, got {field!r}")
        first = Compare(field, _FLIP[op1], lo)
        nxt = self.peek()
        if nxt is None or nxt[0] != "op" or nxt[1] not in _FLIP:
            return first
        op2 = self.take()[1]
        ascending, descending = ("<", "<="), (">", ">=")
        if not ((op1 in ascending and op2 in ascending) or (op1 in descending and op2 in descending)):
            raise MatchSyntaxError(f"range comparisons must point the same way: {op1} ... {op2}")
        return And((first, Compare(field, op2, self.values())))


def parse_match(text: str) -> Expr:
    return _Parser(text).parse()


# --- evaluation ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Packet:
    """One new connection's first packet as the logical switch sees it."""

    inport: str | None
    outport: str | None
    src: IPAddress
    dst: IPAddress
    protocol: str  # "tcp", "udp", "sctp", "icmp"
    dst_port: int | None
    src_port: int = 40000


Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
# OVN derives an address set per port group and family: `$<pg>_ip4` / `$<pg>_ip6` hold its ports' addresses.
_DERIVED_SET_FAMILY = {"_ip4": 4, "_ip6": 6}


@dataclass(frozen=True)
class Resolver:
    port_groups: Mapping[str, frozenset[str]]
    address_sets: Mapping[str, tuple[str, ...]]
    port_ips: Mapping[str, tuple[IPAddress, ...]]  # LSP name -> its addresses (for $pg_ip4 sets)

    def address_set(self, name: str) -> list[Network] | None:
        """What `$name` holds: an NB address set's parseable entries, or a port group's derived set (None:
        no such set)."""
        if name in self.address_sets:
            out = []
            for text in self.address_sets[name]:
                try:
                    out.append(ipaddress.ip_network(text, strict=False))
                except ValueError:
                    continue  # northd ignores what it cannot parse
            return out
        pg, suffix = name[:-4], name[-4:]
        version = _DERIVED_SET_FAMILY.get(suffix)
        if version is None or pg not in self.port_groups:
            return None
        return [ipaddress.ip_network(ip) for port in sorted(self.port_groups[pg])
                for ip in self.port_ips.get(port, ()) if ip.version == version]


def _field_value(field: str, pkt: Packet) -> object | None:
    v4 = pkt.src.version == 4
    if field == "inport":
        return pkt.inport
    if field == "outport":
        return pkt.outport
    if field in ("ip4.src", "ip6.src"):
        return pkt.src if (field == "ip4.src") == v4 else _ABSENT
    if field in ("ip4.dst", "ip6.dst"):
        return pkt.dst if (field == "ip4.dst") == v4 else _ABSENT
    proto, _, which = field.partition(".")
    if proto in ("tcp", "udp", "sctp") and which in ("src", "dst"):
        if pkt.protocol != proto:
            return _ABSENT
        return pkt.dst_port if which == "dst" else pkt.src_port
    if field in ("ip.proto", "nw_proto"):
        return {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}.get(pkt.protocol)
    return None


_ABSENT = object()  # the field does not exist in this packet: every comparison with it is false


def _predicate(name: str, pkt: Packet) -> bool | None:
    v4 = pkt.src.version == 4
    table = {
        "1": True, "0": False, "eth": True, "ip": True, "ip4": v4, "ip6": not v4, "arp": False, "nd": False,
        "tcp": pkt.protocol == "tcp", "udp": pkt.protocol == "udp", "sctp": pkt.protocol == "sctp",
        "icmp": pkt.protocol == "icmp", "icmp4": pkt.protocol == "icmp" and v4, "icmp6": pkt.protocol == "icmp" and not v4,
    }
    return table.get(name)


def _expand(values: tuple[Const, ...], res: Resolver) -> list[Const] | None:
    out: list[Const] = []
    for c in values:
        if c.kind == "portgroup":
            if c.value not in res.port_groups:
                return None
            out.extend(Const(p, "str") for p in sorted(res.port_groups[str(c.value)]))
        elif c.kind == "addrset":
            members = res.address_set(str(c.value))
            if members is None:
                return None
            out.extend(Const(net, "net") for net in members)
        else:
            out.append(c)
    return out


def _equals(actual: object, const: Const) -> bool | None:
    if const.kind == "net":
        if not isinstance(actual, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return None
        net = const.value
        assert isinstance(net, (ipaddress.IPv4Network, ipaddress.IPv6Network))
        return actual.version == net.version and actual in net
    if const.kind == "int":
        return actual == const.value if isinstance(actual, int) else None
    return actual == const.value if isinstance(actual, str) else None


def _compare(node: Compare, pkt: Packet, res: Resolver) -> bool | None:
    actual = _field_value(node.field, pkt)
    if actual is _ABSENT:
        return False
    if actual is None:
        return None
    values = _expand(node.values, res)
    if values is None:
        return None
    if node.op in ("==", "!="):
        hits = [_equals(actual, v) for v in values]
        if any(h is None for h in hits):
            return None
        found = any(hits)
        return found if node.op == "==" else not found
    if not isinstance(actual, int) or len(values) != 1 or values[0].kind != "int":
        return None
    bound = values[0].value
    assert isinstance(bound, int)
    ops: dict[str, Callable[[int, int], bool]] = {
        "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    return ops[node.op](actual, bound)


def evaluate(expr: Expr, pkt: Packet, res: Resolver) -> bool | None:
    if isinstance(expr, Compare):
        return _compare(expr, pkt, res)
    if isinstance(expr, Predicate):
        return _predicate(expr.name, pkt)
    if isinstance(expr, Not):
        inner = evaluate(expr.inner, pkt, res)
        return None if inner is None else not inner
    if isinstance(expr, And):
        unknown = False
        for item in expr.items:
            v = evaluate(item, pkt, res)
            if v is False:
                return False
            unknown = unknown or v is None
        return None if unknown else True
    unknown = False
    for item in expr.items:
        v = evaluate(item, pkt, res)
        if v is True:
            return True
        unknown = unknown or v is None
    return None if unknown else False


def port_constants(expr: Expr) -> dict[str, set[int]]:
    """Per L4 protocol, the port numbers where an ACL's verdict may change (boundaries for port atoms)."""
    out: dict[str, set[int]] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, Compare):
            proto, _, which = e.field.partition(".")
            if proto in ("tcp", "udp", "sctp") and which == "dst":
                for c in e.values:
                    if c.kind == "int" and isinstance(c.value, int):
                        v = c.value
                        out.setdefault(proto, set()).update(
                            {"==": (v, v + 1), "!=": (v, v + 1), "<": (v,), ">=": (v,), "<=": (v + 1,), ">": (v + 1,)}[e.op])
        elif isinstance(e, Not):
            walk(e.inner)
        elif isinstance(e, (And, Or)):
            for item in e.items:
                walk(item)

    walk(expr)
    return out
