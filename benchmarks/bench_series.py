#!/usr/bin/env python3
"""Metric series exposed by the agent for synthetic worlds of 10, 100 and 1,000 attachments.

Pure (no lab, no root): writes manifests for N pods on one IPAM-less localnet network (a default-deny, an
allow-to-DB egress policy, and a few ipBlock policies), runs `Agent.step()` over them with a FilesSource — no
OVN NB, no OVS, no prober; a locator that claims every attachment is local so every pair is planned — and counts
the samples in the Prometheus exposition of the resulting state, then again with every cell drifting (the worst case
for the per-policy and worst-pair series: bounded by the policies and by the pair cap, `--drift-pairs`). Like an agent on one node, it plans only pairs
with a local side: at most `--local` attachments are claimed local (default 30: all of the 10-attachment world,
30 of the larger ones), since planning every pair of 1,000 attachments (~5 million cells) takes minutes. Per-pair detail lives at /v1/matrix, so the
series count must not grow with the number of pairs or cells; the table shows whether it does.

Run: python3 benchmarks/bench_series.py [--sizes 10,100,1000] [--max-seconds 150]
Prints numbers; it is not a pass/fail test.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcheck.agent.adapters.metrics import DEFAULT_MAX_DRIFT_PAIRS, exposition, registry_for
from segcheck.agent.core.drift import CheckedCell, DriftClass
from segcheck.agent.core.model import Endpoint, Verdict, parse_ip
from segcheck.agent.core.probe import SendPoint
from segcheck.agent.core.state import AgentState, NetworkState
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import FilesSource

NAD = """apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: tenantblue, namespace: default}
spec:
  config: '{"cniVersion": "0.3.1", "name": "tenantblue", "type": "ovn-k8s-cni-overlay", "topology": "localnet",
    "netAttachDefName": "default/tenantblue"}'
"""

ENDPOINTS = """apiVersion: segcheck.io/v1alpha1
kind: ExternalEndpoints
metadata: {name: physical}
spec:
  endpoints:
  - name: db
    network: default/tenantblue
    ips: [10.99.0.5]
    ports: [{port: 5432, protocol: TCP}]
"""


def _policy(name: str, spec: dict) -> str:
    doc = {"apiVersion": "k8s.cni.cncf.io/v1beta1", "kind": "MultiNetworkPolicy",
           "metadata": {"name": name, "namespace": "default",
                        "annotations": {"k8s.v1.cni.cncf.io/policy-for": "default/tenantblue"}},
           "spec": spec}
    return json.dumps(doc)  # JSON is YAML


def write_world(directory: Path, attachments: int) -> None:
    """N pods on 10.100.0.0/16 with three app labels, and policies whose cells vary by app and port."""
    (directory / "10-nad.yaml").write_text(NAD)
    (directory / "40-endpoints.yaml").write_text(ENDPOINTS)
    pods = []
    for i in range(attachments):
        ip = ipaddress.IPv4Address("10.100.0.10") + i
        pods.append(json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"w{i}", "namespace": "default", "labels": {"app": f"app{i % 3}"},
                         "annotations": {"k8s.v1.cni.cncf.io/networks":
                                         json.dumps([{"name": "tenantblue", "ips": [f"{ip}/16"]}])}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}))
    (directory / "20-pods.yaml").write_text("\n---\n".join(pods) + "\n")
    policies = [
        _policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy("allow-db-egress", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": "10.99.0.5/32"}}], "ports": [{"protocol": "TCP", "port": 5432}]}]}),
        _policy("app0-web-in", {"podSelector": {"matchLabels": {"app": "app0"}}, "policyTypes": ["Ingress"],
                                "ingress": [{"from": [{"ipBlock": {"cidr": "10.100.0.0/17"}}],
                                             "ports": [{"protocol": "TCP", "port": 8080}]}]}),
        _policy("app1-out", {"podSelector": {"matchLabels": {"app": "app1"}}, "policyTypes": ["Egress"],
                             "egress": [{"to": [{"ipBlock": {"cidr": "10.100.0.0/16"}}],
                                         "ports": [{"protocol": "TCP", "port": 8080},
                                                   {"protocol": "UDP", "port": 53}]}]}),
    ]
    (directory / "50-policies.yaml").write_text("\n---\n".join(policies) + "\n")


class FirstNLocator:
    """Claims pods w0..w{local-1} are on this node (their pairs are planned); nothing is probed (no prober)."""

    def __init__(self, local: int) -> None:
        self.local = local

    def send_point(self, endpoint: Endpoint) -> SendPoint | None:
        name = endpoint.key.rsplit("/", 1)[-1]
        if not (name.startswith("w") and name[1:].isdigit() and int(name[1:]) < self.local):
            return None
        ip = getattr(endpoint, "ip", None)
        return SendPoint("none", "none", ip if ip is not None else parse_ip("127.0.0.1"), None)


def all_drifting(state: AgentState) -> AgentState:
    """Every cell drifts: allowed ones are blackholes, denied ones leaks."""
    def drifted(cell: CheckedCell) -> CheckedCell:
        cls = DriftClass.BLACKHOLE if cell.expected.verdict is Verdict.ALLOWED else DriftClass.LEAK
        return replace(cell, drift=(cls, DriftClass.CONTROLLER))

    return replace(state, networks=tuple(NetworkState(n.network, tuple(drifted(c) for c in n.cells), n.findings, n.mapping)
                                         for n in state.networks))


def series(state: AgentState, drift_pairs: int) -> tuple[int, int, int]:
    """(families, samples, bytes) of the state's exposition."""
    text = exposition(registry_for(lambda: state, drift_pairs)).decode()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    return len(families), len(samples), len(text)


