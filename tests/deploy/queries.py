"""Every PromQL expression the deployment ships: dashboard panel targets, dashboard variable queries, alert rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "segcheck-rules.yaml"
PROMETHEUS_RULE = ROOT / "deploy" / "daemonset" / "base" / "prometheusrule.yaml"

# Values the dashboard variables take in the checks (what Grafana would substitute).
VARIABLE_VALUES = {"network": "default/tenantblue", "node": ".*", "datasource": "prometheus"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Query:
    where: str  # e.g. "segcheck-network.json: panel 'Leak cells' A"
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


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))  # rows hold their panels when collapsed
    return out


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return _panels(dashboard.get("panels", []))


def dashboard_queries(path: Path) -> list[Query]:
    dashboard = load(path)
    queries: list[Query] = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            queries.append(Query(f"{path.name}: panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query if isinstance(query, str) else query["query"]
            queries.append(Query(f"{path.name}: variable ${variable['name']}", text))
    return queries


def all_dashboard_queries() -> list[Query]:
    return [q for path in dashboard_files() for q in dashboard_queries(path)]


def rule_groups(path: Path = RULES) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["groups"])


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]
