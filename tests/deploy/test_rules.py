"""The alert rules: valid for promtool, unit-tested, the same in both shipped forms, and complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.contract import FOREIGN_SERIES, JOB, series_names
from tests.deploy.promtool import promtool
from tests.deploy.queries import PROMETHEUS_RULE, RULES, alert_rules, rule_groups

HERE = Path(__file__).resolve().parent

# alert -> (severity or severities, `for`)
REQUIRED = {
    "SegcheckLeak": ({"critical"}, "2m"),
    "SegcheckBlackhole": ({"warning"}, "5m"),
    "SegcheckControllerDrift": ({"warning"}, "5m"),
    "SegcheckDataplaneDrift": ({"warning"}, "5m"),
    "SegcheckSourceDown": ({"warning"}, "5m"),
    "SegcheckStale": ({"warning"}, "1m"),
    "SegcheckLocalnetUnmapped": ({"warning"}, "5m"),
    "SegcheckPolicyFindings": ({"warning", "info"}, "30m"),
    "SegcheckProgrammedFindings": ({"warning"}, "15m"),
    "SegcheckAgentDown": ({"warning"}, "5m"),
    "SegcheckAgentAbsent": ({"warning"}, "10m"),
    "SegcheckAgentMissingOnNode": ({"warning"}, "15m"),
}


@pytest.mark.prometheus
def test_plain_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_prometheusrule_groups_pass_promtool_check(tmp_path: Path) -> None:
    spec = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]
    path = tmp_path / "from-prometheusrule.yaml"
    path.write_text(yaml.safe_dump({"groups": spec["groups"]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheusrule_carries_exactly_the_plain_rule_groups() -> None:
    obj = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert (obj["apiVersion"], obj["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert obj["spec"]["groups"] == rule_groups(RULES)


@pytest.mark.prometheus
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", "rules_test.yaml", cwd=HERE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load((HERE / "rules_test.yaml").read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "never shown firing"
    assert names - silent == set(), "never shown silent"


def test_required_alerts_with_severity_and_for() -> None:
    by_name: dict[str, list[dict]] = {}
    for rule in alert_rules():
        by_name.setdefault(rule["alert"], []).append(rule)
    assert set(by_name) == set(REQUIRED)
    for name, (severities, for_) in REQUIRED.items():
        assert {r["labels"]["severity"] for r in by_name[name]} == severities, name
        assert {r["for"] for r in by_name[name]} == {for_}, name


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_selects_the_job_uses_contract_metrics_and_explains_itself(rule: dict) -> None:
    expr = rule["expr"]
    assert f'job="{JOB}"' in expr
    used = set(re.findall(r"\b(segcheck_\w+|up|kube_node_role)\b(?=\s*[{\[)])", expr))
    assert used and used <= series_names() | FOREIGN_SERIES, used
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook"}
    assert "docs/deploy.md#" in annotations["runbook"]
    kept = _labels_kept(expr)
    text = annotations["summary"] + annotations["description"]
    for label in ("network", "class", "node", "source", "kind", "bridge"):
        if label in kept:
            assert f"$labels.{label}" in text, f"{rule['alert']} keeps `{label}` but does not name it"


def _labels_kept(expr: str) -> set[str]:
    groupings = re.findall(r"by \(([^)]*)\)", expr)
    if groupings:
        return {label.strip() for label in groupings[0].split(",")}
    if expr.startswith("up{"):
        return {"node", "pod", "instance"}
    return set()
