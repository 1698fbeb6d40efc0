#!/usr/bin/env python3
"""The raw prober over IPv6 against IPv4, in one run: two private labs (the seed, examples/seed, and the IPv6
seed, examples/seed-ipv6; own state dirs under /tmp, unique `scb<hex>-` prefixes, torn down afterwards whatever
happens), the same jobs on each: TCP probes of the DB from podclient's and vm-server's send points, alternating
5432 (allowed) and denied ports (default 1,000 ports 20000-20999), paced at --rate.

Per family: probes/s end to end (neighbour resolution, warm-up, passes, waits), net/s without the waits, the
prober's send/s, wrong and unknown verdicts; then IPv6/IPv4 ratios (the IPv4 lab is the baseline, measured in the
same run). Runs alternate families --rounds times, so load changes hit both. Prints results; not a pass/fail test.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.probers.ports import SourcePortAllocator
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.model import Ref, Verdict
from segcheck.agent.core.probe import ProbeJob
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.seed import packaged_seed, packaged_seed_ipv6
from segcheck.agent.lab.topology import topology_from_inventory

NET = Ref("default", "tenantblue")
TARGETS = {4: "192.168.200.5", 6: "fd00:200::5"}


def lab_up(seed: Path) -> Lab:
    inventory, errors = load_inventory([seed])
    if errors:
        raise SystemExit(f"{seed} does not load: {errors}")
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # PostgreSQL runs as user postgres
    lab = Lab(state_dir=state_dir, prefix=f"scb{secrets.token_hex(3)}-",
              topology=topology_from_inventory(inventory, NET))
    try:
        t0 = time.monotonic()
        lab.up()
        LabController(lab).apply(inventory, NET)
        print(f"lab {lab.prefix} ({seed.name}) up with its policies in {time.monotonic() - t0:.2f}s", flush=True)
    except BaseException:
        lab_down(lab)
        raise
    return lab


def lab_down(lab: Lab) -> None:
    lab.down()
    shutil.rmtree(lab.state_dir, ignore_errors=True)


def measure(lab: Lab, family: int, allocator: SourcePortAllocator, count: int, denied: list[int], rate: float,
            timeout: float) -> dict[str, float]:
    points = [lab.send_point("podclient"), lab.send_point("vm-server")]
    target = ipaddress.ip_address(TARGETS[family])
    ports = [p for d in denied for p in (5432, d)]
    jobs = [ProbeJob(points[(i // 2) % 2], target, ports[i % len(ports)]) for i in range(count)]
    prober = RawSocketProber(allocator=allocator)
    t0 = time.monotonic()
    results = prober.run(jobs, timeout=timeout, rate=rate)
    took = time.monotonic() - t0
    expect = {5432: Verdict.ALLOWED}
    wrong = sum(1 for r in results if r.verdict is not expect.get(r.job.dst_port or 0, Verdict.DENIED))
    unknown = sum(1 for r in results if r.verdict is Verdict.UNKNOWN)
    waits = prober.stats.get("wait_s", 0.0)
    return {"probes": count, "s": took, "probes/s": count / took, "net/s": count / max(took - waits, 1e-9),
            "send/s": prober.stats.get("send_rate", 0.0), "wrong %": 100.0 * wrong / count,
            "unknown %": 100.0 * unknown / count, "passes": prober.stats.get("passes", 0),
            "resolve s": prober.stats.get("arp_s", 0.0)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10000, help="probes per run")
    ap.add_argument("--rate", type=float, default=10000.0, help="paced rate")
    ap.add_argument("--timeout", type=float, default=1.0, help="wait after each pass's last send")
    ap.add_argument("--rounds", type=int, default=2, help="runs per family, alternating")
    ap.add_argument("--denied-ports", default="20000-20999")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the labs are removed on kill
    first, _, last = args.denied_ports.partition("-")
    denied = list(range(int(first), int(last or first) + 1))
    allocator = SourcePortAllocator()  # shared: no 5-tuple reused within the guard across runs
    labs: dict[int, Lab] = {}
    try:
        labs[4] = lab_up(packaged_seed())
        labs[6] = lab_up(packaged_seed_ipv6())
        print(f"{args.count} TCP probes per run (50/50 allowed/denied, podclient and vm-server), rate {args.rate:g}/s, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        runs: dict[int, list[dict[str, float]]] = {4: [], 6: []}
        for _ in range(args.rounds):
            for family in (4, 6):
                runs[family].append(measure(labs[family], family, allocator, args.count, denied, args.rate,
                                            args.timeout))
        keys = ["probes", "s", "probes/s", "net/s", "send/s", "wrong %", "unknown %", "passes", "resolve s"]
        print("| family | " + " | ".join(keys) + " |")
        print("|---|" + "---:|" * len(keys))
        for family in (4, 6):
            for r in runs[family]:
                print(f"| IPv{family} | " + " | ".join(f"{r[k]:,.2f}" if isinstance(r[k], float) else str(r[k])
                                                     for k in keys) + " |")
        best = {f: max(r["net/s"] for r in runs[f]) for f in (4, 6)}
        e2e = {f: max(r["probes/s"] for r in runs[f]) for f in (4, 6)}
        print(f"IPv6 / IPv4 (best of {args.rounds}): net/s {best[6] / best[4]:.3f}, probes/s {e2e[6] / e2e[4]:.3f}; "
              f"load average now {os.getloadavg()[0]:.1f}")
    finally:
        for lab in labs.values():
            lab_down(lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
