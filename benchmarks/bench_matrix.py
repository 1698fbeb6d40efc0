"""`segcheck matrix -o json` end to end, as users run it, against the naive pairwise oracle in the same run.

For each world size (generated manifest files, see tests/worlds.py) the CLI runs as a child process
(`python -m segcheck.cli matrix -f DIR -o json [ARGS]`, stdout to a file): wall time from spawn to exit, and the
child's own peak RSS (os.wait4). The child runs under an address-space limit and a timeout, so a path that
scales with pairs is reported as such instead of taking the machine down.

Baseline: tests/oracle.py's naive evaluator (policies read raw, one verdict per (pair, port)) on a random
sample of pairs, extrapolated to every pair of the world at ONE port each: a lower bound on what it would need
for the matrix, which covers every port. The sampled verdicts are checked against what the CLI printed.
Each world runs grouped (the default output) and, up to --max-pairs pairs, with --pairs. Numbers and ratios
only; never a pass/fail. Run: python3 benchmarks/bench_matrix.py [--sizes 1000x100,5000x500] [--shapes ...]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segcheck.agent.adapters.manifest_files import load_inventory  # noqa: E402
from segcheck.agent.core.model import Attachment, Endpoint, Protocol, Ref, Verdict  # noqa: E402
from segcheck.agent.core.reachability import NetworkReachability  # noqa: E402
from tests.oracle import naive_verdict  # noqa: E402
from tests.worlds import NETWORK, PORTS, SHAPES, write_world  # noqa: E402

GIB = 1 << 30
TARGETS = {(1000, 100): (2.0, None), (5000, 500): (10.0, 1.0)}  # issue 14: seconds, GiB
# Above this the printed matrix is not read back for the agreement check: parsed into Python objects, a 270 MiB
# grouped document took ~5 GiB in this process.
MAX_CHECKED_OUTPUT = 128 << 20


@dataclass
class Run:
    seconds: float
    cpu: float  # user + system seconds of the child (wall minus this is waiting, e.g. for other processes)
    max_rss: int  # bytes
    output_bytes: int
    exit_code: int | None  # None: killed at the timeout
    stderr: str


def run_cli(world: Path, out: Path, extra: list[str], timeout: float, mem_limit: int) -> Run:
    """One `segcheck matrix -o json` child: wall time from spawn to exit and its own peak RSS."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))

    cmd = [sys.executable, "-m", "segcheck.cli", "matrix", "-f", str(world), "-o", "json", *extra]
    with out.open("wb") as stdout, tempfile.TemporaryFile() as stderr:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, preexec_fn=limit)
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not every child's maximum
        seconds = time.perf_counter() - t0
        timed_out = not killer.is_alive()
        killer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen from waiting again
        stderr.seek(0)
        err = stderr.read().decode(errors="replace")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.stat().st_size,
               None if timed_out else child.returncode, err)


def printed_verdicts(out: Path) -> Callable[[str, str, int, Protocol, int | None], Verdict] | None:
    """A lookup into what `matrix -o json` printed (per-pair cells, or the grouped form), or None if too big."""
    if out.stat().st_size > MAX_CHECKED_OUTPUT:
        return None
    doc: dict[str, Any] = json.loads(out.read_text())
    if "cells" in doc:
        by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for c in doc["cells"]:
            by_pair.setdefault((c["from"], c["to"]), []).append(c)
        return lambda s, d, port, proto, family: _listed(by_pair[(s, d)], port, proto, family)
    class_of = {m: c["id"] for c in doc["classes"] for m in c["members"]}
    shapes = {v["id"]: v["cells"] for v in doc["verdicts"]}
    grid = {(row["from"], to): vid for row in doc["matrix"] for to, vid in row["to"]}
    return lambda s, d, port, proto, family: _listed(shapes[grid[(class_of[s], class_of[d])]], port, proto, family)


FAMILIES = {None: None, 4: "ipv4", 6: "ipv6"}


def _listed(cells: list[dict[str, Any]], port: int, proto: Protocol, family: int | None = None) -> Verdict:
    cells = [c for c in cells if c.get("family") == FAMILIES[family]]  # dual-stack: that family's cells
    mine = [c for c in cells if c["protocol"] == proto.value] or [
        c for c in cells if c["protocol"] == "TCP" and c["port"] is None]
    for c in mine:
        if c["port"] is not None and c["port"] <= port <= c.get("end_port", c["port"]):
            return Verdict(c["expected"])
    return Verdict(next(c for c in mine if c["port"] is None)["expected"])


