"""The one source of segcheck's dashboards: panels as data, rendered by generate.py for Grafana and for the
OpenShift console. Edit here, then run `python -m dashboards.generate` (a test checks the committed files)."""

from __future__ import annotations

from dataclasses import dataclass, field

JOB = 'job="segcheck"'
KSM = 'job="kube-state-metrics"'
# The DaemonSet of deploy/daemonset (kube-state-metrics names it by namespace and name).
DAEMONSET = 'namespace="segcheck", daemonset="segcheck-agent"'
NET = 'network="$network", node=~"$node"'

# Grafana thresholds: (value at or above which, colour); the first value is None (the base).
Steps = tuple[tuple[float | None, str], ...]
ALARM: Steps = ((None, "green"), (1, "red"))
WARN: Steps = ((None, "green"), (1, "orange"))
UP: Steps = ((None, "red"), (1, "green"))
INFO: Steps = ((None, "blue"),)


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str | None = None


@dataclass(frozen=True)
class Panel:
    kind: str  # "stat" | "timeseries" | "table"
    title: str
    description: str
    targets: tuple[Target, ...]
    width: int  # of 24 columns
    height: int
    unit: str = "none"
    steps: Steps = ()
    # Tables: the label columns (label, header) in order; `value` is the value column's header (None: hidden).
    columns: tuple[tuple[str, str], ...] = ()
    value: str | None = None
    matrix: tuple[str, str] | None = None  # Grafana only: (row label, column label) pivot
    drift_link: bool = False  # rows link to that agent's /v1/drift (needs the `instance` column)
    colour_cells: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str
    include_all: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = field(default=())


def stat(title: str, description: str, expr: str, width: int, steps: Steps = INFO, unit: str = "none") -> Panel:
    return Panel("stat", title, description, (Target(expr),), width, 5, unit, steps)


def drift_stat(title: str, description: str, cls: str, selector: str, width: int, steps: Steps) -> Panel:
    return stat(title, description, f'sum(segcheck_drift_cells{{{selector}, class="{cls}"}}) or vector(0)', width, steps)


def table(title: str, description: str, expr: str, columns: tuple[tuple[str, str], ...], width: int, *,
          value: str | None, steps: Steps = (), matrix: tuple[str, str] | None = None, drift_link: bool = False,
          colour_cells: bool = False) -> Panel:
    return Panel("table", title, description, (Target(expr),), width, 8, steps=steps, columns=columns, value=value,
                 matrix=matrix, drift_link=drift_link, colour_cells=colour_cells)


def quantiles(metric: str, qs: tuple[str, ...]) -> tuple[Target, ...]:
    return tuple(Target(f"histogram_quantile(0.{q}, sum by (le) (rate({metric}_bucket{{{JOB}}}[5m])))", f"p{q}")
                 for q in qs)


PAIR_COLUMNS = (("node", "Node"), ("instance", "Agent"), ("source", "From"), ("destination", "To"), ("port", "Port"),
                ("class", "Worst class"), ("policy", "Policy"))
PAIR_LABELS = "instance, node, source, destination, class, policy, port"

