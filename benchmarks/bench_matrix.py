"""Expected matrix for 5,000 attachments and 500 policies: class-based evaluator vs the naive oracle.

The naive oracle cannot do 25 million pairs in reasonable time, so it runs on a random sample of pairs (for
one port each) and its per-cell cost is extrapolated to the full matrix *for a single port*; the fast path
computes every pair for every port atom. The ratio is therefore a lower bound. Verdicts on the sample must
agree. Run: python3 benchmarks/bench_matrix.py [--attachments N] [--policies N] [--sample N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segcheck.agent.core.model import Protocol, Ref  # noqa: E402
from segcheck.agent.core.reachability import NetworkReachability  # noqa: E402
from tests.builders import inventory, mnp, nad, namespace, pod  # noqa: E402
from tests.oracle import naive_verdict  # noqa: E402

APPS = [f"app{i}" for i in range(10)]
TIERS = ["web", "api", "db"]
PORTS = [80, 443, 5432, 8080, 9090]


def world(attachments: int, policies: int, rng: random.Random):
    namespaces = max(1, attachments // 100)
    objs = [nad(subnets="10.128.0.0/14")]
    objs += [namespace(f"ns{i}", {"team": f"t{i % 5}"}) for i in range(namespaces)]
    for i in range(attachments):
        ip = f"10.{128 + i // 65536}.{(i // 256) % 256}.{i % 256}"
        objs.append(pod(f"w{i}", f"{ip}/14", namespace=f"ns{i % namespaces}",
                        labels={"app": rng.choice(APPS), "tier": rng.choice(TIERS)}, network="default/tenantblue"))
    for i in range(policies):
        ns = f"ns{i % namespaces}"
        kind = i % 4
        if kind == 0:
            spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        elif kind == 1:
            spec = {"podSelector": {"matchLabels": {"tier": rng.choice(TIERS)}}, "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": rng.choice(APPS)}}},
                                          {"namespaceSelector": {"matchLabels": {"team": f"t{rng.randrange(5)}"}}}],
                                 "ports": [{"protocol": "TCP", "port": rng.choice(PORTS)}]}]}
        elif kind == 2:
            spec = {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": rng.sample(APPS, 3)}]},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": f"10.128.{(b := rng.randrange(20))}.0/24",
                                                    "except": [f"10.128.{b}.{16 * rng.randrange(16)}/28"]}}],
                                "ports": [{"protocol": "TCP", "port": rng.choice(PORTS), "endPort": 9100}]}]}
        else:
            spec = {"podSelector": {"matchLabels": {"app": rng.choice(APPS)}}, "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"tier": "web"}}}]}],
                    "egress": [{"to": [{"podSelector": {}}], "ports": [{"protocol": "UDP", "port": 53}]}]}
        objs.append(mnp(f"p{i}", spec, namespace=ns, policy_for="default/tenantblue"))
    return inventory(*objs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attachments", type=int, default=5000)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--sample", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    inv = world(args.attachments, args.policies, rng)
    t_build = time.perf_counter() - t0
    net = Ref("default", "tenantblue")

    t0 = time.perf_counter()
    m = NetworkReachability(inv, net)
    matrix = m.compute_all()
    t_fast = time.perf_counter() - t0

    pairs = [(rng.choice(m.endpoints), rng.choice(m.endpoints), rng.choice(PORTS + [53, 22])) for _ in range(args.sample)]
    pairs = [(s, d, p) for s, d, p in pairs if s.key != d.key]
    t0 = time.perf_counter()
    naive = [naive_verdict(inv, net, s, d, p, Protocol.TCP) for s, d, p in pairs]
    t_naive_sample = time.perf_counter() - t0
    mismatches = sum(
        matrix.allows(m.class_index[s.key], m.class_index[d.key], m.atoms.index(p, Protocol.TCP)) != (v.value == "allowed")
        for (s, d, p), v in zip(pairs, naive))
    n = len(m.endpoints)
    full_cells = n * (n - 1)
    t_naive_full = t_naive_sample / len(pairs) * full_cells
    print(f"world: {args.attachments} attachments, {args.policies} policies (generated in {t_build:.2f} s)")
    print(f"fast:  {t_fast:.3f} s for all {full_cells:,} pairs x {len(m.atoms.atoms)} port atoms "
          f"({len(m.sides)} classes, {len(m.rules)} rules)")
    print(f"naive: {t_naive_sample / len(pairs) * 1e6:.1f} us per cell on {len(pairs)} sampled cells; "
          f"extrapolated {t_naive_full:,.0f} s for the same pairs at ONE port")
    print(f"ratio: naive/fast >= {t_naive_full / t_fast:,.0f}x   (target >= 100x, fast <= 2 s)")
    print(f"agreement on the sample: {len(pairs) - mismatches}/{len(pairs)}")
    if mismatches:
        raise SystemExit("fast and naive disagree")


if __name__ == "__main__":
    main()
