"""The CI report formats on the real lab: `verify -o junit` of the seed passes case by case; a deleted allow ACL
is a failing JUnit case and a SARIF result at the policy rule that expects the traffic."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.seed import packaged_seed

from .planes import NET, owned_acl, seeded

pytestmark = pytest.mark.lab
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.fixture(scope="module")
def seed_lab(lab):
    with seeded(lab) as (_, inventory):
        yield lab, inventory


def segcheck(lab, *args: str) -> subprocess.CompletedProcess[str]:
    where = ["--lab", "--state-dir", str(lab.state_dir), "--prefix", lab.prefix, "-f", str(packaged_seed())]
    return subprocess.run([sys.executable, "-m", "segcheck.cli", *args, *where], capture_output=True, text=True,
                          timeout=180)


def test_verify_junit_of_the_seed_passes_every_check_point(seed_lab):
    lab, _ = seed_lab
    done = segcheck(lab, "verify", "-o", "junit")
    assert done.returncode == 0, done.stdout + done.stderr
    xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd")).validate(done.stdout)
    root = ET.fromstring(done.stdout.encode())
    cases = list(root.iter("testcase"))
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert any(c.get("name") == "default/vm-server -> ext:db 5432/TCP" for c in cases)
    db = next(c for c in cases if c.get("name") == "default/vm-server -> ext:db 5432/TCP")
    assert "observed allowed" in db.find("system-out").text


def test_a_deleted_allow_acl_fails_in_junit_and_points_at_its_rule_in_sarif(seed_lab):
    lab, inventory = seed_lab
    pg, _, uuid = owned_acl(lab, "allow-db-egress", "Egress")
    lab.run_nbctl("remove", "Port_Group", pg, "acls", uuid)
    try:
        lab.sync_hv()
        junit = segcheck(lab, "drift", "-o", "junit")
        sarif = segcheck(lab, "drift", "-o", "sarif")
    finally:
        LabController(lab).apply(inventory, NET)
    assert junit.returncode == 1, junit.stderr
    failed = {c.get("name") for c in ET.fromstring(junit.stdout.encode()).iter("testcase") if c.find("failure") is not None}
    assert {"default/podclient -> ext:db 5432/TCP", "default/vm-server -> ext:db 5432/TCP"} <= failed
    log = json.loads(sarif.stdout)
    jsonschema.Draft4Validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())).validate(log)
    blackholes = [r for r in log["runs"][0]["results"] if r["ruleId"] == "drift-blackhole"]
    assert len(blackholes) == 2
    where = blackholes[0]["locations"][0]["physicalLocation"]
    policies = Path(where["artifactLocation"]["uri"])
    assert policies.name == "50-policies.yaml"
    assert policies.read_text().splitlines()[where["region"]["startLine"] - 1].strip() == "- to:"  # egress[0]