OVERVIEW = Dashboard(
    uid="segcheck-overview",
    title="segcheck / Overview",
    description="MultiNetworkPolicy segmentation drift across all localnet networks and nodes (declared vs "
                "programmed vs observed).",
    rows=(
        Row("Drift", (
            drift_stat("Leak cells", "Cells where traffic the policies deny was seen to pass (all nodes, all "
                       "networks; a cell across nodes counts once). Anything above 0 is a segmentation breach.",
                       "leak", JOB, 6, ALARM),
            drift_stat("Blackhole cells", "Cells where allowed traffic is not answered.", "blackhole", JOB, 6, WARN),
            stat("Drifting pairs", "Pairs with at least one drifting cell, summed over agents (a pair "
                 "across nodes counts once).",
                 f"sum(segcheck_drift_pairs{{{JOB}}}) or vector(0)", 6, WARN),
            stat("Drift last changed (s ago)", "Seconds since any agent last saw the set of drifting cells change "
                 "(segcheck_last_drift_change_timestamp_seconds).",
                 f"time() - max(segcheck_last_drift_change_timestamp_seconds{{{JOB}}} > 0)", 6, INFO, "s"),
            Panel("timeseries", "Drift cells by class and network",
                  "segcheck_drift_cells summed over nodes, one line per network and class.",
                  (Target(f"sum by (network, class) (segcheck_drift_cells{{{JOB}}})", "{{network}} {{class}}"),),
                  24, 8),
            table("Drift per policy", "Drifting cells per class, by the policy whose verdict they break (the rules "
                  "that allow them, or the policies that isolate the denying side), summed over nodes.",
                  f"sum by (network, policy, class) (segcheck_policy_drift_cells{{{JOB}}})",
                  (("network", "Network"), ("policy", "Policy"), ("class", "Class")), 12, value="Cells"),
            table("Worst drifting pairs", "Each agent's worst drifting pairs (segcheck_drift_pair_info, capped by "
                  "--drift-pairs): a row links to that agent's /v1/drift for the cells and their evidence.",
                  f"max by (network, {PAIR_LABELS}) (segcheck_drift_pair_info{{{JOB}}})",
                  (("network", "Network"),) + PAIR_COLUMNS, 12, value=None, drift_link=True),
        )),
        Row("Findings", (
            table("Policy findings (declared plane)", "MultiNetworkPolicy findings per network and kind (the same "
                  "on every node).", f"max by (network, kind) (segcheck_policy_findings{{{JOB}}})",
                  (("network", "Network"), ("kind", "Kind")), 12, value="Findings"),
            table("Programmed findings (OVN NB / OVS)", "Findings in the programmed state, per node.",
                  f"max by (node, network, kind) (segcheck_programmed_findings{{{JOB}}})",
                  (("node", "Node"), ("network", "Network"), ("kind", "Kind")), 12, value="Findings"),
        )),
        Row("Probes", (
            Panel("timeseries", "Probe rate by result", "Probes per second, by verdict.",
                  (Target(f"sum by (result) (rate(segcheck_probes_total{{{JOB}}}[5m]))", "{{result}}"),), 8, 8,
                  "reqps"),
            Panel("timeseries", "Probe RTT (answered probes)",
                  "Quantiles of segcheck_probe_duration_seconds over all agents.",
                  quantiles("segcheck_probe_duration_seconds", ("5", "9", "99")), 8, 8, "s"),
            Panel("timeseries", "Probe round duration",
                  "Quantiles of one probe round (segcheck_round_duration_seconds).",
                  quantiles("segcheck_round_duration_seconds", ("5", "99")), 8, 8, "s"),
        )),
        Row("Agents and sources", (
            stat("Agents up", "Agents Prometheus scrapes successfully.", f"sum(up{{{JOB}}})", 6, UP),
            stat("Agents expected", "Nodes the segcheck-agent DaemonSet should run on (kube-state-metrics "
                 "kube_daemonset_status_desired_number_scheduled).",
                 f"sum(kube_daemonset_status_desired_number_scheduled{{{KSM}, {DAEMONSET}}})", 6),
            stat("Agents missing", "Expected agents that Prometheus does not scrape as up: a node whose cells "
                 "nobody checks.",
                 f"sum(kube_daemonset_status_desired_number_scheduled{{{KSM}, {DAEMONSET}}}) - "
                 f"(sum(up{{{JOB}}} == 1) or vector(0))", 6, ALARM),
            stat("Cells compared", "Cells compared in the last evaluation, summed over agents (a cell "
                 "across nodes counts once, at its source's node).",
                 f"sum(segcheck_cells{{{JOB}}})", 6),
            Panel("timeseries", "Rounds per minute", "Probe rounds completed per minute by each agent.",
                  (Target(f"sum by (node) (rate(segcheck_rounds_total{{{JOB}}}[5m])) * 60", "{{node}}"),), 6, 8),
            table("Sources up per node", "1 when the agent on that node can read the source.",
                  f"min by (node, source) (segcheck_source_up{{{JOB}}})", (("node", "Node"), ("source", "Source")),
                  6, value="Up", steps=UP, matrix=("node", "source"), colour_cells=True),
            Panel("timeseries", "Source staleness per node",
                  "Age of the last update from each source; alert above 300 s.",
                  (Target(f"max by (node, source) (segcheck_source_staleness_seconds{{{JOB}}})",
                          "{{node}} {{source}}"),), 6, 8, "s", ((None, "green"), (300, "red"))),
            table("Agents", "Version and OVN-Kubernetes profile detected by each agent.",
                  f"max by (node, version, ovnk_profile) (segcheck_build_info{{{JOB}}})",
                  (("node", "Node"), ("version", "Version"), ("ovnk_profile", "OVN-K profile")), 6, value=None),
        )),
    ),
)

