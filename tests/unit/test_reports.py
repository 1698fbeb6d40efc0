"""`-o junit|sarif|html|markdown`: every format parsed back with a real parser and checked for its content.

JUnit against the Jenkins xUnit JUnit XSD, SARIF against the OASIS SARIF 2.1.0 schema (both vendored in
tests/schemas/), HTML and the SVG grid with the standard library's XML and HTML parsers."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
import xmlschema
import yaml
from click.testing import CliRunner

from segcheck.agent.adapters.manifest_locations import locate
from segcheck.agent.core.drift import CheckedCell, classify
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.findings import Finding, FindingKind, Severity
from segcheck.agent.core.model import ExternalEndpoint, Judgement, PortRange, Protocol, Reason, Ref, Verdict, parse_ip
from segcheck.agent.core.reachability import NetworkReachability
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.runtime.checker import CheckReport
from segcheck.agent.core.sources import Trace
from segcheck.agent.runtime.checks import MatrixReport, VerifyReport, explain, read_manifests
from segcheck.agent.runtime.status import FailOn
from segcheck.cli.main import cli
from segcheck.cli.report_views import explain_report, matrix_report, verify_report
from tests.builders import inventory, mnp, nad, pod

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
JUNIT = xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))
SARIF = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
SEED = packaged_seed()
BLUE = Ref("default", "tenantblue")
EVIL = 'x<script>alert("1")</script>&amp;|`*'


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def parse_junit(text: str) -> ET.Element:
    JUNIT.validate(text)  # raises on any violation of the schema
    return ET.fromstring(text.encode())


def parse_sarif(text: str) -> dict:
    log = json.loads(text)
    jsonschema.Draft4Validator(SARIF).validate(log)
    return log


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.cells: list[str] = []
        self.text: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_cell = tag == "td"
        if self._in_cell:
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_cell:
            self.cells[-1] += data


def parse_html(text: str) -> _Collect:
    ET.fromstring(text.split("\n", 1)[1])  # well-formed past the doctype: every tag closed, every text escaped
    parser = _Collect()
    parser.feed(text)
    return parser


# --------------------------------------------------------------------------- a world written to files

def write_world(folder: Path, *, untyped: bool = False) -> Path:
    """The seed plus, optionally, a policy without policyTypes (a warning finding) in its own file."""
    shutil.copytree(SEED, folder)
    if untyped:
        (folder / "60-untyped.yaml").write_text("# a comment line first\n" + yaml.safe_dump(
            mnp("untyped", {"podSelector": {}}, policy_for="default/tenantblue")))
    return folder


def test_matrix_junit_has_a_case_per_cell_and_a_failure_per_failing_finding(tmp_path):
    state = write_world(tmp_path / "s", untyped=True)
    result = run("matrix", "-f", state, "-o", "junit")
    assert result.exit_code == 1
    root = parse_junit(result.output)
    cases = root.findall("./testsuite/testcase")
    inv, errors = read_manifests([str(state)])
    assert not errors
    cells = list(NetworkReachability(inv, BLUE, profile=PROFILES["4.14"]).cells())
    cell_cases = [c for c in cases if not c.get("name").startswith("finding")]
    assert len(cell_cases) == len(cells) > 0
    assert {c.get("name") for c in cell_cases} >= {"default/vm-server -> ext:db 5432/TCP"}
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["finding no-policy-types default/untyped"]
    assert root.get("failures") == "1" and root.find("testsuite").get("tests") == str(len(cases))
    # below --fail-on the finding is reported but does not fail
    relaxed = parse_junit(run("matrix", "-f", state, "-o", "junit", "--fail-on", "error").output)
    assert relaxed.get("failures") == "0"


def test_matrix_sarif_points_at_the_file_and_line_of_the_policy(tmp_path):
    state = write_world(tmp_path / "s", untyped=True)
    log = parse_sarif(run("matrix", "-f", state, "-o", "sarif").output)
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "no-policy-types" and result["level"] == "warning"
    where = result["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"] == str(state / "60-untyped.yaml")
    assert where["region"]["startLine"] == 2  # the object starts below the comment
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "default/untyped"
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["id"] == "no-policy-types"


def test_locations_name_each_rule_inside_lists_and_json(tmp_path):
    listing = {"apiVersion": "v1", "kind": "List", "items": [
        nad(), mnp("two", {"podSelector": {}, "policyTypes": ["Egress"],
                           "egress": [{"ports": [{"protocol": "TCP", "port": 1}]},
                                      {"ports": [{"protocol": "TCP", "port": 2}]}]})]}
    (tmp_path / "list.json").write_text(json.dumps(listing, indent=2))
    locs = locate([tmp_path])
    first, second = locs.rules["default/two:egress[0]"], locs.rules["default/two:egress[1]"]
    lines = (tmp_path / "list.json").read_text().splitlines()
    assert first.file.endswith("list.json") and first.line < second.line
    assert '"port": 1' in "".join(lines[first.line - 1:second.line - 1])
    assert locs.reason("default/two:egress") == locs.policy(Ref("default", "two"))
    assert locs.network(BLUE) is not None and locs.reason("source:egress-not-isolated") is None


# --------------------------------------------------------------------------- verify: drift as failures

def checked(dst: str, port: int, expected: Verdict, programmed: Verdict, observed: Verdict | None) -> CheckedCell:
    exp = Judgement(expected, (Reason("default/allow-db-egress:egress[0]" if expected is Verdict.ALLOWED
                                      else "default/default-deny:egress"),))
    prog = Judgement(programmed, (Reason("acl/1234abcd"),))
    obs = None if observed is None else Judgement(observed, (Reason("probe/syn-ack"),))
    return CheckedCell(str(BLUE), "default/podclient", dst, Protocol.TCP, PortRange(Protocol.TCP, port, port), port,
                       exp, prog, obs, classify(exp, prog, obs))


def verify_world() -> VerifyReport:
    cells = [checked("ext:db", 5432, Verdict.ALLOWED, Verdict.ALLOWED, Verdict.ALLOWED),  # match
             checked("ext:db", 22, Verdict.DENIED, Verdict.ALLOWED, Verdict.ALLOWED),  # leak + controller drift
             checked("default/vm-server", 8080, Verdict.DENIED, Verdict.DENIED, Verdict.UNKNOWN)]  # no evidence
    finding = Finding(FindingKind.NAMED_PORT, "named port", Ref("default", "allow-db-egress"), BLUE, Severity.ERROR)
    return VerifyReport([CheckReport(BLUE, cells, [finding], errors=["OVS database not readable"])])


def test_verify_junit_fails_drift_skips_no_evidence_and_errors_on_sources():
    root = parse_junit(verify_report("junit", verify_world(), FailOn.ERROR, locate([SEED])))
    by_name = {c.get("name"): c for c in root.iter("testcase")}
    leak = by_name["default/podclient -> ext:db 22/TCP"]
    assert "leak" in leak.find("failure").get("message") and "acl/1234abcd" in leak.find("failure").text
    assert by_name["default/podclient -> ext:db 5432/TCP"].find("failure") is None
    assert by_name["default/podclient -> default/vm-server 8080/TCP"].find("skipped") is not None
    assert by_name["source 1"].find("error").get("message") == "OVS database not readable"
    assert by_name["finding named-port default/allow-db-egress on default/tenantblue"].find("failure") is not None
    suite = root.find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("2", "1", "1")


def test_verify_sarif_locates_drift_at_the_rule_that_expects_it():
    log = parse_sarif(verify_report("sarif", verify_world(), FailOn.ERROR, locate([SEED])))
    results = log["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == ["drift-controller", "drift-leak", "named-port"]
    leak = next(r for r in results if r["ruleId"] == "drift-leak")
    where = leak["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"].endswith("50-policies.yaml")
    text = Path(where["artifactLocation"]["uri"]).read_text().splitlines()
    assert "name: default-deny" in "\n".join(text[where["region"]["startLine"] - 1:where["region"]["startLine"] + 3])


def test_verify_html_lists_every_check_point_and_draws_the_grid():
    page = parse_html(verify_report("html", verify_world(), FailOn.ERROR, locate([SEED])))
    assert {"svg", "table", "section"} <= set(page.tags)
    assert "leak,controller" in page.cells and "unknown" in page.cells
    assert "OVS database not readable" in "".join(page.text)


# --------------------------------------------------------------------------- escaping

def evil_matrix() -> list[MatrixReport]:
    inv = inventory(nad(), pod("client", "192.168.200.10"))
    host = ExternalEndpoint(EVIL, (parse_ip("192.168.200.7"),), BLUE)
    finding = Finding(FindingKind.SELECTS_NOTHING, f"message {EVIL}", Ref("default", EVIL), BLUE)
    return [MatrixReport(NetworkReachability(inv, BLUE, extra=[host]), [finding])]


@pytest.mark.parametrize("fmt", ["html", "markdown"])
def test_names_from_manifests_are_escaped_everywhere(fmt):
    text = matrix_report(fmt, evil_matrix(), FailOn.WARNING, locate([]))
    assert "<script" not in text
    svg = text[text.index("<svg"):text.index("</svg>") + len("</svg>")]
    picture = ET.fromstring(svg)  # the inline picture is well-formed XML
    labels = "".join(picture.itertext())
    assert f"ext:{EVIL}" in labels  # ... and says the name as it is
    rects = [e for e in picture.iter() if e.tag.endswith("rect")]
    assert len(rects) == 2 * 2 + 3  # a cell per pair, a swatch per legend entry
    if fmt == "html":
        page = parse_html(text)
        assert f"message {EVIL}" in page.cells
    else:
        finding_row = next(line for line in text.splitlines() if "selects-nothing" in line)
        assert finding_row.count("|") == 6  # five columns: no pipe of the message leaked into the table


def test_junit_and_sarif_carry_hostile_text_intact():
    root = parse_junit(matrix_report("junit", evil_matrix(), FailOn.WARNING, locate([])))
    assert any(EVIL in (c.get("name") or "") for c in root.iter("testcase"))
    log = parse_sarif(matrix_report("sarif", evil_matrix(), FailOn.WARNING, locate([])))
    assert log["runs"][0]["results"][0]["message"]["text"] == f"message {EVIL}"


# --------------------------------------------------------------------------- diff

def head_opening_ssh(tmp_path: Path) -> Path:
    head = tmp_path / "head"
    shutil.copytree(SEED, head)
    policies = head / "50-policies.yaml"
    policies.write_text(policies.read_text().replace("      port: 5432\n", "      port: 5432\n    - protocol: TCP\n      port: 22\n"))
    return head


def test_diff_junit_fails_each_opened_cell(tmp_path):
    head = head_opening_ssh(tmp_path)
    result = run("diff", SEED, head, "-o", "junit")
    assert result.exit_code == 1
    root = parse_junit(result.output)
    failed = sorted(c.get("name") for c in root.iter("testcase") if c.find("failure") is not None)
    assert failed == ["opened default/podclient -> ext:db 22/TCP", "opened default/vm-server -> ext:db 22/TCP"]
    never = parse_junit(run("diff", SEED, head, "-o", "junit", "--fail-on", "never").output)
    assert never.get("failures") == "0"


def test_diff_sarif_locates_opened_cells_at_the_head_rule(tmp_path):
    head = head_opening_ssh(tmp_path)
    log = parse_sarif(run("diff", SEED, head, "-o", "sarif").output)
    opened = [r for r in log["runs"][0]["results"] if r["ruleId"] == "cell-opened"]
    assert len(opened) == 2 and all(r["level"] == "error" for r in opened)
    where = opened[0]["locations"][0]["physicalLocation"]
    lines = (head / "50-policies.yaml").read_text().splitlines()
    assert where["artifactLocation"]["uri"] == str(head / "50-policies.yaml")
    assert lines[where["region"]["startLine"] - 1].strip() == "- to:"  # egress[0] of allow-db-egress


def test_diff_markdown_and_html_show_the_opened_cells_with_their_rule(tmp_path):
    head = head_opening_ssh(tmp_path)
    md = run("diff", SEED, head, "-o", "markdown").output
    assert md.startswith("## segcheck diff: 2 opened, 0 closed, 0 unknown")
    row = next(line for line in md.splitlines() if "22/TCP" in line)
    assert "allowed: default/allow-db-egress:egress\\[0\\]" in row and "50-policies.yaml:27" in row
    assert "<svg" not in md  # review hosts strip it
    page = parse_html(run("diff", SEED, head, "-o", "html").output)
    assert "22/TCP" in page.cells and "svg" in page.tags


def test_explain_reports_keep_the_trace_verbatim_and_inert():
    inv, errors = read_manifests([str(SEED)])
    assert not errors
    report = explain(inv, "vm-server", "db:5432", PROFILES["4.14"])
    report.trace = Trace("delivered", "ingress(dp=\"x\")\n```\n<b>not bold</b>\n  next;")
    md = explain_report("markdown", report, FailOn.WARNING, locate([SEED]))
    fence = next(line for line in md.splitlines() if line.startswith("```"))
    assert len(fence) == 4  # longer than any run of backticks inside
    assert f"{fence}\ningress(dp=\"x\")\n```\n<b>not bold</b>\n  next;\n{fence}" in md
    assert "50-policies.yaml:27" in md
    page = parse_html(explain_report("html", report, FailOn.WARNING, locate([SEED])))
    assert "pre" in page.tags and "b" not in page.tags
    assert "<b>not bold</b>" in "".join(page.text)
    root = parse_junit(explain_report("junit", report, FailOn.WARNING, locate([SEED])))
    assert [c.get("name") for c in root.iter("testcase")] == ["default/vm-server -> ext:db 5432/TCP",
                                                             "default/vm-server -> ext:db ovn-trace"]


def test_sarif_uris_are_uri_references_even_for_odd_file_names(tmp_path):
    state = write_world(tmp_path / "s")
    (state / "60 odd#name.yaml").write_text(yaml.safe_dump(mnp("untyped", {"podSelector": {}})))
    log = parse_sarif(run("matrix", "-f", state, "-o", "sarif").output)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("/60%20odd%23name.yaml") and " " not in uri


def test_a_grid_too_large_to_read_is_not_drawn():
    from segcheck.cli.reports import GRID_MAX_ENDPOINTS, Document, Section, html_page
    from segcheck.cli.svg_grid import Grid

    n = GRID_MAX_ENDPOINTS + 1
    big = Grid([f"e{i}" for i in range(n)], [[""] * n for _ in range(n)], {})
    page = parse_html(html_page(Document("t", [], [Section("s", [], big)])))
    assert "svg" not in page.tags and f"{n} endpoints" in "".join(page.text)


def test_commands_without_a_typed_report_refuse_report_formats_plainly():
    for args in (("probe", "vm-server", "db:5432", "-f", SEED, "-o", "junit"),
                 ("drift", "--agent", "http://127.0.0.1:9", "-o", "sarif"),
                 ("verify", "--cluster", "--agent", "http://127.0.0.1:9", "-o", "html")):
        result = run(*args)
        assert result.exit_code == 2 and "json or yaml" in result.output, result.output


def test_findings_of_no_network_are_reported_once_in_every_format(tmp_path):
    state = write_world(tmp_path / "s")
    (state / "70-elsewhere.yaml").write_text(yaml.safe_dump(
        mnp("elsewhere", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="other", policy_for="nosuch")))
    log = parse_sarif(run("matrix", "-f", state, "-o", "sarif").stdout)  # (stderr names it too)
    hits = [r for r in log["runs"][0]["results"] if r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
            == "other/elsewhere"]
    assert len(hits) == 1 and hits[0]["ruleId"] == "policy-for-unknown-network"
    assert hits[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("70-elsewhere.yaml")
    root = parse_junit(run("matrix", "-f", state, "-o", "junit").stdout)
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "matrix no network")
    assert [c.find("failure") is not None for c in suite.iter("testcase")] == [True]
