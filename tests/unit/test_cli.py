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
    result = run("matrix", "-f", SEED, "-f", str(tmp_path), "-o", "json", "--pairs")
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


def test_fail_on_chooses_which_findings_fail(tmp_path):
    (tmp_path / "untyped.yaml").write_text(yaml.safe_dump(mnp("untyped", {"podSelector": {}})))  # a warning
    assert run("matrix", "-f", SEED, "-f", str(tmp_path)).exit_code == 1
    assert run("matrix", "-f", SEED, "-f", str(tmp_path), "--fail-on", "warning").exit_code == 1
    assert run("matrix", "-f", SEED, "-f", str(tmp_path), "--fail-on", "error").exit_code == 0
    assert run("matrix", "-f", SEED, "-f", str(tmp_path), "--fail-on", "never").exit_code == 0
    assert run("explain", "vm-server", "db:5432", "-f", SEED, "-f", str(tmp_path), "--fail-on", "error").exit_code == 0
    assert run("matrix", "-f", SEED, "--fail-on", "sometimes").exit_code == 2


def test_tables_into_a_pipe_are_plain_columns_with_a_legend():
    result = run("matrix", "-f", SEED)  # CliRunner's stdout is not a terminal
    assert result.exit_code == 0
    assert not set("─│┃━┏┓└┘┌┐├┤") & set(result.output)
    assert "X denied" in result.output and ". allowed" in result.output
    header = next(line for line in result.output.splitlines() if line.startswith("FROM"))
    assert header.split() == ["FROM", "TO", "PORT", "EXPECTED", "BECAUSE"]


def test_wide_adds_the_reasons():
    result = run("matrix", "-f", SEED, "-o", "wide")
    assert result.exit_code == 0
    assert "REASONS" in result.output and "allows egress at source" in result.output


def test_unknown_namespace_or_name_is_not_found():
    nosuch = run("matrix", "-f", SEED, "-n", "nosuchns")
    assert nosuch.exit_code == 2 and "nosuchns" in nosuch.output
    other = run("explain", "-n", "other", "podclient", "db:5432", "-f", SEED)
    assert other.exit_code == 2 and "not found" in other.output
    assert run("explain", "-n", "default", "podclient", "db:5432", "-f", SEED).exit_code == 0


def test_trace_without_a_database_could_not_check(tmp_path):
    result = run("explain", "vm-server", "db:5432", "-f", SEED, "--trace", "--nb", f"unix:{tmp_path}/nb.sock",
                 "--sb", f"unix:{tmp_path}/sb.sock")
    assert result.exit_code == 3 and "unknown" in result.output


def test_every_command_that_reports_has_examples_in_its_help():
    for command in ("matrix", "explain", "probe", "verify", "drift"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output and "segcheck " + command in result.output


def test_shell_completion_offers_the_workloads_and_endpoints_of_the_given_manifests():
    import os
    import subprocess

    env = dict(os.environ, COMP_WORDS=f"segcheck explain -f {SEED} vm", COMP_CWORD="4",
               _SEGCHECK_COMPLETE="bash_complete")
    done = subprocess.run(["segcheck"], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["plain,vm-server"]
    env.update(COMP_WORDS=f"segcheck probe vm-server -f {SEED} ", COMP_CWORD="5")
    offered = {line.split(",", 1)[1] for line in subprocess.run(
        ["segcheck"], env=env, capture_output=True, text=True, timeout=60).stdout.split()}
    assert {"db", "podclient", "default/podclient", "vm-server"} <= offered
