#!/usr/bin/env python3
"""Probes per second of RawSocketProber vs scapy (batched `sr` and one-at-a-time `sr1`), with % wrong verdicts.

Default: builds the netns topology of tests/integration/netns_fixtures.py, probes TCP ports of which half are
open (RST/SYN-ACK: allowed) and half silently dropped (denied), and removes the topology afterwards.
On another lab, name the send point and the target instead:

    bench_probers.py --source NETNS,IFACE,IP[,MAC] --target 192.168.200.5 \\
        --allowed-ports 5432 --denied-ports 5433-5440

With --lab: brings up a private segcheck lab (OVS + OVN + PostgreSQL in namespaces; own state dir under /tmp and a
unique `scb<hex>-` prefix, torn down afterwards whatever happens), applies the seed policies, and probes the DB
192.168.200.5 from podclient's and vm-server's send points: 5432 is allowed, every other port denied (by default
1,000 denied ports 20000-20999, so 5-tuples spread over many keys). All probers share one source-port allocator,
so no 5-tuple is ever reused within the 120 s guard across runs.

Rates: probes/s end to end (ARP, warm-up, sending, and the wait of `--timeout` after the last send); net/s
without that fixed wait (ratios use it); send/s the raw prober's own sending rate. Every run is bounded by its probe count; the whole benchmark by --max-seconds.
Prints results; it is not a pass/fail test.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcheck.agent.adapters.probers.ports import SourcePortAllocator
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
    # Send points change every two jobs, so each one probes allowed and denied ports alike.
    jobs = [ProbeJob(points[(i // 2) % len(points)], target, mixed[i % len(mixed)], ProbeProtocol.TCP)
            for i in range(count)]
    return jobs, expected


def _measure(name: str, make: Callable[[], object], jobs: list[ProbeJob], expected: dict[int, Verdict],
             timeout: float, rate: float) -> dict[str, object]:
    prober = make()
    start = time.monotonic()
    results = prober.run(jobs, timeout=timeout, rate=rate)  # type: ignore[attr-defined]
    elapsed = time.monotonic() - start
    wrong = sum(1 for r in results if r.verdict is not expected[r.job.dst_port])
    unknown = sum(1 for r in results if r.verdict is Verdict.UNKNOWN)
    false_denied = sum(1 for r in results if r.verdict is Verdict.DENIED and expected[r.job.dst_port] is Verdict.ALLOWED)
    stats = getattr(prober, "stats", {})
    why: dict[str, int] = {}
    for r in results:
        if r.verdict is not expected[r.job.dst_port]:
            k = f"{r.job.source.netns}: {r.verdict.value}/{r.evidence.value}"
            if r.evidence.value == "error":
                k += f" ({r.detail[:90]})"
            why[k] = why.get(k, 0) + 1
    # "net": without the fixed waits after the last send of each pass (the raw prober re-probes silence in
    # further passes, each with its own wait), i.e. what a long run converges to.
    fixed = stats.get("wait_s", timeout)
    return {"name": name, "count": len(jobs), "elapsed": elapsed, "rate": len(jobs) / elapsed,
            "net_rate": len(jobs) / max(elapsed - fixed, 1e-6), "passes": stats.get("passes"),
            "attempts": stats.get("attempts"), "lost": stats.get("lost"),
            "send_rate": stats.get("send_rate"), "wrong_pct": 100.0 * wrong / max(1, len(jobs)),
            "false_denied": false_denied, "unknown_pct": 100.0 * unknown / max(1, len(jobs)), "why": why,
            "phases": {k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()}}




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
    ap.add_argument("--lab", action="store_true",
                    help="probe the seed lab's DB from podclient and vm-server (a private lab, removed afterwards)")
    ap.add_argument("--no-unpaced", action="store_true", help="skip the unpaced raw run")
    ap.add_argument("--loss", type=int, default=0,
                    help="with --lab: drop this %% of the DB's answers (nftables inside its namespace)")
    ap.add_argument("--cpu-hogs", type=int, default=0, help="CPU-bound processes competing during the runs")
    ap.add_argument("--baseline", metavar="GIT_REF",
                    help="also run the raw prober as it is at GIT_REF (e.g. main), first, on the same jobs")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the topology is removed on kill

    topo_gen = None
    lab = None
    hogs: list[subprocess.Popen] = []  # type: ignore[type-arg]
    extras = contextlib.ExitStack()
    try:
        if args.lab:
            lab = _lab_up()
            points = [lab.send_point("podclient"), lab.send_point("vm-server")]
            target = args.target or ipaddress.IPv4Address("192.168.200.5")
            allowed = args.allowed_ports or [5432]
            denied = args.denied_ports or list(range(20000, 21000))
            where = (f"lab {lab.prefix} with the seed policies (podclient net1, vm-server k6t- bridge) -> "
                     f"{target}: allowed {_span(allowed)}, denied {_span(denied)}")
        elif args.source:
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
        print(f"segcheck prober benchmark: {where}; {os.cpu_count()} CPUs; timeout {args.timeout:g}s; "
              f"answer loss {args.loss} %; {args.cpu_hogs} CPU-bound processes competing")
        if args.loss:
            if lab is None:
                ap.error("--loss needs --lab")
            from tests.integration.packet_loss import answer_loss

            extras.enter_context(answer_loss(lab.netns("db"), args.loss))
        for _ in range(args.cpu_hogs):
            hogs.append(subprocess.Popen([sys.executable, "-c", f"import time\nend = time.time() + {args.max_seconds + 60:.0f}\n"
                                          "while time.time() < end: pass"]))

        # One allocator for every run: a 5-tuple is never handed out twice within its guard, across probers too.
        ports = SourcePortAllocator()
        runs = [
            ("raw paced", lambda: RawSocketProber(allocator=ports), args.count, args.rate),
            ("raw unpaced", lambda: RawSocketProber(allocator=ports), args.count, 1e9),
            ("scapy sr (batch)", lambda: ScapyProber(mode="batch", allocator=ports), args.scapy_count, args.rate),
            ("scapy sr1 (one by one)", lambda: ScapyProber(mode="sr1", allocator=ports), args.sr1_count, args.rate),
        ]
        if args.no_unpaced:
            runs = [r for r in runs if r[0] != "raw unpaced"]
        if args.baseline:
            old = _baseline_prober(args.baseline)
            # Its own source ports (1024-39999): the two runs' 5-tuples never meet within the guard.
            old_ports = SourcePortAllocator(1024, 39999)
            runs.insert(0, (f"raw paced @{args.baseline}", lambda: old(port_range=(1024, 39999), allocator=old_ports),
                            args.count, args.rate))
        rows = []
        started = time.monotonic()
        for name, make, count, rate in runs:
            if count <= 0:
                continue
            if time.monotonic() - started > args.max_seconds:
                print(f"  {name}: skipped (--max-seconds reached)")
                continue
            jobs, expected = _jobs(points, target, allowed, denied, count)
            rows.append(_measure(name, make, jobs, expected, args.timeout, rate))
            why = ", ".join(f"{k} x{n}" for k, n in sorted(rows[-1]["why"].items()))
            print(f"  {name}: done in {rows[-1]['elapsed']:.2f}s" + (f"; wrong: {why}" if why else ""), flush=True)
            if rows[-1]["phases"]:
                print(f"    phases and counters: {rows[-1]['phases']}", flush=True)

        base = next((r["net_rate"] for r in rows if r["name"] == "raw paced"), rows[0]["net_rate"] if rows else 1.0)
        print(f"\n{'prober':<24}{'probes':>8}{'seconds':>9}{'probes/s':>10}{'net/s':>9}{'send/s':>9}{'vs raw':>9}"
              f"{'wrong %':>9}{'false denied':>14}{'unknown %':>11}{'passes':>8}{'sent':>8}{'lost':>6}")
        for row in rows:
            send = f"{row['send_rate']:.0f}" if row["send_rate"] else "-"
            print(f"{row['name']:<24}{row['count']:>8}{row['elapsed']:>9.2f}{row['rate']:>10.0f}"
                  f"{row['net_rate']:>9.0f}{send:>9}{row['net_rate'] / base:>9.4f}{row['wrong_pct']:>9.2f}"
                  f"{row['false_denied']:>14}{row['unknown_pct']:>11.2f}{row['passes'] or '-':>8}"
                  f"{row['attempts'] or '-':>8}{row['lost'] if row['lost'] is not None else '-':>6}")
        if rows:
            for row in rows:
                if row["name"].startswith("scapy") or "@" in row["name"]:
                    print(f"ratio raw paced / {row['name']}: {base / row['net_rate']:.1f}x (net probes/s)")
        try:
            print(f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
                  f"(other work on this machine competes for the {os.cpu_count()} CPUs)")
        except OSError:
            pass
        return 0
    finally:
        for hog in hogs:
            hog.kill()  # by PID: only what this benchmark started
            hog.wait()
        extras.close()
        if topo_gen is not None:
            topo_gen.close()
        if lab is not None:
            _lab_down(lab)


def _baseline_prober(ref: str):  # type: ignore[no-untyped-def]
    """RawSocketProber as it is at git `ref`: its probers package loaded from `git show` under another name."""
    import atexit
    import importlib.util
    import shutil
    import tempfile
    import types

    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="segcheck-baseline-"))
    atexit.register(shutil.rmtree, tmp, True)  # the sources are read at import: gone when the benchmark ends
    name = "segcheck.agent.adapters._baseline_probers"
    listing = subprocess.run(["git", "-C", str(root), "ls-tree", "--name-only", f"{ref}:agent/adapters/probers"],
                             capture_output=True, text=True, check=True).stdout.split()
    for file in listing:
        if file.endswith(".py"):
            text = subprocess.run(["git", "-C", str(root), "show", f"{ref}:agent/adapters/probers/{file}"],
                                  capture_output=True, text=True, check=True).stdout
            (tmp / file).write_text(text.replace("from .. import", "from segcheck.agent.adapters import"))
    package = types.ModuleType(name)
    package.__path__ = [str(tmp)]  # type: ignore[attr-defined]
    sys.modules[name] = package
    spec = importlib.util.spec_from_file_location(f"{name}.raw", tmp / "raw.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.RawSocketProber


def _span(ports: list[int]) -> str:
    return str(ports[0]) if len(ports) == 1 else f"{len(ports)} ports {min(ports)}-{max(ports)}"


def _lab_up():  # type: ignore[no-untyped-def]
    """A private lab with the seed policies applied (torn down by the caller via `_lab_down`)."""
    import secrets
    import tempfile

    from segcheck.agent.adapters.manifest_files import load_inventory
    from segcheck.agent.core.model import Ref
    from segcheck.agent.lab.controller import LabController
    from segcheck.agent.lab.lab import Lab
    from segcheck.agent.lab.seed import packaged_seed

    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # PostgreSQL runs as user postgres
    lab = Lab(state_dir=state_dir, prefix=f"scb{secrets.token_hex(3)}-")
    try:
        t0 = time.monotonic()
        lab.up()
        inventory, errors = load_inventory([packaged_seed()])
        if errors:
            raise SystemExit(f"seed manifests do not load: {errors}")
        LabController(lab).apply(inventory, Ref("default", "tenantblue"))
        print(f"lab {lab.prefix} up with the seed policies in {time.monotonic() - t0:.2f}s", flush=True)
    except BaseException:
        _lab_down(lab)
        raise
    return lab


def _lab_down(lab) -> None:  # type: ignore[no-untyped-def]
    import shutil

    t0 = time.monotonic()
    lab.down()
    shutil.rmtree(lab.state_dir, ignore_errors=True)
    print(f"lab {lab.prefix} down in {time.monotonic() - t0:.2f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
