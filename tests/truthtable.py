"""Truth tables in the style of the Kubernetes netpol e2e suite: a default verdict plus exceptions, checked
against both the fast evaluator and the naive oracle, printed as side-by-side grids on failure."""

from __future__ import annotations

from dataclasses import dataclass, field

from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Attachment, Endpoint, Protocol, Ref, Verdict
from segcheck.agent.core.reachability import NetworkReachability
from tests.oracle import naive_verdict

A, D = Verdict.ALLOWED, Verdict.DENIED


@dataclass
class TruthTable:
    default: Verdict
    exceptions: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    def expected(self, keys: list[str]) -> dict[tuple[str, str], Verdict]:
        pairs = {(s, d) for s in keys for d in keys if s != d}
        unknown = set(self.exceptions) - pairs
        if unknown:
            raise KeyError(f"truth table names unknown pairs {sorted(unknown)}; endpoints are {keys}")
        return {p: self.exceptions.get(p, self.default) for p in pairs}


def _grid(keys: list[str], table: dict[tuple[str, str], Verdict]) -> list[str]:
    short = [k.split("/")[-1][:10] for k in keys]
    lines = ["".ljust(11) + " ".join(s[:3].ljust(3) for s in short)]
    for s, name in zip(keys, short):
        lines.append(name.ljust(11) + " ".join((table[(s, d)].glyph if (s, d) in table else "-").ljust(3) for d in keys))
    return lines


def check(inv: Inventory, table: TruthTable, port: int, protocol: Protocol = Protocol.TCP,
          network: str = "default/tenantblue", profile: str = "4.14") -> NetworkReachability:
    named = Ref.parse(network, "default")
    net = inv.network_of(named) or named  # any NAD of a network names it (as --network does)
    prof = PROFILES[profile]
    m = NetworkReachability(inv, net, profile=prof)
    eps: dict[str, Endpoint] = {e.key: e for e in m.endpoints}
    keys = [k for k in eps if isinstance(eps[k], Attachment) or True]
    want = table.expected(keys)
    want = {p: v for p, v in want.items() if isinstance(eps[p[0]], Attachment) or isinstance(eps[p[1]], Attachment)}
    fast = {p: m.judge(eps[p[0]], eps[p[1]], port, protocol).verdict for p in want}
    naive = {p: naive_verdict(inv, net, eps[p[0]], eps[p[1]], port, protocol,
                              end_port=prof.end_port_supported, named_widen=prof.named_ports_widen,
                              api_versions=prof.served_api_versions) for p in want}
    if fast != want or naive != want:
        rows = zip(_grid(keys, want), _grid(keys, fast), _grid(keys, naive))
        text = "\n".join(f"{a:<40}{b:<40}{c}" for a, b, c in rows)
        raise AssertionError(f"port {port}/{protocol.value}: expected | fast | naive\n{text}")
    return m
