"""The CLI's contracts: JSON shapes, exit codes (0 ok, 1 finding/drift, 2 usage or bad input, >=3 cannot check)."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from segcheck.agent.lab.seed import packaged_seed
from segcheck.cli.main import cli
from tests.builders import mnp, nad

SEED = str(packaged_seed())


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_matrix_json_is_one_object_per_network(tmp_path):
    (tmp_path / "second.yaml").write_text(yaml.safe_dump(nad("tenantred")))
    result = run("matrix", "-f", SEED, "-f", str(tmp_path), "-o", "json")
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines()]
    assert [o["network"] for o in objects] == ["default/tenantblue", "default/tenantred"]
    blue = objects[0]
    assert set(blue) >= {"network", "cells", "findings"} and blue["findings"] == []
    db = [c for c in blue["cells"] if c["from"] == "default/vm-server" and c["to"] == "ext:db"]
    assert {"from": "default/vm-server", "to": "ext:db", "port": 5432, "protocol": "TCP", "expected": "allowed",
            "because": ["default/allow-db-egress:egress[0]"]} in db
    assert any(c["port"] is None and c["expected"] == "denied" for c in db)


def test_single_network_json_parses_as_one_document():
    result = run("matrix", "-f", SEED, "--network", "default/tenantblue", "-o", "json")
    assert json.loads(result.output)["network"] == "default/tenantblue"


def test_a_finding_exits_1_and_is_reported(tmp_path):
    (tmp_path / "untyped.yaml").write_text(yaml.safe_dump(mnp("untyped", {"podSelector": {}})))
    result = run("matrix", "-f", SEED, "-f", str(tmp_path), "-o", "json")
    assert result.exit_code == 1
    kinds = {f["kind"] for f in json.loads(result.output)["findings"]}
    assert kinds == {"no-policy-types"}


def test_explain_answers_with_its_reasons():
    result = run("explain", "vm-server", "db:5432", "-f", SEED, "-o", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["from"], data["to"], data["port"], data["protocol"]) == ("default/vm-server", "ext:db", 5432, "TCP")
    assert data["expected"] == "allowed" and data["because"] == ["default/allow-db-egress:egress[0]"]
    pair = json.loads(run("explain", "podclient", "db", "-f", SEED, "-o", "json").output)
    assert {(c["port"], c["expected"]) for c in pair["cells"]} == {(None, "denied"), (5432, "allowed")}
    assert run("explain", "ext:db", "podclient:8080", "-f", SEED).exit_code == 0


def test_usage_errors_exit_2():
    assert run("explain", "ghost", "db:5432", "-f", SEED).exit_code == 2
    assert run("explain", "vm-server", "db:99999", "-f", SEED).exit_code == 2
    assert run("matrix", "-f", SEED, "--network", "default/nope").exit_code == 2
    assert run("probe", "vm-server", "db:5432").exit_code == 2  # no declared state given


def test_completion_scripts():
    for shell in ("bash", "zsh", "fish"):
        result = run("completion", shell)
        assert result.exit_code == 0 and "_SEGCHECK_COMPLETE" in result.output
