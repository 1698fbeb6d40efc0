"""The OpenShift console's dashboards (deploy/console-dashboards): ConfigMaps the console picks up, holding the
same panels as the Grafana dashboards in the subset of Grafana JSON the console renders.

What the console (OpenShift 4.14, Observe -> Dashboards) reads: ConfigMaps in openshift-config-managed labelled
`console.openshift.io/dashboard: "true"`; panels of type singlestat, graph, table (and gauge, piechart), grouped
into the row that precedes them, `span` of 12 columns; variables of type `query` (label_values), substituted as
`$name`; table columns from `styles`. That every console query returns data, with one row per series of a table,
is checked against a real Prometheus in test_dashboards_live.py and test_prometheus_agent.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dashboards.generate import CONSOLE_ROW_LABEL
from tests.deploy.kustomize import render
from tests.deploy.queries import CONSOLE_DASHBOARDS, console_configmaps, console_dashboards, dashboard_files, load, panels

OPENSHIFT = Path(__file__).resolve().parents[2] / "deploy" / "daemonset" / "overlays" / "openshift"
CONSOLE_PANEL_TYPES = {"singlestat", "graph", "table", "gauge", "grafana-piechart-panel"}
# The console's own rewrite of a variable query (frontend dashboards: `label_values\((.*), (.*)\)`).
CONSOLE_LABEL_VALUES = re.compile(r"^label_values\((.*), (.*)\)$")
BOARDS = sorted(console_dashboards().items())


def test_one_configmap_per_grafana_dashboard_where_the_console_reads_them() -> None:
    maps = console_configmaps()
    assert sorted(cm["metadata"]["name"] for cm in maps) == sorted(load(p)["uid"] for p in dashboard_files())
    for cm in maps:
        assert cm["kind"] == "ConfigMap" and cm["apiVersion"] == "v1"
        assert cm["metadata"]["namespace"] == "openshift-config-managed"
        assert cm["metadata"]["labels"]["console.openshift.io/dashboard"] == "true"
        [(key, text)] = cm["data"].items()
        assert key == f"{cm['metadata']['name']}.json" and json.loads(text)["uid"] == cm["metadata"]["name"]


def test_the_overlays_install_them() -> None:
    names = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in render(CONSOLE_DASHBOARDS)}
    assert names == {("ConfigMap", "openshift-config-managed", uid) for uid, _ in BOARDS}
    assert names <= {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in render(OPENSHIFT)}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


_STRING, _NUMBER, _BOOL, _INT = {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "integer"}
# The fields the console reads (its dashboards' types.ts: Board, Panel, ColumnStyle, TemplateVariable), plus the
# descriptive ones Grafana keeps (uid, description, schemaVersion); anything else is a mistake here.
CONSOLE_SCHEMA = _object(
    ["title", "panels", "templating"], uid=_STRING, title=_STRING, description=_STRING, schemaVersion=_INT,
    tags={"type": "array", "items": _STRING},
    templating=_object(["list"], list={"type": "array", "items": _object(
        ["name", "type", "query"], name=_STRING, label=_STRING, type={"const": "query"}, query=_STRING,
        hide=_INT, includeAll=_BOOL, allValue=_STRING, options={"type": "array", "maxItems": 0})}),
    panels={"type": "array", "items": {"oneOf": [
        _object(["type", "id", "title", "showTitle"], type={"const": "row"}, id=_INT, title=_STRING,
                showTitle=_BOOL, collapse=_BOOL, panels={"type": "array", "maxItems": 0}),
        _object(["type", "id", "title", "span", "targets"], type={"enum": ["singlestat", "graph", "table"]},
                id=_INT, title=_STRING, description=_STRING, span={"type": "integer", "minimum": 1, "maximum": 12},
                targets={"type": "array", "minItems": 1, "items": _object(
                    ["expr", "refId"], expr=_STRING, refId=_STRING, legendFormat=_STRING, format={"const": "table"},
                    instant=_BOOL)},
                format=_STRING, decimals=_INT, stack=_BOOL, transform={"const": "table"},
                legend=_object(["show"], show=_BOOL),
                yaxes={"type": "array", "items": _object(["format"], format=_STRING)},
                options=_object(["fieldOptions"], fieldOptions=_object(["thresholds"], thresholds={
                    "type": "array", "items": _object(["value", "color"], value=_NUMBER, color=_STRING)})),
                styles={"type": "array", "items": _object(["pattern", "type"], pattern=_STRING, alias=_STRING,
                                                          type={"enum": ["string", "number", "hidden"]},
                                                          decimals=_INT, unit=_STRING)}),
    ]}},
)


@pytest.mark.parametrize("name,board", BOARDS, ids=[n for n, _ in BOARDS])
def test_console_dashboard_holds_only_fields_the_console_reads(name: str, board: dict[str, Any]) -> None:
    errors = list(jsonschema.Draft7Validator(CONSOLE_SCHEMA).iter_errors(board))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)


def test_the_console_schema_catches_mistakes() -> None:
    _, board = BOARDS[0]
    wrong = json.loads(json.dumps(board))
    wrong["panels"][1]["spna"] = 3
    assert list(jsonschema.Draft7Validator(CONSOLE_SCHEMA).iter_errors(wrong))
    wrong = json.loads(json.dumps(board))
    wrong["panels"][1]["type"] = "stat"
    assert list(jsonschema.Draft7Validator(CONSOLE_SCHEMA).iter_errors(wrong))


@pytest.mark.parametrize("name,board", BOARDS, ids=[n for n, _ in BOARDS])
def test_console_dashboard_uses_only_what_the_console_renders(name: str, board: dict[str, Any]) -> None:
    all_panels = panels(board)
    assert all_panels[0]["type"] == "row", "the console drops panels before the first row"
    variables = {v["name"] for v in board["templating"]["list"]}
    for panel in all_panels:
        if panel["type"] == "row":
            assert panel["showTitle"] and panel["title"]
            continue
        assert panel["type"] in CONSOLE_PANEL_TYPES, panel["title"]
        assert 1 <= panel["span"] <= 12, panel["title"]
        for target in panel["targets"]:
            assert "${" not in target["expr"], "the console substitutes $name only"
            assert set(re.findall(r"\$(\w+)", target["expr"])) <= variables, panel["title"]
        if panel["type"] == "table":
            aliased = [s for s in panel["styles"] if s.get("alias")]
            assert aliased, panel["title"]
            labels = [s["pattern"] for s in aliased if not s["pattern"].startswith("Value #")]
            if len(labels) > 1:  # rows are keyed by the first label, which must tell them apart
                assert f'"{CONSOLE_ROW_LABEL}"' in panel["targets"][0]["expr"], panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["type"] == "query" and CONSOLE_LABEL_VALUES.match(variable["query"]), variable["name"]


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_console_and_grafana_show_the_same_panels(path: Path) -> None:
    grafana = load(path)
    board = console_dashboards()[grafana["uid"]]

    def shape(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
        return [(p["type"] == "row" and "row" or "panel", p["title"]) for p in panels(dashboard)]

    assert shape(board) == shape(grafana)
    for ours, theirs in zip(panels(grafana), panels(board)):
        for a, b in zip(ours.get("targets", []), theirs.get("targets", [])):
            assert a["expr"] == b["expr"] or b["expr"].startswith(f"label_join({a['expr']}, "), ours["title"]
    assert [v["query"] for v in board["templating"]["list"]] == [
        v["query"] for v in grafana["templating"]["list"] if v["type"] == "query"]
