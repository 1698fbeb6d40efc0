"""The agent's metric contract (names, types, labels), as the deployment files rely on it.

Alert rules and dashboards may only use these series (plus Prometheus' own `up` and kube-state-metrics'
`kube_node_role` and `kube_daemonset_status_desired_number_scheduled`); the fake exporter of the live test serves
exactly these.
"""

from __future__ import annotations

JOB = "segcheck"
KSM_JOB = "kube-state-metrics"
DRIFT_CLASSES = ("leak", "blackhole", "controller", "dataplane", "unknown")
PROBE_RESULTS = ("allowed", "denied", "unknown")
SOURCES = ("kubernetes", "ovn_nb", "ovs", "prober")

# name -> (type, labels)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "segcheck_drift_cells": ("gauge", ("network", "class")),
    "segcheck_cells": ("gauge", ("network",)),
    "segcheck_policy_findings": ("gauge", ("network", "kind")),
    "segcheck_programmed_findings": ("gauge", ("network", "kind")),
    "segcheck_probes_total": ("counter", ("result",)),
    "segcheck_probe_duration_seconds": ("histogram", ()),
    "segcheck_round_duration_seconds": ("histogram", ()),
    "segcheck_rounds_total": ("counter", ()),
    "segcheck_source_up": ("gauge", ("source",)),
    "segcheck_source_staleness_seconds": ("gauge", ("source",)),
    "segcheck_localnet_mapping_ok": ("gauge", ("network", "bridge")),
    "segcheck_policy_drift_cells": ("gauge", ("network", "policy", "class")),
    "segcheck_drift_pairs": ("gauge", ("network",)),
    "segcheck_drift_pair_info": ("gauge", ("network", "source", "destination", "class", "policy", "port")),
    "segcheck_last_drift_change_timestamp_seconds": ("gauge", ()),
    "segcheck_declared_errors": ("gauge", ("source", "kind")),
    "segcheck_build_info": ("gauge", ("version", "node", "ovnk_profile")),
}

# Series of other jobs, by the job that serves them (`up` is Prometheus' own, of our job).
KSM_SERIES = frozenset({"kube_node_role", "kube_daemonset_status_desired_number_scheduled"})
FOREIGN_SERIES = frozenset({"up"}) | KSM_SERIES


def series_names() -> frozenset[str]:
    """Every series name a query may use: histograms add _bucket/_sum/_count."""
    names: set[str] = set()
    for name, (kind, _labels) in METRICS.items():
        if kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
        else:
            names.add(name)
    return frozenset(names)