def naive_baseline(inv: Any, net: Ref, rng: random.Random, size: int) -> tuple[list[Any], list[Verdict], float, int]:
    """The oracle on `size` random (pair, port, protocol): the sample, its verdicts, seconds per verdict, pairs."""
    endpoints: list[Endpoint] = [*inv.attachments_on(net), *inv.externals_on(net)]
    n = len(endpoints)
    externals = n - len(inv.attachments_on(net))
    pairs = n * (n - 1) - externals * (externals - 1)  # every ordered pair with a workload at one end
    dual = NetworkReachability(inv, net).dual_stack
    sample = []
    while len(sample) < size:
        s, d = rng.choice(endpoints), rng.choice(endpoints)
        if s.key != d.key and (isinstance(s, Attachment) or isinstance(d, Attachment)):
            common = sorted({ip.version for ip in s.ips} & {ip.version for ip in d.ips})
            family = rng.choice(common) if dual and common else None  # dual-stack: one family's packets
            sample.append((s, d, rng.choice(PORTS + [1, 65535]), rng.choice((Protocol.TCP, Protocol.UDP)), family))
    t0 = time.perf_counter()
    naive = [naive_verdict(inv, net, s, d, p, proto, family=f) for s, d, p, proto, f in sample]
    return sample, naive, (time.perf_counter() - t0) / len(sample), pairs


def report_run(label: str, run: Run, out: Path, naive_full: float, sample: list[Any], naive: list[Verdict]) -> None:
    status = "killed at the timeout" if run.exit_code is None else f"exit {run.exit_code}"
    print(f"  {label}: {run.seconds:.2f} s wall ({run.cpu:.2f} s CPU), {run.max_rss / 2**20:,.0f} MiB max RSS, "
          f"{run.output_bytes / 2**20:,.1f} MiB of JSON ({status}; load average {os.getloadavg()[0]:.1f})")
    if run.exit_code not in (0, 1):
        lines = run.stderr.strip().splitlines()
        print("    stderr: " + (lines[-1] if lines else "(none)"))
        return
    lookup = printed_verdicts(out)
    agreement = "not checked (output too big to read back)" if lookup is None else \
        f"{sum(lookup(s.key, d.key, p, proto, f) == v for (s, d, p, proto, f), v in zip(sample, naive))}/{len(sample)}"
    print(f"    naive / this >= {naive_full / run.seconds:,.0f}x; agreement with the oracle on the sample: {agreement}")


def bench(attachments: int, policies: int, shape: str, args: argparse.Namespace, rng: random.Random,
          tmp: Path) -> None:
    world = write_world(tmp / f"{shape}{attachments}x{policies}", attachments, policies, args.seed, shape)
    inv, errors = load_inventory([world])
    assert not errors, errors
    net = Ref.parse(NETWORK, "default")
    classes = len(NetworkReachability(inv, net).members)
    sample, naive, per_cell, pairs = naive_baseline(inv, net, rng, args.sample)
    naive_full = per_cell * pairs
    print(f"\n== {shape}: {attachments} attachments x {policies} policies: {pairs:,} pairs, {classes:,} classes ==")
    print(f"  naive oracle: {per_cell * 1e6:,.0f} us per (pair, port) on {len(sample)} sampled; "
          f"extrapolated {naive_full:,.0f} s for every pair at ONE port")
    out = tmp / "matrix.json"
    limit = int(args.mem_limit_gib * GIB)
    grouped = run_cli(world, out, [], args.timeout, limit)
    report_run("segcheck matrix -o json (grouped)", grouped, out, naive_full, sample, naive)
    target = TARGETS.get((attachments, policies))
    if target is not None:
        seconds, gib = target
        met = grouped.exit_code in (0, 1) and grouped.seconds <= seconds and (gib is None or grouped.max_rss <= gib * GIB)
        print(f"    target (issue 14) <= {seconds:g} s" + (f" and <= {gib:g} GiB RSS" if gib else "") +
              f": {'met' if met else 'NOT met'}")
    if pairs <= args.max_pairs:
        report_run("segcheck matrix -o json --pairs", run_cli(world, out, ["--pairs"], args.timeout, limit), out,
                   naive_full, sample, naive)
    else:
        print(f"  --pairs: not run ({pairs:,} pairs > --max-pairs {args.max_pairs:,})")
    out.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000x100,5000x500", help="ATTACHMENTSxPOLICIES,...")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help="world shapes (tests/worlds.py): replicas, scattered, dual (replicas, dual-stack)")
    parser.add_argument("--sample", type=int, default=2000, help="pairs the naive oracle evaluates per world")
    parser.add_argument("--max-pairs", type=int, default=1_100_000, help="largest world also run with --pairs")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a CLI run is killed")
    parser.add_argument("--mem-limit-gib", type=float, default=4.0, help="address-space limit of a CLI run")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="segcheck-bench-matrix-") as tmp:
        for size in args.sizes.split(","):
            a, p = (int(x) for x in size.lower().split("x"))
            for shape in args.shapes.split(","):
                bench(a, p, shape, args, rng, Path(tmp))


if __name__ == "__main__":
    main()
