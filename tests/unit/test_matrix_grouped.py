"""`segcheck matrix` grouped by equivalence classes: it says exactly what the per-pair form says, each member is
listed once, and the table switches to classes above 40 endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from segcheck.cli.main import cli
from tests.worlds import write_world


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def expand(doc: dict) -> dict[tuple[str, str], list[dict]]:
    """Every pair's cells as the grouped form states them."""
    members = {c["id"]: c["members"] for c in doc["classes"]}
    verdicts = {v["id"]: v["cells"] for v in doc["verdicts"]}
    out: dict[tuple[str, str], list[dict]] = {}
    for row in doc["matrix"]:
        for to, vid in row["to"]:
            for s in members[row["from"]]:
                for d in members[to]:
                    if s != d and not (s.startswith("ext:") and d.startswith("ext:")):
                        out[(s, d)] = verdicts[vid]
    return out


@pytest.fixture(scope="module", params=["replicas", "scattered"])
def world(request, tmp_path_factory) -> Path:
    return write_world(tmp_path_factory.mktemp(request.param), 120, 24, seed=3, shape=request.param)


@pytest.fixture(scope="module")
def dual_world(tmp_path_factory) -> Path:
    return write_world(tmp_path_factory.mktemp("dual"), 120, 24, seed=3, shape="dual")


def test_grouped_json_states_every_pair_exactly_as_the_per_pair_form_on_a_dual_stack_network(dual_world):
    test_grouped_json_states_every_pair_exactly_as_the_per_pair_form(dual_world)
    doc = json.loads(run("matrix", "-f", str(dual_world), "-o", "json").output)
    families = {c.get("family") for v in doc["verdicts"] for c in v["cells"]}
    assert families == {"ipv4", "ipv6"}


def test_grouped_json_states_every_pair_exactly_as_the_per_pair_form(world):
    grouped, pairs = run("matrix", "-f", str(world), "-o", "json"), run("matrix", "-f", str(world), "-o", "json", "--pairs")
    assert grouped.exit_code == pairs.exit_code, grouped.output[-500:]
    doc, flat = json.loads(grouped.output), json.loads(pairs.output)
    assert doc["form"] == "grouped" and flat["form"] == "pairs"
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for c in flat["cells"]:
        by_pair.setdefault((c.pop("from"), c.pop("to")), []).append(c)
    assert expand(doc) == by_pair
    members = [m for c in doc["classes"] for m in c["members"]]
    assert len(members) == len(set(members)) == 121  # 120 pods and the DB, each listed once
    assert len(doc["classes"]) < len(members)
    assert doc["findings"] == flat["findings"]


def test_table_shows_classes_above_40_endpoints_and_pairs_on_request(world):
    grouped = run("matrix", "-f", str(world))
    assert "endpoints in" in grouped.output and "classes (same policies, same verdicts)" in grouped.output
    assert "CLASS" in grouped.output and "SELECTED BY" in grouped.output
    pairs = run("matrix", "-f", str(world), "--pairs")
    assert "ns0/w0" in pairs.output and "CLASS" not in pairs.output
    rows = [line for line in pairs.output.splitlines() if line.startswith("ns0/w0 ")]
    assert len(rows) >= 120  # one row (at least) per destination of ns0/w0


def test_yaml_is_the_grouped_document(world):
    result = run("matrix", "-f", str(world), "-o", "yaml")
    assert "form: grouped" in result.output and "classes:" in result.output
