"""`segcheck diff` on the command line: both ways of naming the states, JSON records, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from segcheck.agent.lab.seed import packaged_seed
from segcheck.cli.main import cli
from tests.unit.test_cli_cluster import cluster  # noqa: F401 - the fake API server fixture

SEED = packaged_seed()


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def head_with(tmp_path: Path, old: str, new: str) -> Path:
    head = tmp_path / "head"
    shutil.copytree(SEED, head)
    policies = head / "50-policies.yaml"
    text = policies.read_text()
    assert old in text
    policies.write_text(text.replace(old, new))
    return head


OPEN_SSH = ("      port: 5432\n", "      port: 5432\n    - protocol: TCP\n      port: 22\n")


def test_an_opening_change_exits_1_and_names_the_rule(tmp_path):
    head = head_with(tmp_path, *OPEN_SSH)
    result = run("diff", SEED, head, "-o", "json")
    assert result.exit_code == 1, result.output
    record = json.loads(result.output)
    opened = [c for c in record["changes"] if c["change"] == "opened"]
    assert {(c["from"], c["to"], c["port"], c["protocol"]) for c in opened} == {
        ("default/podclient", "ext:db", 22, "TCP"), ("default/vm-server", "ext:db", 22, "TCP")}
    assert all(c["after"]["because"] == ["default/allow-db-egress:egress[0]"] and c["before"]["expected"] == "denied"
               for c in opened)
    assert record["counts"]["opened"] == 2 and record["counts"]["unchanged"] > 0
    assert run("diff", SEED, head, "--fail-on", "never").exit_code == 0


def test_the_same_change_with_base_and_f_options(tmp_path):
    head = head_with(tmp_path, *OPEN_SSH)
    result = run("diff", "--base", SEED, "-f", head)
    assert result.exit_code == 1
    assert "opened" in result.output and "22/TCP" in result.output


def test_a_closing_change_passes_unless_fail_on_changed(tmp_path):
    head = head_with(tmp_path, "cidr: 192.168.200.5/32", "cidr: 192.168.200.99/32")  # a host nobody is
    assert run("diff", SEED, head).exit_code == 0
    result = run("diff", SEED, head, "--fail-on", "changed", "-o", "json")
    assert result.exit_code == 1
    moved = {(c["change"], c["from"], c["port"]) for c in json.loads(result.output)["changes"]
             if c["change"] != "reattributed"}
    assert moved == {("closed", "default/podclient", 5432), ("closed", "default/vm-server", 5432)}


def test_no_change_exits_0_and_lists_nothing():
    result = run("diff", SEED, SEED, "-o", "json")
    assert result.exit_code == 0
    assert json.loads(result.output)["changes"] == []


def test_bad_input_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    assert run("diff", SEED, bad).exit_code == 2
    assert run("diff", SEED).exit_code == 2
    assert run("diff", SEED, SEED, "--base", SEED).exit_code == 2
    assert run("diff", SEED, SEED, "--network", "default/nosuch").exit_code == 2
    assert run("diff", SEED, tmp_path / "missing").exit_code == 2


def test_files_against_the_live_cluster(tmp_path, cluster):  # the fake API server holding the seed
    live = ("--kubeconfig", str(cluster), "--endpoints", str(SEED / "40-endpoints.yaml"))
    same = run("diff", "-f", SEED, *live, "-o", "json")
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["changes"] == []
    opening = run("diff", "-f", head_with(tmp_path, *OPEN_SSH), *live, "-o", "json")
    assert opening.exit_code == 1, opening.output
    assert {(c["from"], c["port"]) for c in json.loads(opening.output)["changes"] if c["change"] == "opened"} == {
        ("default/podclient", 22), ("default/vm-server", 22)}
    assert run("diff", *live).exit_code == 2  # both sides live: nothing to compare