NETWORK = Dashboard(
    uid="segcheck-network",
    title="segcheck / Network",
    description="One localnet network: drift per class, node, policy and pair, policy and programmed findings, "
                "bridge mapping status.",
    variables=(
        Variable("network", "Network", f"label_values(segcheck_cells{{{JOB}}}, network)"),
        Variable("node", "Node", f"label_values(segcheck_build_info{{{JOB}}}, node)", include_all=True),
    ),
    rows=(
        Row("Drift", (
            stat("Cells compared", "Cells of this network compared in the last evaluation, selected nodes.",
                 f"sum(segcheck_cells{{{JOB}, {NET}}})", 6),
            drift_stat("Leak cells", "Denied traffic observed to pass on this network.", "leak", f"{JOB}, {NET}", 6,
                       ALARM),
            drift_stat("Blackhole cells", "Allowed traffic on this network that is not answered (or that OVN "
                       "drops).", "blackhole", f"{JOB}, {NET}", 6, WARN),
            stat("Drifting pairs", "Pairs of this network with at least one drifting cell, selected nodes.",
                 f"sum(segcheck_drift_pairs{{{JOB}, {NET}}}) or vector(0)", 6, WARN),
            table("Drift cells per class and node", "segcheck_drift_cells for this network, per node and class; a "
                  "row links to that node's agent (/v1/drift).",
                  f"sum by (instance, node, class) (segcheck_drift_cells{{{JOB}, {NET}}})",
                  (("node", "Node"), ("instance", "Agent"), ("class", "Class")), 12, value="Cells", drift_link=True),
            Panel("timeseries", "Drift cells by class", "Over time, summed over the selected nodes.",
                  (Target(f"sum by (class) (segcheck_drift_cells{{{JOB}, {NET}}})", "{{class}}"),), 12, 8),
        )),
        Row("Which policy, which pair", (
            table("Drift per policy and node", "Drifting cells of this network per class, by the policy whose "
                  "verdict they break; a row links to that node's agent (/v1/drift).",
                  f"sum by (instance, node, policy, class) (segcheck_policy_drift_cells{{{JOB}, {NET}}})",
                  (("node", "Node"), ("instance", "Agent"), ("policy", "Policy"), ("class", "Class")), 12,
                  value="Cells", drift_link=True),
            table("Worst drifting pairs", "The worst drifting pairs of this network at each selected agent "
                  "(capped by --drift-pairs); a row links to that agent's /v1/drift.",
                  f"max by ({PAIR_LABELS}) (segcheck_drift_pair_info{{{JOB}, {NET}}})", PAIR_COLUMNS, 12,
                  value=None, drift_link=True),
        )),
        Row("Findings", (
            table("Policy findings by kind", "Declared-plane findings for the policies of this network.",
                  f'max by (kind) (segcheck_policy_findings{{{JOB}, network="$network"}})', (("kind", "Kind"),), 8,
                  value="Findings"),
            table("Programmed findings", "OVN NB / OVS findings for this network, per node.",
                  f"max by (node, kind) (segcheck_programmed_findings{{{JOB}, {NET}}})",
                  (("node", "Node"), ("kind", "Kind")), 8, value="Findings"),
            table("Localnet mapping per node", "ovn-bridge-mappings entry and patch ports for this network on each "
                  "node.", f"min by (node, bridge) (segcheck_localnet_mapping_ok{{{JOB}, {NET}}})",
                  (("node", "Node"), ("bridge", "Bridge")), 8, value="Mapped", steps=UP, colour_cells=True),
        )),
    ),
)

DASHBOARDS = (OVERVIEW, NETWORK)
