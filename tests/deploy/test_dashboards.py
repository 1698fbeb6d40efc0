"""Dashboards: generated from one source, valid against Grafana's dashboard schema, datasource templated, PromQL
parsed by promtool, drift tables linked to the agents' /v1/drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dashboards import generate
from tests.deploy.contract import FOREIGN_SERIES, JOB, KSM_JOB, KSM_SERIES, series_names
from tests.deploy.promtool import check_exprs_parse
from tests.deploy.queries import all_dashboard_queries, dashboard_files, load, panels

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "grafana-dashboard.jsonschema.json"
EXPECTED = {"segcheck-overview.json", "segcheck-network.json"}


def test_the_two_dashboards_exist() -> None:
    assert {p.name for p in dashboard_files()} == EXPECTED


def test_committed_dashboards_are_the_generator_output() -> None:
    stale = [str(path) for path, text in generate.rendered().items() if not path.exists() or path.read_text() != text]
    assert not stale, f"run python -m dashboards.generate: {stale}"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_dashboard_is_valid_against_grafana_schema(path: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(load(path)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors)


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_datasource_is_a_prometheus_template_variable_used_everywhere(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ref = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == ref, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == ref, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == ref


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_panel_ids_unique_and_grid_within_24_columns(path: Path) -> None:
    all_panels = panels(load(path))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids))
    for panel in all_panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_network_dashboard_is_templated_on_network_and_node() -> None:
    dashboard = load(next(p for p in dashboard_files() if p.name == "segcheck-network.json"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["network"]["query"] == f'label_values(segcheck_cells{{job="{JOB}"}}, network)'
    assert variables["node"]["query"] == f'label_values(segcheck_build_info{{job="{JOB}"}}, node)'
    exprs = [q.expr for q in all_dashboard_queries() if q.where.startswith("segcheck-network.json: panel")]
    assert all('network="$network"' in e for e in exprs)
    assert sum('node=~"$node"' in e for e in exprs) >= 4


def test_overview_has_the_promised_panels() -> None:
    exprs = " ".join(q.expr for q in all_dashboard_queries() if q.where.startswith("segcheck-overview.json"))
    for needle in ('rate(segcheck_probes_total{job="segcheck"}[5m])', "segcheck_probe_duration_seconds_bucket",
                   "segcheck_round_duration_seconds_bucket", 'class="leak"', 'class="blackhole"',
                   "segcheck_policy_findings", "segcheck_source_up", "segcheck_source_staleness_seconds",
                   "by (network, class)", "by (network, policy, class) (segcheck_policy_drift_cells",
                   "segcheck_drift_pair_info", "segcheck_last_drift_change_timestamp_seconds",
                   'kube_daemonset_status_desired_number_scheduled{job="kube-state-metrics", '
                   'namespace="segcheck", daemonset="segcheck-agent"}'):
        assert needle in exprs, needle


def test_network_dashboard_has_blackhole_policy_and_pair_panels() -> None:
    exprs = " ".join(q.expr for q in all_dashboard_queries() if q.where.startswith("segcheck-network.json"))
    for needle in ('class="blackhole"', "segcheck_policy_drift_cells", "segcheck_drift_pair_info",
                   "segcheck_drift_pairs"):
        assert needle in exprs, needle


_SELECTOR = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\{([^}]*)\}")


def test_every_selector_names_the_job_of_its_series_and_uses_contract_metrics() -> None:
    for query in all_dashboard_queries():
        used = set(re.findall(r"\b(segcheck_\w+|up|kube_\w+)\b(?=\s*[{\[)])", query.expr))
        assert used and used <= series_names() | FOREIGN_SERIES, (query.where, used)
        selectors = _SELECTOR.findall(query.expr)
        assert {name for name, _ in selectors} >= used, (query.where, "every series needs a selector")
        for name, matchers in selectors:
            job = KSM_JOB if name in KSM_SERIES else JOB
            assert f'job="{job}"' in matchers, (query.where, name)


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda p: p.name)
def test_drift_tables_link_each_row_to_its_agents_drift_endpoint(path: Path) -> None:
    linked = [p for p in panels(load(path)) if p.get("fieldConfig", {}).get("defaults", {}).get("links")]
    assert len(linked) >= 1
    for panel in linked:
        [link] = panel["fieldConfig"]["defaults"]["links"]
        assert link["url"].startswith("${agent_scheme}://${__data.fields.instance}/v1/drift?network="), panel["title"]
        [target] = panel["targets"]
        grouped = re.match(r"\w+ by \(([^)]*)\)", target["expr"])
        assert grouped, panel["title"]
        labels = grouped[1].replace(" ", "").split(",")
        assert "instance" in labels, panel["title"]
        network = link["url"].rsplit("=", 1)[1]
        assert network == "${network}" or (network == "${__data.fields.network}" and "network" in labels)
    assert "Worst drifting pairs" in {p["title"] for p in linked}
    [scheme] = [v for v in load(path)["templating"]["list"] if v["name"] == "agent_scheme"]
    assert scheme["type"] == "custom" and scheme["query"] == "https,http"


@pytest.mark.prometheus
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    exprs: dict[str, Any] = {q.where: q.promql() for q in all_dashboard_queries()}
    result = check_exprs_parse(exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
