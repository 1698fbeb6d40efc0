#!/usr/bin/env python3
"""The agent's re-plan after one declared change: incremental (the default) vs a full re-plan, in one run.

A world of N pods on one localnet with IPAM (apps of 10 pods: `app = app{i // 10}`), a default deny, an
allow-to-DB egress policy, and one ingress policy for each of the first 20 apps (from the next app, on a port of
its own) with the matching egress policy of the next app; `--local` pods are claimed on this node; a simulated prober that answers at once and a fake clock, so only
the agent's own work is timed. The declared state lives in memory (an in-memory DeclaredSource: parsing manifests
is the source's cost, not the re-plan's). Each change is timed as the `Agent.step()` that sees it (re-plan, schedule,
probe the cells whose planes changed, publish), then undone by another step (not timed), `--repeats` times:

- policy port: one app's ingress policy moves from its port to another;
- add policy: a new ingress policy for one app (from an ipBlock, on a new port);
- label flip: one (non-local) pod moves to another app.

Baseline in the same run: the same steps with the planner's incremental path off (a full re-plan carrying
observations, what the agent did before). Targets from issue 14 (reported, never asserted): 1,000 attachments /
30 local <= 100 ms and >= 30x faster than the full re-plan; 10,000 / 30 <= 1 s.

Run: python3 benchmarks/bench_replan.py [--sizes 1000,10000 --local 30 --repeats 5 --full-repeats 2 --full-max 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agent_tick import Clock, db_only  # noqa: E402
from bench_series import FirstNLocator  # noqa: E402

from segcheck.agent.adapters.manifest_files import parse_yaml  # noqa: E402
from segcheck.agent.adapters.probers.simulated import SimulatedProber  # noqa: E402
from segcheck.agent.core.inventory import Inventory  # noqa: E402
from segcheck.agent.core.manifests import RawObject, build_inventory  # noqa: E402
from segcheck.agent.runtime.agent import Agent  # noqa: E402
from tests.memory_declared import StaticDeclared  # noqa: E402

APP_SIZE = 10
POLICED_APPS = 20
NET = "tenantblue"


def _nad() -> dict[str, Any]:
    config = {"cniVersion": "0.3.1", "name": NET, "type": "ovn-k8s-cni-overlay", "topology": "localnet",
              "netAttachDefName": f"default/{NET}", "subnets": "10.100.0.0/16"}
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": NET, "namespace": "default"}, "spec": {"config": json.dumps(config)}}


def _pod(i: int, app: str) -> dict[str, Any]:
    ip = f"10.100.{(10 + i) // 256}.{(10 + i) % 256}"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"w{i}", "namespace": "default", "labels": {"app": app},
                         "annotations": {"k8s.v1.cni.cncf.io/networks": json.dumps([{"name": NET, "ips": [f"{ip}/16"]}])}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"k8s.v1.cni.cncf.io/policy-for": f"default/{NET}"}}, "spec": spec}


def _app_in(k: int, port: int) -> dict[str, Any]:
    return _policy(f"app{k}-in", {"podSelector": {"matchLabels": {"app": f"app{k}"}}, "policyTypes": ["Ingress"],
                                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": f"app{k + 1}"}}}],
                                               "ports": [{"protocol": "TCP", "port": port}]}]})


def _app_out(k: int, port: int) -> dict[str, Any]:
    return _policy(f"app{k + 1}-out", {"podSelector": {"matchLabels": {"app": f"app{k + 1}"}}, "policyTypes": ["Egress"],
                                       "egress": [{"to": [{"podSelector": {"matchLabels": {"app": f"app{k}"}}}],
                                                   "ports": [{"protocol": "TCP", "port": port}]}]})


def world(attachments: int, change: str | None = None) -> Inventory:
    """The base world, or it with one change (`port`, `add`, `label`)."""
    flipped = attachments - 5  # a pod of the last app, not local
    pods = [_pod(i, "app3" if change == "label" and i == flipped else f"app{i // APP_SIZE}") for i in range(attachments)]
    policies = [
        _policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy("allow-db-egress", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": "10.99.0.5/32"}}], "ports": [{"protocol": "TCP", "port": 5432}]}]}),
    ]
    policies += [_app_in(k, 9001 if change == "port" and k == 1 else 8000 + k) for k in range(POLICED_APPS)]
    policies += [_app_out(k, 8000 + k) for k in range(POLICED_APPS)]
    if change == "add":
        policies.append(_policy("app7-extra", {"podSelector": {"matchLabels": {"app": "app7"}}, "policyTypes": ["Ingress"],
                                               "ingress": [{"from": [{"ipBlock": {"cidr": "10.100.0.0/24"}}],
                                                            "ports": [{"protocol": "TCP", "port": 7000}]}]}))
    ext = {"apiVersion": "segcheck.io/v1alpha1", "kind": "ExternalEndpoints", "metadata": {"name": "physical"},
           "spec": {"endpoints": [{"name": "db", "network": f"default/{NET}", "ips": ["10.99.0.5"],
                                   "ports": [{"port": 5432, "protocol": "TCP"}]}]}}
    inv, errors = build_inventory([RawObject("bench", o) for o in [_nad(), *pods, *policies, ext]], parse_yaml)
    assert not errors, [str(e) for e in errors]
    return inv


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


def run_size(attachments: int, local: int, repeats: int, full_repeats: int) -> dict[str, Any]:
    base = world(attachments)
    changed = {name: world(attachments, name) for name in ("port", "add", "label")}
    source = StaticDeclared(base)
    clock = Clock()
    agent = Agent(source, None, None, SimulatedProber(db_only), FirstNLocator(local), "bench-node", interval=30.0,
                  jitter=0.1, max_probes=10_000_000, clock=clock, sentinel_interval=1.0)
    t0 = time.perf_counter()
    state = agent.step()
    first = time.perf_counter() - t0
    cells = sum(len(n.cells) for n in state.networks)
    out: dict[str, Any] = {"attachments": attachments, "local": local, "cells": cells, "first_s": first, "changes": {}}
    for name, inv in changed.items():
        row: dict[str, Any] = {}
        for mode, count in (("incremental", repeats), ("full", full_repeats)):
            agent.planner.incremental = mode == "incremental"
            times, cpu, built = [], [], []
            for _ in range(count):
                source.set(inv)
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                agent.step()
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert agent.plan is not None
                built.append(agent.plan.built)
                source.set(base)
                agent.step()  # undo (not timed)
            row[mode] = (times, built, cpu)
        agent.planner.incremental = True
        out["changes"][name] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--local", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5, help="incremental re-plans timed per change")
    ap.add_argument("--full-repeats", type=int, default=2, help="full re-plans timed per change (baseline)")
    ap.add_argument("--full-max", type=int, default=1000, help="largest world the full baseline runs at")
    args = ap.parse_args(argv)
    targets = {1000: 0.100, 10000: 1.0}
    print("segcheck agent re-plan after one change: Agent.step() (re-plan, schedule, probe what changed, publish); "
          "simulated prober, fake clock, in-memory declared state")
    for size in (int(s) for s in args.sizes.split(",")):
        full = args.full_repeats if size <= args.full_max else 0
        r = run_size(size, args.local, args.repeats, full)
        print(f"\n{size:,} attachments, {args.local} local: {r['cells']:,} cells; first step (plan + probe all) "
              f"{r['first_s']:.1f} s")
        for name, row in r["changes"].items():
            inc_t, inc_b, inc_c = row["incremental"]
            line = f"  {name:<6} incremental median {median_ms(inc_t):7.1f} ms wall, {median_ms(inc_c):7.1f} ms CPU " \
                   f"(wall min {1000 * min(inc_t):.1f}, max {1000 * max(inc_t):.1f}), " \
                   f"{statistics.median(inc_b):,.0f} cells rebuilt"
            full_t, full_b, full_c = row["full"]
            ratio = None
            if full_t:
                ratio = statistics.median(full_c) / statistics.median(inc_c)
                line += f"\n         full median {median_ms(full_t):8.1f} ms wall, {median_ms(full_c):8.1f} ms CPU " \
                        f"({statistics.median(full_b):,.0f} cells); full / incremental (CPU) {ratio:.0f}x, " \
                        f"(wall) {statistics.median(full_t) / statistics.median(inc_t):.0f}x"
            print(line)
            target = targets.get(size)
            if target is not None:
                want_ratio = size == 1000 and ratio is not None
                for label, value in (("wall", statistics.median(inc_t)), ("CPU", statistics.median(inc_c))):
                    met = value <= target and (not want_ratio or (ratio or 0) >= 30)
                    print(f"         target <= {1000 * target:g} ms{' and >= 30x the full re-plan' if want_ratio else ''}"
                          f" ({label}): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
