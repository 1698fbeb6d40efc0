#!/usr/bin/env python3
"""Probes per second of RawSocketProber vs scapy (batched `sr` and one-at-a-time `sr1`), with % wrong verdicts.

Default: builds the netns topology of tests/integration/netns_fixtures.py, probes TCP ports of which half are
open (RST/SYN-ACK: allowed) and half silently dropped (denied), and removes the topology afterwards.
On another lab, name the send point and the target instead:

    bench_probers.py --source NETNS,IFACE,IP[,MAC] --target 192.168.200.5 \\
        --allowed-ports 5432 --denied-ports 5433-5440

Rates: probes/s end to end (ARP, warm-up, sending, and the wait of `--timeout` after the last send); net/s
without that fixed wait (ratios use it); send/s the raw prober's own sending rate. Every run is bounded by its probe count; the whole benchmark by --max-seconds.
Prints results; it is not a pass/fail test.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.adapters.probers.scapy_prober import ScapyProber
from segcheck.agent.core.model import Verdict
from segcheck.agent.core.probe import ProbeJob, ProbeProtocol, SendPoint


def _ports(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


def _source(text: str) -> SendPoint:
    parts = text.split(",")
    if len(parts) not in (3, 4):
        raise argparse.ArgumentTypeError("expected NETNS,IFACE,IP[,MAC]")
    return SendPoint(parts[0], parts[1], ipaddress.ip_address(parts[2]), parts[3] if len(parts) == 4 else None)


def _jobs(points: list[SendPoint], target: ipaddress.IPv4Address, allowed: list[int], denied: list[int],
          count: int) -> tuple[list[ProbeJob], dict[int, Verdict]]:
    """`count` TCP jobs alternating allowed and denied ports (and send points)."""
    expected = {p: Verdict.ALLOWED for p in allowed} | {p: Verdict.DENIED for p in denied}
    mixed = [p for pair in zip(allowed * (len(denied) // len(allowed) + 1), denied) for p in pair] or allowed or denied
    jobs = [ProbeJob(points[i % len(points)], target, mixed[i % len(mixed)], ProbeProtocol.TCP) for i in range(count)]
    return jobs, expected


def _measure(name: str, make: Callable[[], object], jobs: list[ProbeJob], expected: dict[int, Verdict],
             timeout: float, rate: float) -> dict[str, object]:
    prober = make()
    start = time.monotonic()
    results = prober.run(jobs, timeout=timeout, rate=rate)  # type: ignore[attr-defined]
    elapsed = time.monotonic() - start
    wrong = sum(1 for r in results if r.verdict is not expected[r.job.dst_port])
    unknown = sum(1 for r in results if r.verdict is Verdict.UNKNOWN)
    stats = getattr(prober, "stats", {})
    # "net": without the fixed wait after the last send, i.e. what a long run converges to.
    return {"name": name, "count": len(jobs), "elapsed": elapsed, "rate": len(jobs) / elapsed,
            "net_rate": len(jobs) / max(elapsed - timeout, 1e-6),
            "send_rate": stats.get("send_rate"), "wrong_pct": 100.0 * wrong / max(1, len(jobs)),
            "unknown_pct": 100.0 * unknown / max(1, len(jobs))}




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=_source, action="append", help="NETNS,IFACE,IP[,MAC] (repeatable)")
    ap.add_argument("--target", type=ipaddress.IPv4Address, help="target IPv4 (default: the topology's server)")
    ap.add_argument("--allowed-ports", type=_ports, help="TCP ports expected allowed, e.g. 1024-2047")
    ap.add_argument("--denied-ports", type=_ports, help="TCP ports expected denied, e.g. 2048-3071")
    ap.add_argument("--count", type=int, default=20000, help="probes per raw run")
    ap.add_argument("--rate", type=float, default=20000.0, help="paced rate of the raw and scapy batch runs")
    ap.add_argument("--scapy-count", type=int, default=2000, help="probes of the scapy sr run")
    ap.add_argument("--sr1-count", type=int, default=40, help="probes of the scapy sr1 run")
    ap.add_argument("--timeout", type=float, default=1.0, help="wait after the last send")
    ap.add_argument("--max-seconds", type=float, default=240.0, help="skip remaining runs after this")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the topology is removed on kill

    topo_gen = None
    try:
        if args.source:
            if not (args.target and (args.allowed_ports or args.denied_ports)):
                ap.error("--source needs --target and --allowed-ports/--denied-ports")
            points, target = args.source, args.target
            allowed, denied = args.allowed_ports or [], args.denied_ports or []
            where = f"{', '.join(f'{p.netns}/{p.interface}' for p in points)} -> {target}"
        else:
            from tests.integration import netns_fixtures as nf

            topo_gen = nf.topology()
            topo = next(topo_gen)
            points, target = [topo.client, topo.vm], nf.SERVER_IP
            allowed, denied = list(nf.BULK_ALLOWED), list(nf.BULK_DENIED)
            where = f"netns topology {topo.prefix} (pod-like and VM-like send points) -> {target}"
        print(f"segcheck prober benchmark: {where}; {os.cpu_count()} CPUs; timeout {args.timeout:g}s")

        runs = [
            ("raw paced", lambda: RawSocketProber(), args.count, args.rate),
            ("raw unpaced", lambda: RawSocketProber(), args.count, 1e9),
            ("scapy sr (batch)", lambda: ScapyProber(mode="batch"), args.scapy_count, args.rate),
            ("scapy sr1 (one by one)", lambda: ScapyProber(mode="sr1"), args.sr1_count, args.rate),
        ]
        rows = []
        started = time.monotonic()
        for name, make, count, rate in runs:
            if time.monotonic() - started > args.max_seconds:
                print(f"  {name}: skipped (--max-seconds reached)")
                continue
            jobs, expected = _jobs(points, target, allowed, denied, count)
            rows.append(_measure(name, make, jobs, expected, args.timeout, rate))
            print(f"  {name}: done in {rows[-1]['elapsed']:.2f}s", flush=True)

        base = rows[0]["net_rate"] if rows else 1.0
        print(f"\n{'prober':<24}{'probes':>8}{'seconds':>9}{'probes/s':>10}{'net/s':>9}{'send/s':>9}{'vs raw':>9}"
              f"{'wrong %':>9}{'unknown %':>11}")
        for row in rows:
            send = f"{row['send_rate']:.0f}" if row["send_rate"] else "-"
            print(f"{row['name']:<24}{row['count']:>8}{row['elapsed']:>9.2f}{row['rate']:>10.0f}"
                  f"{row['net_rate']:>9.0f}{send:>9}{row['net_rate'] / base:>9.4f}{row['wrong_pct']:>9.2f}{row['unknown_pct']:>11.2f}")
        return 0
    finally:
        if topo_gen is not None:
            topo_gen.close()


if __name__ == "__main__":
    sys.exit(main())
