"""Render dashboards/panels.py twice: Grafana JSON (dashboards/*.json) and OpenShift console dashboard ConfigMaps
(deploy/console-dashboards/), so the two cannot diverge.

    python -m dashboards.generate           # write the files
    python -m dashboards.generate --check   # exit 1 if a committed file differs from what would be written

The console (Observe -> Dashboards, OpenShift 4.14) reads a Grafana subset: `singlestat`, `graph` and `table`
panels laid out by `span` (12 columns) in rows, `query` variables, `$var` substitution; no data links. Its table
keys rows by the first label of each series (labels sort by name), so console tables carry a `_row` label that
joins all their columns; its thresholds colour values strictly above a step (Grafana: at or above).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from .panels import DASHBOARDS, Dashboard, Panel, Row, Steps

ROOT = Path(__file__).resolve().parents[1]
GRAFANA_DIR = ROOT / "dashboards"
CONSOLE_DIR = ROOT / "deploy" / "console-dashboards"
CONSOLE_NAMESPACE = "openshift-config-managed"
CONSOLE_LABEL = "console.openshift.io/dashboard"
CONSOLE_ROW_LABEL = "_row"
GRID_COLUMNS = 24
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["segcheck", "ovn-kubernetes", "multinetworkpolicy"]
# The agent's HTTP API, at the address Prometheus scrapes (the `instance` label); HTTPS on OpenShift (the
# overlay's service-CA certificate), plain HTTP with the base: a Grafana variable picks the scheme.
SCHEME_VARIABLE = "agent_scheme"
SCHEMES = ("https", "http")
DRIFT_URL = f"${{{SCHEME_VARIABLE}}}://${{__data.fields.instance}}/v1/drift?network="
Json = dict[str, Any]


def layout(row: Row, y: int) -> tuple[list[tuple[Panel, Json]], int]:
    """Left to right, wrapping at 24 columns; returns each panel's gridPos and the next free y."""
    placed, x, line_height = [], 0, 0
    for panel in row.panels:
        if x + panel.width > GRID_COLUMNS:
            y, x, line_height = y + line_height, 0, 0
        placed.append((panel, {"h": panel.height, "w": panel.width, "x": x, "y": y}))
        x += panel.width
        line_height = max(line_height, panel.height)
    return placed, y + line_height


# ----------------------------------------------------------------------------- Grafana

def _thresholds(steps: Steps) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def _grafana_targets(panel: Panel, instant: bool) -> list[Json]:
    out = []
    for ref, target in zip("ABCDEFGH", panel.targets):
        t: Json = {"expr": target.expr}
        if target.legend is not None:
            t["legendFormat"] = target.legend
        if instant:
            t["format"] = "table"
        t.update({"range": not instant, "instant": instant, "datasource": DATASOURCE, "refId": ref})
        out.append(t)
    return out


def _drift_link(panel: Panel) -> Json:
    labels = {label for label, _ in panel.columns}
    network = "${__data.fields.network}" if "network" in labels else "${network}"
    # A data link needs title/url/targetBlank; the schema types field links as dashboard links, hence the rest.
    return {"title": "Drifting cells at this agent (/v1/drift)", "url": DRIFT_URL + network, "targetBlank": True,
            "type": "link", "icon": "external link",
            "tooltip": "The agent's drifting cells with their evidence (needs a bearer token allowed to get "
                       "matrix.segcheck.io, e.g. curl -H \"Authorization: Bearer $(oc whoami -t)\")",
            "tags": [], "asDropdown": False, "includeVars": False, "keepTime": False}


def _grafana_table(panel: Panel, defaults: Json) -> list[Json]:
    defaults["custom"] = {"cellOptions": {"type": "color-background" if panel.colour_cells else "auto"}}
    if panel.drift_link:
        defaults["links"] = [_drift_link(panel)]
    exclude = {"Time": True} | ({"Value": True} if panel.value is None else {})
    organize: Json = {"excludeByName": exclude}
    if panel.matrix:
        row, column = panel.matrix
        return [{"id": "organize", "options": organize},
                {"id": "groupingToMatrix", "options": {"rowField": row, "columnField": column, "valueField": "Value"}}]
    # Renaming sets display names; data links still find fields by label name.
    names = list(panel.columns) + ([("Value", panel.value)] if panel.value else [])
    organize["indexByName"] = {name: i for i, (name, _) in enumerate(names)}
    organize["renameByName"] = dict(names)
    return [{"id": "organize", "options": organize}]


