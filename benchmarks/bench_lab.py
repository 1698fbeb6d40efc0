#!/usr/bin/env python3
"""Lab lifecycle: cold bring-up, warm (idempotent) `up`, seed policy apply, teardown, and RSS per daemon; for the
one-node lab and for the lab cluster (`--nodes`, one OVN zone per node plus the physical segment).

Each cycle builds a private lab (own state dir under /tmp with mode 755, unique `scb<hex>-` prefix), so it can
run beside other labs; every lab is torn down in `finally`, whatever happens. Per cycle:

  cold up    `Lab.up()` on nothing (namespaces, OVS, OVN, wiring, PostgreSQL initdb + start, ready checks)
  warm up    `Lab.up()` again on the healthy lab (the idempotent path: health check only)
  apply      `LabController.apply(seed inventory, default/tenantblue)` (OVN-K-style port groups and ACLs)
  re-apply   the same apply again (nothing changes)
  down       `Lab.down()` (stop by PID, delete namespaces and directories)

RSS is read from `/proc/PID/status` of each daemon after the apply (`Lab.measurements()`), PSS (with children)
beside it for the cluster. The baseline of the ratios is the warm `up` (the cost of merely asking a healthy lab),
and for the cluster the one-node lab's figures, all measured in the same run.

With `--layer2`, the cluster is also built from examples/seed-layer2 (a layer2 network across the nodes: remote
ports, interconnect tunnel keys, geneve), its figures against the localnet cluster's of the same run.

Run (root): python3 benchmarks/bench_lab.py [--cycles 3] [--nodes 2] [--layer2] [--max-seconds 150]
Prints numbers; it is not a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.core.model import Ref
from segcheck.agent.lab.cluster import LabCluster, declared_nodes, node_names, place
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.lab.topology import topology_from_inventory

NET = Ref("default", "tenantblue")
LAYER2_NET = Ref("default", "tenantgreen")
LAYER2_SEED = Path(__file__).resolve().parents[1] / "examples" / "seed-layer2"
MIB = 1024 * 1024


def new_lab() -> Lab:
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # PostgreSQL runs as user postgres
    return Lab(state_dir=state_dir, prefix=f"scb{secrets.token_hex(3)}-")


def new_cluster(inventory, nodes: int, net: Ref = NET) -> LabCluster:  # type: ignore[no-untyped-def]
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o755)
    topology = topology_from_inventory(inventory, net)
    return LabCluster(state_dir, f"scb{secrets.token_hex(2)}-", topology, nodes,
                      place(topology, node_names(nodes), declared_nodes(inventory, net)))


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def cycle(inventory) -> dict[str, object]:  # type: ignore[no-untyped-def]
    lab = new_lab()
    row: dict[str, object] = {"prefix": lab.prefix}
    down_done = False
    try:
        row["cold_up"], _ = timed(lab.up)
        row["phases_ms"] = (lab.measurements().get("bringup") or {}).get("phases_ms", {})
        row["warm_up"], _ = timed(lab.up)
        controller = LabController(lab)
        row["apply"], _ = timed(lambda: controller.apply(inventory, NET))
        row["reapply"], _ = timed(lambda: controller.apply(inventory, NET))
        m = lab.measurements()
        row["rss"] = dict(m["rss_bytes"])
        row["rss_total"] = m["rss_total_bytes"]
        row["down"], _ = timed(lab.down)
        down_done = True
    finally:
        if not down_done:
            lab.down()
        shutil.rmtree(lab.state_dir, ignore_errors=True)
    return row


def cluster_cycle(inventory, nodes: int, net: Ref = NET) -> dict[str, object]:  # type: ignore[no-untyped-def]
    cluster = new_cluster(inventory, nodes, net)
    row: dict[str, object] = {"prefix": cluster.prefix}
    down_done = False
    try:
        row["cold_up"], _ = timed(cluster.up)
        bringup = cluster.measurements().get("bringup") or {}
        row["phases_ms"] = bringup.get("phases_ms", {})
        row["node_up"] = bringup.get("node_seconds", {})
        row["warm_up"], _ = timed(cluster.up)
        row["apply"], _ = timed(lambda: cluster.apply(inventory, net))
        row["reapply"], _ = timed(lambda: cluster.apply(inventory, net))
        m = cluster.measurements()
        row["rss"] = {part: v["rss_total_bytes"] for part, v in m["per_node"].items()}
        row["pss"] = {part: v["pss_total_bytes"] for part, v in m["per_node"].items()}
        row["rss_total"], row["pss_total"] = m["rss_total_bytes"], m["pss_total_bytes"]
        row["down"], _ = timed(cluster.down)
        down_done = True
    finally:
        if not down_done:
            cluster.down()
        shutil.rmtree(cluster.state_dir, ignore_errors=True)
    return row


def report_cluster(rows: list[dict], single: list[dict], nodes: int, what: str = "cluster",  # type: ignore[type-arg]
                   baseline: str = "1-node", baseline_long: str = "the one-node lab's") -> None:
    print(f"\n{nodes}-node {what} ({len(rows)} cycles): {'step':<12}{'median s':>10}{'/ ' + baseline:>12}")
    for key, label in (("cold_up", "cold up"), ("warm_up", "warm up"), ("apply", "apply seed"),
                       ("reapply", "re-apply"), ("down", "down")):
        med = statistics.median([r[key] for r in rows])
        base = statistics.median([r[key] for r in single]) if single else float("nan")
        print(f"{'':<28}{label:<12}{med:>10.3f}{med / base:>11.1f}x")
    parts = sorted({p for r in rows for p in r["rss"]})
    print(f"\n{'part':<24}{'median RSS MiB':>16}{'median PSS MiB':>16}{'node up s':>11}")
    for part in parts:
        up = [r["node_up"].get(part) for r in rows if r["node_up"].get(part) is not None]
        print(f"{part:<24}{statistics.median([r['rss'][part] for r in rows]) / MIB:>16.1f}"
              f"{statistics.median([r['pss'][part] for r in rows]) / MIB:>16.1f}"
              f"{(f'{statistics.median(up):.2f}' if up else '-'):>11}")
    total = statistics.median([r["rss_total"] for r in rows]) / MIB
    base_total = statistics.median([r["rss_total"] for r in single]) / MIB if single else float("nan")
    print(f"{'total':<24}{total:>16.1f}{statistics.median([r['pss_total'] for r in rows]) / MIB:>16.1f}"
          f"   ({total / base_total:.2f}x {baseline_long} RSS)")


def stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=2, help="also measure a lab cluster of this many nodes (0: not)")
    ap.add_argument("--layer2", action="store_true", help="also build the cluster from examples/seed-layer2")
    ap.add_argument("--max-seconds", type=float, default=150.0, help="start no new cycle after this")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces, OVS)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` tears the lab down
    inventory, errors = load_inventory([packaged_seed()])
    if errors:
        print(f"seed manifests do not load: {errors}", file=sys.stderr)
        return 3
    load0 = os.getloadavg()
    print(f"segcheck lab lifecycle benchmark: {args.cycles} cycles; {os.cpu_count()} CPUs; "
          f"load average before {load0[0]:.2f}")
    rows = []
    started = time.monotonic()
    for i in range(max(0, args.cycles)):
        if time.monotonic() - started > args.max_seconds:
            print(f"  cycle {i + 1}: skipped (--max-seconds reached)")
            continue
        rows.append(cycle(inventory))
        r = rows[-1]
        print(f"  cycle {i + 1} ({r['prefix']}): cold up {r['cold_up']:.2f}s, warm up {r['warm_up']:.3f}s, "
              f"apply {r['apply']:.3f}s, re-apply {r['reapply']:.3f}s, down {r['down']:.2f}s", flush=True)
    if not rows:
        return 0

    print(f"\n{'step':<12}{'min s':>9}{'median s':>10}{'max s':>9}{'median / warm up':>18}")
    warm = statistics.median([r["warm_up"] for r in rows])
    for key, label in (("cold_up", "cold up"), ("warm_up", "warm up"), ("apply", "apply seed"),
                       ("reapply", "re-apply"), ("down", "down")):
        lo, med, hi = stats([r[key] for r in rows])
        print(f"{label:<12}{lo:>9.3f}{med:>10.3f}{hi:>9.3f}{med / warm:>17.1f}x")

    order = ["locate_ovs", "namespaces", "ovs", "ovn", "wiring", "services", "ready"]  # as Lab.up runs them
    phases = sorted({p for r in rows for p in r["phases_ms"]}, key=lambda p: order.index(p) if p in order else 99)
    if phases:
        print("\ncold up phases (median ms): " + ", ".join(
            f"{p} {statistics.median([r['phases_ms'].get(p, 0) for r in rows]):.0f}" for p in phases))

    names = sorted({n for r in rows for n in r["rss"]})
    print(f"\n{'process':<24}{'min MiB':>9}{'median MiB':>12}{'max MiB':>9}")
    for n in names:
        lo, med, hi = stats([r["rss"].get(n, 0) / MIB for r in rows])
        print(f"{n:<24}{lo:>9.1f}{med:>12.1f}{hi:>9.1f}")
    lo, med, hi = stats([r["rss_total"] / MIB for r in rows])
    print(f"{'total':<24}{lo:>9.1f}{med:>12.1f}{hi:>9.1f}")
    if args.nodes > 0:
        cluster_rows = []
        for i in range(max(0, args.cycles)):
            if time.monotonic() - started > args.max_seconds:
                print(f"  cluster cycle {i + 1}: skipped (--max-seconds reached)")
                continue
            cluster_rows.append(cluster_cycle(inventory, args.nodes))
            r = cluster_rows[-1]
            print(f"  cluster cycle {i + 1} ({r['prefix']}, {args.nodes} nodes): cold up {r['cold_up']:.2f}s, "
                  f"warm up {r['warm_up']:.3f}s, apply {r['apply']:.3f}s, down {r['down']:.2f}s", flush=True)
        if cluster_rows:
            report_cluster(cluster_rows, rows, args.nodes)
        if args.layer2 and cluster_rows:
            l2_inventory, errors = load_inventory([LAYER2_SEED])
            if errors:
                print(f"layer2 seed manifests do not load: {errors}", file=sys.stderr)
                return 3
            l2_rows = []
            for i in range(max(0, args.cycles)):
                if time.monotonic() - started > args.max_seconds:
                    print(f"  layer2 cluster cycle {i + 1}: skipped (--max-seconds reached)")
                    continue
                l2_rows.append(cluster_cycle(l2_inventory, args.nodes, LAYER2_NET))
                r = l2_rows[-1]
                print(f"  layer2 cluster cycle {i + 1} ({r['prefix']}, {args.nodes} nodes): cold up "
                      f"{r['cold_up']:.2f}s, warm up {r['warm_up']:.3f}s, apply {r['apply']:.3f}s, "
                      f"down {r['down']:.2f}s", flush=True)
            if l2_rows:
                report_cluster(l2_rows, cluster_rows, args.nodes, "layer2 cluster", "localnet",
                               "the localnet cluster's")
    load1 = os.getloadavg()
    print(f"\nload average after {load1[0]:.2f} (other work on this machine competes for the {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
