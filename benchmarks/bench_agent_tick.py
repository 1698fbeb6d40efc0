#!/usr/bin/env python3
"""The agent's tick at cluster size: an idle tick and a sentinel tick against an all-cells scan, in one run.

Generated manifests (bench_series' world: N pods on one IPAM-less localnet, default deny, an allow-to-DB egress
policy, ipBlock policies), `--local` of them claimed on this node, a simulated prober that answers at once (no
packets) and a fake clock, so only the agent's own work is timed:

- plan: the first `Agent.step()` (plans every cell, probes every local TCP cell once);
- idle tick: `step()` with nothing due (no source changed, no cell due) — the loop's cost per wake-up;
- sentinel tick: `step()` one sentinel interval later (the allowed cells are due and probed, then published);
- baseline, same run: one pass over every planned cell comparing its planes with its observation's — what the
  previous agent did twice per tick (`_changed_cells`, then the due scan of `_probe_round`).

Targets from the issue (reported, never asserted): idle tick <= 1 ms at 282k cells (1,000 attachments, 30 local).

Run: python3 benchmarks/bench_agent_tick.py [--attachments 1000 --local 30 --ticks 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_series import FirstNLocator, write_world  # noqa: E402

from segcheck.agent.adapters.probers.simulated import SimulatedProber  # noqa: E402
from segcheck.agent.core.model import Verdict  # noqa: E402
from segcheck.agent.core.probe import ProbeJob  # noqa: E402
from segcheck.agent.runtime.agent import Agent  # noqa: E402
from segcheck.agent.runtime.cell_records import planes_of  # noqa: E402
from segcheck.agent.runtime.declared import FilesSource  # noqa: E402

TARGET_IDLE_MS = 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def db_only(job: ProbeJob) -> Verdict:
    return Verdict.ALLOWED if job.dst_port == 5432 else Verdict.DENIED


def ms(values: list[float]) -> str:
    return f"median {1000 * statistics.median(values):.3f} ms  min {1000 * min(values):.3f}  max {1000 * max(values):.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attachments", type=int, default=1000)
    ap.add_argument("--local", type=int, default=30)
    ap.add_argument("--ticks", type=int, default=200, help="idle ticks timed")
    ap.add_argument("--sentinel-ticks", type=int, default=5)
    args = ap.parse_args(argv)
    clock = Clock()
    prober = SimulatedProber(db_only)
    with tempfile.TemporaryDirectory(prefix="segcheck-tick-") as tmp:
        write_world(Path(tmp), args.attachments)
        agent = Agent(FilesSource([tmp], poll_seconds=3600), None, None, prober, FirstNLocator(args.local), "bench-node",
                      interval=30.0, jitter=0.1, max_probes=10_000_000, clock=clock, sentinel_interval=1.0)
        agent.declared.start(agent.poke)  # a generation, no loop thread: step() is called directly
        try:
            t0 = time.perf_counter()
            state = agent.step()
            plan_s = time.perf_counter() - t0
            cells = sum(len(n.cells) for n in state.networks)
            probed = sum(len(run) for run in prober.runs)
            idle = []
            for _ in range(args.ticks):
                t0 = time.perf_counter()
                agent.step()
                idle.append(time.perf_counter() - t0)
            assert sum(len(run) for run in prober.runs) == probed, "an idle tick probed"
            sentinel, sentinel_probes = [], []
            for _ in range(args.sentinel_ticks):
                clock.now += 1.2  # past every sentinel's jittered period
                before = sum(len(run) for run in prober.runs)
                t0 = time.perf_counter()
                agent.step()
                sentinel.append(time.perf_counter() - t0)
                sentinel_probes.append(sum(len(run) for run in prober.runs) - before)
            plan = agent.plan
            assert plan is not None
            records = list(plan.by_id.values())
            scans = []
            for _ in range(5):
                t0 = time.perf_counter()
                changed = sum(1 for r in records if r.observation is not None and r.observation.planes != planes_of(r.cell))
                scans.append(time.perf_counter() - t0)
        finally:
            agent.declared.stop()
    print(f"segcheck agent tick: {args.attachments} attachments, {args.local} local; {cells:,} cells planned, "
          f"{probed:,} probed (TCP, local source); simulated prober, fake clock")
    print(f"first step (plan + probe every local TCP cell): {plan_s:.2f} s")
    print(f"idle tick, nothing due ({args.ticks}x):            {ms(idle)}")
    print(f"sentinel tick ({args.sentinel_ticks}x, {statistics.median(sentinel_probes):.0f} cells due): {ms(sentinel)}")
    print(f"baseline, one scan of all {len(records):,} records ({changed} changed): {ms(scans)}")
    base = statistics.median(scans)
    print(f"ratio idle tick / scan: {statistics.median(idle) / base:.5f}; sentinel tick / scan: "
          f"{statistics.median(sentinel) / base:.3f} (the previous agent scanned twice per tick)")
    print(f"target idle tick <= {TARGET_IDLE_MS:g} ms: "
          f"{'met' if 1000 * statistics.median(idle) <= TARGET_IDLE_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