def grafana_panel(panel: Panel, grid: Json, pid: int) -> Json:
    out: Json = {"type": panel.kind, "id": pid, "title": panel.title, "description": panel.description,
                 "datasource": DATASOURCE, "gridPos": grid,
                 "targets": _grafana_targets(panel, instant=panel.kind != "timeseries")}
    defaults: Json = {"unit": panel.unit}
    if panel.steps:
        defaults["thresholds"] = _thresholds(panel.steps)
    options: Json = {}
    if panel.kind == "stat":
        defaults["color"] = {"mode": "thresholds"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"]}}
        if len(panel.steps) > 1 and panel.steps[0][1] == "green":
            options["colorMode"] = "background"
    elif panel.kind == "timeseries":
        defaults["min"] = 0
        if panel.steps:
            defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
        options = {"legend": {"displayMode": "table", "placement": "right"}}
    else:
        out["transformations"] = _grafana_table(panel, defaults)
    out["fieldConfig"] = {"defaults": defaults, "overrides": []}
    out["options"] = options
    return out


def grafana(dashboard: Dashboard) -> Json:
    panels: list[Json] = []
    y = 0
    for row in dashboard.rows:
        panels.append({"type": "row", "id": len(panels) + 1, "title": row.title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": GRID_COLUMNS, "x": 0, "y": y}})
        placed, y = layout(row, y + 1)
        for panel, grid in placed:
            panels.append(grafana_panel(panel, grid, len(panels) + 1))
    variables: list[Json] = [{"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
                              "hide": 0, "refresh": 1, "options": [], "regex": "", "includeAll": False, "multi": False}]
    for v in dashboard.variables:
        variable: Json = {"type": "query", "name": v.name, "label": v.label, "datasource": DATASOURCE,
                          "query": v.query, "definition": v.query, "refresh": 2, "sort": 1, "hide": 0, "options": [],
                          "regex": "", "includeAll": v.include_all, "multi": v.include_all}
        if v.include_all:
            variable["allValue"] = ".*"
        variables.append(variable)
    if any(p.drift_link for row in dashboard.rows for p in row.panels):
        options = [{"text": s, "value": s, "selected": i == 0} for i, s in enumerate(SCHEMES)]
        variables.append({"type": "custom", "name": SCHEME_VARIABLE, "label": "Agent API scheme",
                          "query": ",".join(SCHEMES), "current": {"text": SCHEMES[0], "value": SCHEMES[0]},
                          "options": options, "hide": 0, "includeAll": False, "multi": False})
    return {
        "uid": dashboard.uid, "title": dashboard.title, "description": dashboard.description, "tags": TAGS,
        "timezone": "browser", "editable": True, "graphTooltip": 1, "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m", "schemaVersion": 39, "version": 1, "fiscalYearStartMonth": 0, "liveNow": False,
        "weekStart": "", "links": [], "panels": panels, "templating": {"list": variables},
        "annotations": {"list": [{"name": "Annotations & Alerts", "builtIn": 1, "enable": True, "hide": True,
                                  "iconColor": "rgba(0, 211, 255, 1)", "type": "dashboard",
                                  "datasource": {"type": "grafana", "uid": "-- Grafana --"}}]},
    }


# ----------------------------------------------------------------------------- OpenShift console

CONSOLE_TYPES = {"stat": "singlestat", "timeseries": "graph", "table": "table"}
CONSOLE_UNITS = {"none": "short", "s": "short", "reqps": "short"}  # the console formats only a few units
BELOW_ANY_VALUE = -1e9


def _console_thresholds(steps: Steps) -> list[Json]:
    # The console colours a value strictly above a step: shift Grafana's "at or above" by half a unit (counts).
    return [{"value": BELOW_ANY_VALUE if v is None else v - 0.5, "color": c} for v, c in steps]


def console_table_expr(panel: Panel) -> str:
    expr = panel.targets[0].expr
    if len(panel.columns) < 2:
        return expr
    labels = ", ".join(f'"{label}"' for label, _ in panel.columns)
    return f'label_join({expr}, "{CONSOLE_ROW_LABEL}", "|", {labels})'


def console_panel(panel: Panel, grid: Json, pid: int) -> Json:
    out: Json = {"type": CONSOLE_TYPES[panel.kind], "id": pid, "title": panel.title, "description": panel.description,
                 "span": grid["w"] * 12 // GRID_COLUMNS}
    if panel.kind == "table":
        out["targets"] = [{"expr": console_table_expr(panel), "refId": "A", "format": "table", "instant": True}]
        out["transform"] = "table"
        styles = [{"pattern": label, "alias": header, "type": "string"} for label, header in panel.columns]
        if panel.value:
            styles.append({"pattern": "Value #A", "alias": panel.value, "type": "number", "decimals": 0})
        out["styles"] = styles
        return out
    out["targets"] = [{"expr": t.expr, "refId": ref, **({"legendFormat": t.legend} if t.legend else {})}
                      for ref, t in zip("ABCDEFGH", panel.targets)]
    unit = CONSOLE_UNITS.get(panel.unit, panel.unit)
    if panel.kind == "stat":
        out.update({"format": unit, "decimals": 0,
                    "options": {"fieldOptions": {"thresholds": _console_thresholds(panel.steps)}}})
    else:
        out.update({"legend": {"show": True}, "stack": False, "yaxes": [{"format": unit}, {"format": "short"}]})
    return out


def console(dashboard: Dashboard) -> Json:
    panels: list[Json] = []
    for row in dashboard.rows:
        # A row must come first: the console groups the panels that follow a row into it.
        panels.append({"type": "row", "id": len(panels) + 1, "title": row.title, "showTitle": True,
                       "collapse": False, "panels": []})
        placed, _ = layout(row, 0)
        for panel, grid in placed:
            panels.append(console_panel(panel, grid, len(panels) + 1))
    variables = [{"type": "query", "name": v.name, "label": v.label, "query": v.query, "hide": 0, "options": [],
                  "includeAll": v.include_all, **({"allValue": ".+"} if v.include_all else {})}
                 for v in dashboard.variables]
    return {"uid": dashboard.uid, "title": dashboard.title, "description": dashboard.description, "tags": TAGS,
            "schemaVersion": 39, "panels": panels, "templating": {"list": variables}}


def configmap(dashboard: Dashboard) -> Json:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": dashboard.uid, "namespace": CONSOLE_NAMESPACE,
                         "labels": {CONSOLE_LABEL: "true", "app.kubernetes.io/name": "segcheck"}},
            "data": {f"{dashboard.uid}.json": json.dumps(console(dashboard), indent=2) + "\n"}}


# ----------------------------------------------------------------------------- files

class _BlockStrings(yaml.SafeDumper):
    pass


_BlockStrings.add_representer(
    str, lambda dumper, s: dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))

HEADER = "# Generated by `python -m dashboards.generate` from dashboards/panels.py: edit there, not here.\n"


def rendered() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {GRAFANA_DIR / f"{d.uid}.json": json.dumps(grafana(d), indent=2) + "\n" for d in DASHBOARDS}
    for d in DASHBOARDS:
        files[CONSOLE_DIR / f"{d.uid}.yaml"] = HEADER + yaml.dump(configmap(d), Dumper=_BlockStrings, sort_keys=False,
                                                                   width=120)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": [f"{d.uid}.yaml" for d in DASHBOARDS]}
    files[CONSOLE_DIR / "kustomization.yaml"] = (
        HEADER + "# OpenShift console dashboards (Observe -> Dashboards): oc apply -k deploy/console-dashboards\n"
        + yaml.safe_dump(kustomization, sort_keys=False))
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = ap.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{path}: differs from dashboards/panels.py (run python -m dashboards.generate)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
