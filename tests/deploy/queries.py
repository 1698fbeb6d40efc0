"""Every PromQL expression the deployment ships: dashboard panel targets and variable queries (Grafana JSON and the
OpenShift console's ConfigMaps), alert rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
CONSOLE_DASHBOARDS = ROOT / "deploy" / "console-dashboards"
RULES = ROOT / "deploy" / "prometheus" / "segcheck-rules.yaml"
PROMETHEUS_RULE = ROOT / "deploy" / "daemonset" / "base" / "prometheusrule.yaml"

# Values the dashboard variables take in the checks (what Grafana would substitute).
VARIABLE_VALUES = {"network": "default/tenantblue", "node": ".*", "datasource": "prometheus"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Query:
    where: str  # e.g. "segcheck-network.json: panel 'Leak cells' A", "console segcheck-network: panel ..."
    expr: str  # as written, variables unsubstituted

    def promql(self) -> str:
        """The expression Grafana would send: variables substituted, label_values() as the series it reads."""
        expr = substitute(self.expr)
        match = _LABEL_VALUES.match(expr)
        if match:
            return f"count by ({match['label']}) ({match['selector']})"
        return expr


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLE_VALUES:
            raise KeyError(f"unknown dashboard variable ${name} in {expr!r}")
        return VARIABLE_VALUES[name]

    return _VARIABLE.sub(value, expr)


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def console_configmaps() -> list[dict[str, Any]]:
    return [doc for path in sorted(CONSOLE_DASHBOARDS.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def console_dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards inside the console ConfigMaps, by ConfigMap name (each holds one JSON document)."""
    return {cm["metadata"]["name"]: json.loads(text) for cm in console_configmaps() for text in cm["data"].values()}


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))  # rows hold their panels when collapsed
    return out


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return _panels(dashboard.get("panels", []))


def dashboard_queries(name: str, dashboard: dict[str, Any]) -> list[Query]:
    queries: list[Query] = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            queries.append(Query(f"{name}: panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query if isinstance(query, str) else query["query"]
            queries.append(Query(f"{name}: variable ${variable['name']}", text))
    return queries


def all_dashboard_queries() -> list[Query]:
    grafana = [q for path in dashboard_files() for q in dashboard_queries(path.name, load(path))]
    return grafana + [q for name, board in console_dashboards().items()
                      for q in dashboard_queries(f"console {name}", board)]


def rule_groups(path: Path = RULES) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["groups"])


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def console_table_queries() -> list[Query]:
    """Console table targets: the console keys a table's rows by the first label (by name) of each series."""
    return [Query(f"console {name}: table {panel['title']!r}", panel["targets"][0]["expr"])
            for name, board in console_dashboards().items() for panel in panels(board) if panel["type"] == "table"]


def rows_the_console_shows(vector: list[dict[str, Any]]) -> int:
    """How many rows the console's table makes of a result: one per distinct value of each series' first label."""
    return len({next(iter(sorted(s["metric"].items())), ("", ""))[1] for s in vector})


def linked_queries() -> list[tuple[Query, list[str]]]:
    """Grafana panels whose rows link to an agent's /v1/drift, with the fields their link reads."""
    out = []
    for path in dashboard_files():
        for panel in panels(load(path)):
            for link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
                fields = re.findall(r"\$\{__data\.fields\.(\w+)\}", link["url"])
                out.append((Query(f"{path.name}: link of {panel['title']!r}", panel["targets"][0]["expr"]), fields))
    return out