def measure(attachments: int, local: int, drift_pairs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="segcheck-series-") as tmp:
        write_world(Path(tmp), attachments)
        agent = Agent(FilesSource([tmp], poll_seconds=3600), None, None, None, FirstNLocator(local), "bench-node",
                      interval=3600, jitter=0.0)
        agent.declared.start(agent.poke)  # a generation, no loop thread: step() is called directly
        try:
            t0 = time.perf_counter()
            state = agent.step()
            step_s = time.perf_counter() - t0
        finally:
            agent.declared.stop()
    t0 = time.perf_counter()
    families, samples, size = series(state, drift_pairs)
    expo_s = time.perf_counter() - t0
    _, drifting, _ = series(all_drifting(state), drift_pairs)
    cells = sum(len(n.cells) for n in state.networks)
    pairs = len({(c.source, c.destination) for n in state.networks for c in n.cells})
    return {"attachments": attachments, "local": min(local, attachments), "pairs": pairs, "cells": cells, "families": families,
            "series": samples, "series_drift": drifting, "bytes": size, "step_s": step_s, "expo_s": expo_s,
            "errors": len(state.declared_errors)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000", help="attachment counts, comma-separated")
    ap.add_argument("--local", type=int, default=30, help="attachments claimed local (their pairs are planned)")
    ap.add_argument("--drift-pairs", type=int, default=DEFAULT_MAX_DRIFT_PAIRS, help="the agent's pair cap")
    ap.add_argument("--max-seconds", type=float, default=150.0, help="skip larger worlds after this")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print("segcheck metric series vs world size (Agent.step over generated manifests; no NB/OVS/prober)")
    rows = []
    started = time.monotonic()
    for n in sizes:
        if time.monotonic() - started > args.max_seconds:
            print(f"  {n} attachments: skipped (--max-seconds reached)")
            continue
        rows.append(measure(n, args.local, args.drift_pairs))
        print(f"  {n} attachments: step {rows[-1]['step_s']:.2f}s", flush=True)
    if not rows:
        return 0
    base = rows[0]
    print(f"\n{'attachments':>11}{'local':>7}{'pairs':>11}{'cells':>11}{'families':>10}{'series':>8}{'drifting':>10}{'bytes':>8}"
          f"{'series/base':>13}{'cells/base':>12}{'step s':>9}{'scrape ms':>11}{'errors':>8}")
    for r in rows:
        print(f"{r['attachments']:>11}{r['local']:>7}{r['pairs']:>11,}{r['cells']:>11,}{r['families']:>10}{r['series']:>8}"
              f"{r['series_drift']:>10}{r['bytes']:>8}{r['series'] / base['series']:>13.2f}{r['cells'] / max(1, base['cells']):>12.0f}"
              f"{r['step_s']:>9.2f}{r['expo_s'] * 1000:>11.2f}{r['errors']:>8}")
    same = len({r["series"] for r in rows}) == 1
    same_drifting = len({r["series_drift"] for r in rows}) == 1
    print(f"\nseries count {'is the same' if same else 'DIFFERS'} across worlds whose cells differ by "
          f"{rows[-1]['cells'] / max(1, base['cells']):,.0f}x; with every cell drifting it "
          f"{'is the same' if same_drifting else 'DIFFERS'} (pair cap {args.drift_pairs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
