#!/usr/bin/env python3
"""The agent on a private lab: drift detection latency, RSS and idle CPU, each against a baseline of the same run.

On a private lab (own state dir under /tmp, unique `scb<hex>-` prefix, torn down in `finally`) with the seed
policies applied:

1. controller drift (in-process agent, as tests/integration/test_agent_lab.py runs it, --interval 5 s): remove
   the allow-db-egress Egress ACL from its port group with `ovn-nbctl`, and time from just before the write until
   the agent *publishes* a state showing controller drift (`Agent.wait_for`, woken by each publication). Baseline:
   how long the `ovn-nbctl` write itself took to return. Restored (seed re-applied, state clean) between repeats.
2. dataplane drift: a drop flow for tcp/5432 towards the DB on br-ex; time until a published state shows dataplane
   drift. It needs a probe, so it is bounded by the probe interval: reported with its ratio to the interval.
   Then a dataplane leak: flows on br-int carrying podclient <-> DB traffic of a denied cell's sample port around
   OVN's pipeline; time until a published state shows the leak (denied cells are sampled within the leak budget,
   not only once per interval), at a random phase, as a distribution.
3. memory and idle CPU of the real agent process (`python3 -m segcheck.cli agent --lab ... --interval 30`), sampled
   from /proc/PID/status (VmRSS) and /proc/PID/stat (utime+stime) over an idle window (default 60 s) after its
   first probe round, beside two baselines sampled over the same window: the same agent with probing disabled
   (`--max-probes 0`), and a bare `python3 -c "import time; time.sleep(...)"`.
   Also VmRSS of this benchmark process before and after the in-process agent ran.

4. the same on a 2-node lab cluster (`--nodes 2`, the default; `--nodes 1`: skip), in the same run: one OVN zone
   per node, an agent per node (`LabNodeSources`, as `segcheck agent --lab --node worker-N` runs it), the seed plus
   podclient -> vm-server:8080 allowed (a service path across nodes). Controller drift alternates between the
   nodes (each node's allow-db-egress Egress ACL; its own agent must publish it); blackholes: tcp/5432 to the DB
   dropped on worker-1's br-ex (vm-server's path, seen by worker-1's agent) and tcp/8080 to vm-server dropped on
   worker-1's br-ex (podclient's path across nodes, seen by worker-0's agent, whose probes cross the segment);
   the leak on worker-0's br-int. Each figure is printed beside the one-node figure of the same run, with the
   ratio. In part 3 the two cluster agent processes run beside the one-node agent, in the same idle window.

Targets from the issue (reported, never asserted): detection <= 2 s, RSS <= 100 MiB, idle CPU <= 1 % of a core.

Run (root): python3 benchmarks/bench_agent.py [--repeats 10] [--dataplane-repeats 3] [--idle-seconds 45]
            [--nodes 2] [--cluster-repeats 10] [--cluster-dataplane-repeats 3] [--cluster-leak-repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.ovsdb import NorthboundReader, OvsReader
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.enforcement import DEFAULT_PROFILE
from segcheck.agent.core.model import Ref
from segcheck.agent.lab.cluster import LabCluster, declared_nodes, node_names, place
from segcheck.agent.lab.cluster_sources import LabNodeSources
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.topology import topology_from_inventory
from segcheck.agent.runtime.agent_setup import make_agent
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.locator import LabLocator
from segcheck.agent.runtime.agent import Agent
from segcheck.agent.runtime.declared import FilesSource
from segcheck.agent.lab.seed import packaged_seed
from tests.builders import allow_client_to_server  # noqa: E402

NET = Ref("default", "tenantblue")
MIB = 1024 * 1024
DROP = "tcp,nw_dst=192.168.200.5,tp_dst=5432"
DROP_TO_SERVER = "tcp,nw_dst=192.168.200.20,tp_dst=8080"  # podclient -> vm-server:8080 where it enters worker-1
# Opens podclient -> vm-server:8080 on top of the seed, in the cluster: a service path across nodes.
ALLOW_CLIENT_TO_SERVER = allow_client_to_server()
TARGET_LATENCY, TARGET_RSS_MIB, TARGET_CPU_PCT, TARGET_LEAK = 2.0, 100.0, 1.0, 5.0


# ----------------------------------------------------------------------------------------------- /proc helpers

def vm_rss(pid: int | str = "self") -> int:
    """VmRSS in bytes (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # after "(comm) "; field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------------------- the lab

def new_lab() -> Lab:
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # PostgreSQL runs as user postgres
    return Lab(state_dir=state_dir, prefix=f"scb{secrets.token_hex(3)}-")


def new_cluster(inventory, nodes: int) -> LabCluster:  # type: ignore[no-untyped-def]
    state_dir = Path(tempfile.mkdtemp(prefix="segcheck-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # PostgreSQL runs as user postgres
    topology = topology_from_inventory(inventory, NET)
    return LabCluster(state_dir, f"scb{secrets.token_hex(2)}-", topology, nodes,
                      place(topology, node_names(nodes), declared_nodes(inventory, NET)))


def allow_acl(lab: Lab) -> tuple[str, str]:
    """(port group, uuid) of the Egress allow ACL programmed for default/allow-db-egress."""
    for block in lab.run_nbctl("--bare", "--columns=_uuid,external_ids", "find", "ACL",
                               'external_ids:"k8s.ovn.org/name"="default:allow-db-egress"').split("\n\n"):
        parts = block.split("\n")
        if len(parts) >= 2 and "direction=Egress" in parts[1]:
            uuid = parts[0].strip()
            pg = lab.run_nbctl("--bare", "--columns=name", "find", "Port_Group", f"acls{{>=}}{uuid}").strip()
            return pg, uuid
    raise RuntimeError("no Egress ACL owned by default:allow-db-egress (seed not applied?)")


def counts(state) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return state.drift_counts()[NET]


def clean(state) -> bool:  # type: ignore[no-untyped-def]
    """No drift claim (`unknown`, a probe without evidence, is none: under load some probes end there)."""
    return state.rounds >= 1 and not any(n for cls, n in counts(state).items() if cls != "unknown")


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return f"min {min(values):.3f}  median {statistics.median(values):.3f}  max {max(values):.3f}  (n={len(values)})"


# ----------------------------------------------------------------------------------------------- parts

def controller_drift(lab: Lab, agent: Agent, inventory, controller: LabController, repeats: int,  # type: ignore[no-untyped-def]
                     interval: float) -> tuple[list[float], list[float], int]:
    latencies, writes, missed = [], [], 0
    for _ in range(repeats):
        if agent.wait_for(clean, timeout=interval + 10) is None:
            print("  controller drift: agent not clean before a repeat; stopping this part")
            break
        pg, uuid = allow_acl(lab)
        t0 = time.monotonic()
        lab.run_nbctl("remove", "Port_Group", pg, "acls", uuid)
        t_write = time.monotonic() - t0
        state = agent.wait_for(lambda s: counts(s)["controller"] > 0, timeout=10)
        t_seen = time.monotonic() - t0
        try:
            if state is None:
                missed += 1
            else:
                latencies.append(t_seen)
                writes.append(t_write)
        finally:
            controller.apply(inventory, NET)
    return latencies, writes, missed


def dataplane_drift(lab: Lab, agent: Agent, repeats: int, interval: float, match: str = DROP,
                    cls: str = "dataplane") -> tuple[list[float], int]:
    """Time from a drop flow for `match` on `lab`'s br-ex to a state of `agent` showing `cls` drift."""
    latencies, missed = [], 0
    for _ in range(repeats):
        if agent.wait_for(clean, timeout=2 * interval + 10) is None:
            print("  dataplane drift: agent not clean before a repeat; stopping this part")
            break
        t0 = time.monotonic()
        lab.run_ofctl("add-flow", "br-ex", f"priority=65000,{match},actions=drop")
        try:
            state = agent.wait_for(lambda s: counts(s)[cls] > 0, timeout=2 * interval + 5)
            if state is None:
                missed += 1
            else:
                latencies.append(time.monotonic() - t0)
        finally:
            lab.run_ofctl("--strict", "del-flows", "br-ex", f"priority=65000,{match}")
    return latencies, missed


def leak_cell(state) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """(source, sample port) of a denied TCP cell from a workload to the DB: the port the agent probes it at."""
    for net in state.networks:
        for cell in net.cells:
            if (cell.destination == "ext:db" and cell.source == "default/podclient" and cell.protocol.value == "TCP"
                    and cell.expected.verdict.value == "denied"):
                return cell.source, cell.sample_port
    raise RuntimeError("no denied podclient -> db cell")


def bypass_flows(lab: Lab, port: int) -> list[str]:
    """OpenFlow rules on br-int that carry podclient <-> DB tcp/`port` around OVN's pipeline (its ACLs): a
    dataplane that leaks what NB denies."""
    iface = lab.run_vsctl("--bare", "--columns=name", "find", "Interface",
                          f"external_ids:iface-id={lab.lsp_name('podclient')}").strip()
    ofport = lab.run_vsctl("get", "Interface", iface, "ofport").strip()
    patch = lab.run_vsctl("get", "Interface", f"patch-br-int-to-{lab.localnet_port_name}", "ofport").strip()
    return [f"table=0,priority=65000,in_port={ofport},tcp,nw_dst=192.168.200.5,tp_dst={port},actions=output:{patch}",
            f"table=0,priority=65000,in_port={patch},tcp,nw_src=192.168.200.5,tp_src={port},actions=output:{ofport}"]


def leak_detection(lab: Lab, agent: Agent, repeats: int, interval: float) -> tuple[list[float], int, float]:
    """Time from a dataplane leak on a denied cell to a published state showing it (no NB change: only a probe
    of the denied cell can see it). Returns latencies, misses, and the denied cells' re-probe period."""
    latencies, missed = [], 0
    state = agent.wait_for(clean, timeout=2 * interval + 10)
    if state is None:
        print("  leak: agent not clean; skipping")
        return latencies, repeats, 0.0
    _, port = leak_cell(state)
    flows = bypass_flows(lab, port)
    rng = random.Random(7)
    for _ in range(repeats):
        if agent.wait_for(clean, timeout=2 * interval + 10) is None:
            print("  leak: agent not clean before a repeat; stopping this part")
            break
        time.sleep(rng.uniform(0, 1.0))  # a random phase against the probe schedule (bounded)
        t0 = time.monotonic()
        for flow in flows:
            lab.run_ofctl("add-flow", "br-int", flow)
        try:
            state = agent.wait_for(lambda s: counts(s)["leak"] > 0, timeout=interval + 10)
            if state is None:
                missed += 1
            else:
                latencies.append(time.monotonic() - t0)
        finally:
            for flow in flows:
                lab.run_ofctl("--strict", "del-flows", "br-int", flow.split(",actions=")[0])
    return latencies, missed, agent.denied_period


def under_loss(lab: Lab, agent: Agent, percent: int, seconds: float) -> dict[str, float]:
    """The agent with `percent` % of the DB's answers dropped (nftables in its namespace) for `seconds`: every
    state published meanwhile is inspected for false blackholes (an allowed cell observed denied)."""
    from tests.integration.packet_loss import answer_loss

    seen = {"states": 0, "false_blackhole_states": 0, "max_false_blackholes": 0, "unknown_states": 0}
    probes_before = dict(agent.state.probes_by_result) if agent.state else {}

    def inspect(state) -> bool:  # type: ignore[no-untyped-def]
        seen["states"] += 1
        c = counts(state)
        if c["blackhole"]:
            seen["false_blackhole_states"] += 1
            seen["max_false_blackholes"] = max(seen["max_false_blackholes"], c["blackhole"])
        seen["unknown_states"] += bool(c["unknown"])
        return False

    with answer_loss(lab.netns("db"), percent):
        agent.wait_for(inspect, timeout=seconds)
    after = agent.state.probes_by_result if agent.state else {}
    seen.update({f"probes_{k}": after.get(k, 0) - probes_before.get(k, 0) for k in ("allowed", "denied", "unknown")})
    return seen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_round(port: int, proc: subprocess.Popen, deadline: float, need_round: bool) -> bool:  # type: ignore[type-arg]
    """Until the agent serves /readyz (and, with need_round, has counted a probe round); bounded by deadline."""
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                body = resp.read().decode()
            if not need_round:
                return True
            for line in body.splitlines():
                if line.startswith("segcheck_rounds_total ") and float(line.split()[1]) >= 1:
                    return True
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)  # bounded by the deadline
    return False


def stop_pid(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def idle_processes(lab: Lab, idle_seconds: float, sample_every: float, cluster: LabCluster | None = None,
                   cluster_files: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    """The real agent, the agent with probing off, and a sleeping python, sampled side by side; with `cluster`,
    also one agent process per cluster node (`--lab --node worker-N`) in the same window."""
    tmp = Path(tempfile.mkdtemp(prefix="segcheck-bench-agent-"))
    token = tmp / "token"
    token.write_text(secrets.token_hex(16) + "\n")
    token.chmod(0o600)
    procs: dict[str, tuple[subprocess.Popen, int | None]] = {}  # type: ignore[type-arg]
    logs = []
    one_node = ["--state-dir", str(lab.state_dir), "--prefix", lab.prefix, "--node", "bench-node"]
    started = [("agent", one_node), ("agent, probing off", [*one_node, "--max-probes", "0"])]
    if cluster is not None:
        files = [a for f in cluster_files for a in ("--from-files", f)]
        started += [(f"cluster agent {node}", ["--state-dir", str(cluster.state_dir), "--node", node, *files])
                    for node in cluster.nodes]
    try:
        for name, extra in started:
            port = free_port()
            log = open(tmp / f"{len(logs)}.log", "wb")  # noqa: SIM115 - closed in `finally`
            logs.append(log)
            argv = [sys.executable, "-m", "segcheck.cli", "agent", "--lab", "--listen", f"127.0.0.1:{port}",
                    "--auth", f"token-file:{token}", "--interval", "30", *extra]
            procs[name] = (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log), port)
        sleeper = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({idle_seconds + 120:.0f})"])
        procs["python sleep (baseline)"] = (sleeper, None)
        deadline = time.monotonic() + 60
        for name, (proc, port) in procs.items():
            if port is not None and not wait_round(port, proc, deadline, need_round=("probing off" not in name)):
                index = [n for n, _ in started].index(name)
                raise RuntimeError(f"{name} not ready (or no probe round) within 60 s; exit {proc.poll()}; "
                                   f"log: {(tmp / f'{index}.log').read_text()[-500:]}")
        cpu0 = {n: cpu_seconds(p.pid) for n, (p, _) in procs.items()}
        rss: dict[str, list[int]] = {n: [] for n in procs}
        t0 = time.monotonic()
        end = t0 + idle_seconds
        for _ in range(int(idle_seconds / sample_every) + 2):  # bounded
            for n, (p, _) in procs.items():
                rss[n].append(vm_rss(p.pid))
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(sample_every, left))
        wall = time.monotonic() - t0
        out = {}
        for n, (p, _) in procs.items():
            used = cpu_seconds(p.pid) - cpu0[n]
            out[n] = {"wall": wall, "cpu_s": used, "cpu_pct": 100.0 * used / wall,
                      "rss_start": rss[n][0], "rss_max": max(rss[n]), "rss_end": rss[n][-1], "alive": p.poll() is None}
        return out
    finally:
        for proc, _ in procs.values():
            stop_pid(proc)
        for log in logs:
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- the cluster

def cluster_parts(cluster: LabCluster, inventory, files: list[Path], args: argparse.Namespace) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The in-process parts on the cluster, an agent per node (each its own zone, only its local cells)."""
    agents: dict[str, Agent] = {}
    out: dict[str, object] = {}
    try:
        t0 = time.monotonic()
        for node in cluster.nodes:
            agents[node] = make_agent(LabNodeSources(cluster, node), FilesSource(files, poll_seconds=0.5), node,
                                      DEFAULT_PROFILE, interval=args.interval, jitter=0.1)
            agents[node].start()
        for node, agent in agents.items():
            first = agent.wait_for(clean, timeout=30)
            if first is None:
                raise RuntimeError(f"agent of {node} not clean within 30 s: {agent.state and counts(agent.state)}")
            out[f"cells {node}"] = sum(len(n.cells) for n in first.networks)
        out["first_clean"] = time.monotonic() - t0
        print(f"cluster agents: first clean probe rounds published {out['first_clean']:.2f}s after start "
              f"({', '.join(str(n) + ' ' + str(out['cells ' + n]) + ' cells' for n in agents)})", flush=True)
        nodes = list(cluster.nodes)
        per_node: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in nodes}
        missed = 0
        for i in range(args.cluster_repeats):  # alternating: each node's ACL, seen by that node's agent
            node = nodes[i % len(nodes)]
            lat, writes, miss = controller_drift(cluster.nodes[node], agents[node], inventory, cluster, 1, args.interval)
            per_node[node][0].extend(lat)
            per_node[node][1].extend(writes)
            missed += miss
        out["controller"], out["controller_missed"] = per_node, missed
        print(f"  cluster controller drift done ({sum(len(v[0]) for v in per_node.values())} seen, {missed} missed)",
              flush=True)
        worker0, worker1 = nodes[0], nodes[-1]
        out["blackhole_local"] = dataplane_drift(cluster.nodes[worker1], agents[worker1], args.cluster_dataplane_repeats,
                                                 args.interval)
        out["blackhole_across"] = dataplane_drift(cluster.nodes[worker1], agents[worker0],
                                                  args.cluster_dataplane_repeats, args.interval, DROP_TO_SERVER,
                                                  "blackhole")
        print("  cluster blackholes done", flush=True)
        out["leak"] = leak_detection(cluster.nodes[worker0], agents[worker0], args.cluster_leak_repeats, args.interval)
        print("  cluster leak detection done", flush=True)
    finally:
        for agent in agents.values():
            agent.stop()
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report_cluster(one: dict[str, list[float]], two: dict[str, object], idle: dict[str, dict[str, float]],
                   interval: float) -> None:
    """Each 2-node figure beside the 1-node figure of the same run."""
    print(f"\n== 1 node vs 2 nodes (same run; interval {interval:g} s; medians) ==")
    print(f"{'measurement':<58}{'1 node':>10}{'2 nodes':>10}{'2 / 1':>8}  where (seconds unless said)")
    controller = two["controller"]
    assert isinstance(controller, dict)

    def row(label: str, a: float, b: float, where: str) -> None:
        ratio = b / a if a == a and b == b and a > 0 else float("nan")
        print(f"{label:<58}{a:>10.3f}{b:>10.3f}{ratio:>7.2f}x  {where}")

    every = [x for lat, _ in controller.values() for x in lat]
    row("controller drift: NB write -> published", median(one["controller"]), median(every),
        "; ".join(f"{n} {median(lat):.3f} s (n={len(lat)})" for n, (lat, _) in controller.items()))
    writes = [x for _, w in controller.values() for x in w]
    row("  baseline: ovn-nbctl write returns", median(one["writes"]), median(writes), "each node's own NB")
    local, _ = two["blackhole_local"]  # type: ignore[misc]
    row("blackhole to the DB (drop on br-ex) -> published", median(one["dataplane"]), median(local),
        f"vm-server's path on worker-1 (n={len(local)})")
    across, _ = two["blackhole_across"]  # type: ignore[misc]
    row("blackhole across nodes (8080 dropped entering worker-1)", median(one["dataplane"]), median(across),
        f"podclient -> vm-server, seen by worker-0 (n={len(across)})")
    leaks, _, _ = two["leak"]  # type: ignore[misc]
    row("dataplane leak (around OVN's ACLs on br-int) -> published", median(one["leak"]), median(leaks),
        f"podclient -> db on worker-0 (n={len(leaks)})")
    if idle:
        base = idle["agent"]
        for name, r in idle.items():
            if name.startswith("cluster agent"):
                node = name.rsplit(" ", 1)[1]
                row(f"idle agent process RSS max (MiB), {node}", base["rss_max"] / MIB, r["rss_max"] / MIB,
                    "beside the 1-node agent, same window")
                row(f"idle agent process CPU (% of a core), {node}", base["cpu_pct"], r["cpu_pct"],
                    "same window")
        both = [r for n, r in idle.items() if n.startswith("cluster agent")]
        if both:
            row("idle agent processes RSS max, all nodes (MiB)", base["rss_max"] / MIB,
                sum(r["rss_max"] for r in both) / MIB, f"{len(both)} agents")
            row("idle agent processes CPU, all nodes (% of a core)", base["cpu_pct"],
                sum(r["cpu_pct"] for r in both), f"{len(both)} agents")


# ----------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=float, default=5.0, help="probe interval of the in-process agent (s)")
    ap.add_argument("--repeats", type=int, default=10, help="controller drift repeats")
    ap.add_argument("--dataplane-repeats", type=int, default=3)
    ap.add_argument("--leak-repeats", type=int, default=5, help="dataplane leak (denied cell passes) repeats")
    ap.add_argument("--loss-percent", type=int, default=5, help="answer loss injected in the DB's namespace")
    ap.add_argument("--loss-seconds", type=float, default=30.0, help="how long the agent runs under that loss (0: skip)")
    ap.add_argument("--idle-seconds", type=float, default=45.0, help="idle CPU/RSS window of the agent processes")
    ap.add_argument("--sample-every", type=float, default=1.0)
    ap.add_argument("--skip-process", action="store_true", help="skip the agent-process RSS/CPU part")
    ap.add_argument("--nodes", type=int, choices=(1, 2), default=2,
                    help="2: also the 2-node cluster, an agent per node, beside the 1-node figures; 1: skip it")
    ap.add_argument("--cluster-repeats", type=int, default=10, help="cluster controller drift repeats (alternating nodes)")
    ap.add_argument("--cluster-dataplane-repeats", type=int, default=3, help="cluster repeats of each blackhole")
    ap.add_argument("--cluster-leak-repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets, OVS)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the agent and tears the lab down
    inventory, errors = load_inventory([packaged_seed()])
    if errors:
        print(f"seed manifests do not load: {errors}", file=sys.stderr)
        return 3
    print(f"segcheck agent benchmark; {os.cpu_count()} CPUs; load average before {os.getloadavg()[0]:.2f}")
    lab = new_lab()
    agent: Agent | None = None
    cluster: LabCluster | None = None
    declared_dir = Path(tempfile.mkdtemp(prefix="segcheck-bench-declared-"))
    (declared_dir / "60-allow.yaml").write_text(ALLOW_CLIENT_TO_SERVER)
    cluster_files = [packaged_seed(), declared_dir]
    two: dict[str, object] = {}
    try:
        t0 = time.monotonic()
        lab.up()
        controller = LabController(lab)
        controller.apply(inventory, NET)
        print(f"lab {lab.prefix} up with the seed in {time.monotonic() - t0:.2f}s", flush=True)

        rss_before = vm_rss()
        agent = Agent(FilesSource([packaged_seed()], poll_seconds=0.5), NorthboundReader(lab.nb_url),
                      OvsReader(lab.ovs_url), RawSocketProber(), LabLocator(lab), "lab-node", interval=args.interval,
                      jitter=0.1, only_local=False)
        t0 = time.monotonic()
        agent.start()
        first = agent.wait_for(clean, timeout=30)
        if first is None:
            raise RuntimeError(f"in-process agent not clean within 30 s: {agent.state and counts(agent.state)}")
        print(f"in-process agent: first clean probe round published {time.monotonic() - t0:.2f}s after start "
              f"({sum(len(n.cells) for n in first.networks)} cells)", flush=True)

        lat, writes, missed = controller_drift(lab, agent, inventory, controller, args.repeats, args.interval)
        print(f"  controller drift done ({len(lat)} seen, {missed} missed within 10 s)", flush=True)
        dp, dp_missed = dataplane_drift(lab, agent, args.dataplane_repeats, args.interval)
        print(f"  dataplane drift done ({len(dp)} seen, {dp_missed} missed within 2 intervals + 5 s)", flush=True)
        leaks, leak_missed, denied_period = leak_detection(lab, agent, args.leak_repeats, args.interval)
        print(f"  leak detection done ({len(leaks)} seen, {leak_missed} missed)", flush=True)
        lossy = under_loss(lab, agent, args.loss_percent, args.loss_seconds) if args.loss_seconds > 0 else {}
        print("  answer loss part done", flush=True)
        agent.stop()
        agent = None
        rss_after = vm_rss()

        if args.nodes == 2:
            cluster_inventory, errors = load_inventory(cluster_files)
            if errors:
                raise RuntimeError(f"cluster manifests do not load: {errors}")
            cluster = new_cluster(cluster_inventory, 2)
            t0 = time.monotonic()
            cluster.up()
            cluster.apply(cluster_inventory, NET)
            print(f"cluster {cluster.prefix} up (2 nodes) with the seed and allow-client-to-server in "
                  f"{time.monotonic() - t0:.2f}s", flush=True)
            two = cluster_parts(cluster, cluster_inventory, cluster_files, args)

        idle = {} if args.skip_process else idle_processes(
            lab, args.idle_seconds, args.sample_every, cluster, tuple(str(f) for f in cluster_files))
    finally:
        if agent is not None:
            agent.stop()
        lab.down()
        shutil.rmtree(lab.state_dir, ignore_errors=True)
        print(f"lab {lab.prefix} down", flush=True)
        if cluster is not None:
            cluster.down()
            shutil.rmtree(cluster.state_dir, ignore_errors=True)
            print(f"cluster {cluster.prefix} down", flush=True)
        shutil.rmtree(declared_dir, ignore_errors=True)

    print("\n== controller drift (ACL removed from its port group in OVN NB) ==")
    print(f"detection, write -> published state (s): {summary(lat)}")
    print(f"baseline, ovn-nbctl write returns (s):   {summary(writes)}")
    if lat:
        ratios = [a / b for a, b in zip(lat, writes)]
        med = statistics.median(lat)
        print(f"ratio detection / write: median {statistics.median(ratios):.2f}x "
              f"(detection beyond the write: median {1000 * (med - statistics.median(writes)):.0f} ms)")
        print(f"target <= {TARGET_LATENCY:g} s: {'met' if max(lat) <= TARGET_LATENCY else 'NOT met'} "
              f"(max {max(lat):.3f} s); missed {missed}")

    print(f"\n== dataplane drift (drop flow on br-ex; probe interval {args.interval:g} s) ==")
    print(f"detection, add-flow -> published state (s): {summary(dp)}")
    if dp:
        print(f"ratio to the probe interval: median {statistics.median(dp) / args.interval:.2f}, "
              f"max {max(dp) / args.interval:.2f} (bounded by interval + probe timeout + jitter)")
        print(f"target <= {TARGET_LATENCY:g} s: {'met' if max(dp) <= TARGET_LATENCY else 'NOT met'} "
              f"(needs a probe: interval {args.interval:g} s; missed {dp_missed})")

    print(f"\n== dataplane leak (a denied cell's traffic carried around OVN's ACLs on br-int; interval "
          f"{args.interval:g} s, denied cells re-probed every {denied_period:.2f} s within the leak budget) ==")
    print(f"detection, add-flow -> published state (s): {summary(leaks)}")
    if leaks:
        print(f"ratio to the probe interval: median {statistics.median(leaks) / args.interval:.2f} "
              f"(a full round would take up to 1.0 + jitter); target median <= {TARGET_LEAK:g} s: "
              f"{'met' if statistics.median(leaks) <= TARGET_LEAK else 'NOT met'}; missed {leak_missed}")

    if lossy:
        print(f"\n== {args.loss_percent} % of the DB's answers dropped for {args.loss_seconds:g} s (nftables in its namespace) ==")
        print(f"states published: {lossy['states']}; with a (false) blackhole: {lossy['false_blackhole_states']} "
              f"(max {lossy['max_false_blackholes']} cells); with unknown cells: {lossy['unknown_states']}")
        print(f"probe verdicts meanwhile: allowed {lossy['probes_allowed']}, denied {lossy['probes_denied']}, "
              f"unknown {lossy['probes_unknown']}; target 0 false blackholes: "
              f"{'met' if lossy['false_blackhole_states'] == 0 else 'NOT met'}")

    print("\n== memory ==")
    print(f"this benchmark process (imports done) before the in-process agent: {rss_before / MIB:.1f} MiB; "
          f"after: {rss_after / MIB:.1f} MiB (+{(rss_after - rss_before) / MIB:.1f} MiB)")
    if idle:
        base = idle["python sleep (baseline)"]
        print(f"\n== processes over {base['wall']:.0f} s idle (agent --interval 30), sampled side by side ==")
        print(f"{'process':<26}{'RSS start MiB':>14}{'RSS max MiB':>12}{'RSS end MiB':>12}{'CPU s':>8}"
              f"{'% of a core':>12}{'RSS / sleep':>12}")
        for n, r in idle.items():
            print(f"{n:<26}{r['rss_start'] / MIB:>14.1f}{r['rss_max'] / MIB:>12.1f}{r['rss_end'] / MIB:>12.1f}"
                  f"{r['cpu_s']:>8.2f}{r['cpu_pct']:>12.3f}{r['rss_max'] / max(1, base['rss_max']):>11.1f}x"
                  + ("" if r["alive"] else "  (exited!)"))
        a, off = idle["agent"], idle["agent, probing off"]
        print(f"agent CPU minus sleeping python: {a['cpu_pct'] - base['cpu_pct']:.3f} % of a core; "
              f"probing's share (agent - probing off): {a['cpu_pct'] - off['cpu_pct']:.3f} %")
        print(f"target RSS <= {TARGET_RSS_MIB:g} MiB: {'met' if a['rss_max'] / MIB <= TARGET_RSS_MIB else 'NOT met'}; "
              f"target idle CPU <= {TARGET_CPU_PCT:g} % of a core: "
              f"{'met' if a['cpu_pct'] <= TARGET_CPU_PCT else 'NOT met'}")
    if two:
        report_cluster({"controller": lat, "writes": writes, "dataplane": dp, "leak": leaks}, two, idle, args.interval)
    print(f"\nload average after {os.getloadavg()[0]:.2f} (other work on this machine competes for the "
          f"{os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
