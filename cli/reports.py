"""Report formats for CI systems and people, written from a neutral model the commands fill (see report_views):

- `markdown` and `html`: a document of sections (summary lines, the grid as an inline SVG picture, tables);
- `junit`: test suites of test cases (failures, errors, skips), the JUnit XML CI systems read;
- `sarif`: SARIF 2.1.0 results (findings, drift, opened cells), with file and line where the state came from files.

Pure rendering: every text is escaped for the format it lands in (names and messages come from manifests)."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable
from urllib.parse import quote
from xml.etree import ElementTree as ET

from segcheck.agent.adapters.manifest_locations import Location

from .svg_grid import Grid, svg

REPORT_FORMATS = ("markdown", "html", "junit", "sarif")
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_VERSION = "2.1.0"
NONE = "none"  # an empty table says so rather than printing headers alone
GRID_MAX_ENDPOINTS = 150  # past this a picture of n x n cells is no longer read (nor small): the tables remain
MARKDOWN_MAX_ROWS = 200  # per table: a review comment stays readable (and under hosting limits); JSON has all


def tool_version() -> str:
    try:
        return version("segcheck")
    except PackageNotFoundError:
        return "0"


# ----------------------------------------------------------------------------- the neutral model

@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    title: str = ""


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    grid: Grid | None = None
    tables: list[Table] = field(default_factory=list)
    code: str = ""  # preformatted text kept as it is (an ovn-trace)


@dataclass
class Document:
    title: str
    lines: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


@dataclass
class Case:
    """One JUnit test case: passes, or carries a failure (a claim broken), an error (could not run) or a skip."""

    name: str
    failure: str | None = None
    error: str | None = None
    skipped: str | None = None
    details: str = ""


@dataclass
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)


@dataclass
class Result:
    """One SARIF result. `location` is None where the state did not come from a file (the live cluster)."""

    rule_id: str
    level: str  # error | warning | note
    message: str
    location: Location | None = None
    logical: str | None = None  # what it is about: a policy, a cell
    rule_help: str = ""


def _picture(grid: Grid, title: str, escape: Callable[[str], str]) -> str:
    if len(grid.labels) > GRID_MAX_ENDPOINTS:
        return escape(f"(grid not drawn: {len(grid.labels)} endpoints, more than {GRID_MAX_ENDPOINTS})")
    return svg(grid, title)


# ----------------------------------------------------------------------------- markdown

def _md(text: str) -> str:
    """Text for a markdown table cell or line: HTML-escaped (so no tag or entity survives), markdown's own
    punctuation backslash-escaped, and on one line."""
    out = " ".join(str(text).split())
    for ch in "\\`*_[]#~!":
        out = out.replace(ch, "\\" + ch)
    return html.escape(out, quote=False).replace("|", "&#124;")


def _md_table(t: Table) -> list[str]:
    out = [f"**{_md(t.title)}**", ""] if t.title else []
    if not t.rows:
        return out + [NONE, ""]
    out += ["| " + " | ".join(_md(h) for h in t.headers) + " |", "|" + "---|" * len(t.headers)]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in t.rows[:MARKDOWN_MAX_ROWS]]
    if len(t.rows) > MARKDOWN_MAX_ROWS:
        out.append(f"\n… and {len(t.rows) - MARKDOWN_MAX_ROWS} more rows (`-o json` lists them all)")
    return out + [""]


def markdown(doc: Document, pictures: bool = True) -> str:
    out = [f"## {_md(doc.title)}", ""] + ([f"{_md(line)}  " for line in doc.lines] + [""] if doc.lines else [])
    for s in doc.sections:
        out += [f"### {_md(s.title)}", ""] + ([f"{_md(line)}  " for line in s.lines] + [""] if s.lines else [])
        if s.code:
            fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", s.code)), default=0))
            out += [fence, s.code, fence, ""]
        if pictures and s.grid is not None and s.grid.labels:
            out += [_picture(s.grid, s.title, _md), ""]
        for t in s.tables:
            out += _md_table(t)
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------- html

STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
         "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;font-family:monospace}th{background:#eee}")


def _h(text: str) -> str:
    return html.escape(str(text), quote=True)


def html_page(doc: Document) -> str:
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8"/>', f"<title>{_h(doc.title)}</title>",
           f"<style>{STYLE}</style></head><body>", f"<h1>{_h(doc.title)}</h1>"]
    out += [f"<p>{_h(line)}</p>" for line in doc.lines]
    for s in doc.sections:
        out.append(f'<section><h2>{_h(s.title)}</h2>')
        out += [f"<p>{_h(line)}</p>" for line in s.lines]
        if s.code:
            out.append(f"<pre>{_h(s.code)}</pre>")
        if s.grid is not None and s.grid.labels:
            out.append(f"<figure>{_picture(s.grid, s.title, _h)}</figure>")
        for t in s.tables:
            if not t.rows:
                out.append(f"<p>{_h(t.title)}: {NONE}</p>")
                continue
            out.append("<table>" + (f"<caption>{_h(t.title)}</caption>" if t.title else ""))
            out.append("<thead><tr>" + "".join(f"<th>{_h(h)}</th>" for h in t.headers) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in t.rows]
            out.append("</tbody></table>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- junit

def junit(name: str, suites: list[Suite]) -> str:
    """JUnit XML (the Ant/Surefire shape): `testsuites` > `testsuite` > `testcase` > failure/error/skipped."""
    def count(s: Suite, what: str) -> int:
        return sum(1 for c in s.cases if getattr(c, what) is not None)

    root = ET.Element("testsuites", name=name, tests=str(sum(len(s.cases) for s in suites)),
                      failures=str(sum(count(s, "failure") for s in suites)),
                      errors=str(sum(count(s, "error") for s in suites)))
    for s in suites:
        suite = ET.SubElement(root, "testsuite", name=s.name, tests=str(len(s.cases)), failures=str(count(s, "failure")),
                              errors=str(count(s, "error")), skipped=str(count(s, "skipped")))
        for c in s.cases:
            case = ET.SubElement(suite, "testcase", name=c.name, classname="segcheck." + s.name.replace(" ", "."))
            for tag in ("failure", "error", "skipped"):
                message = getattr(c, tag)
                if message is not None:
                    ET.SubElement(case, tag, message=message, type=tag).text = c.details or message
            if c.details and all(getattr(c, t) is None for t in ("failure", "error", "skipped")):
                ET.SubElement(case, "system-out").text = c.details
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# ----------------------------------------------------------------------------- sarif

def _sarif_location(r: Result) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.location is not None:
        out["physicalLocation"] = {"artifactLocation": {"uri": quote(r.location.file.replace("\\", "/"))},
                                   "region": {"startLine": r.location.line}}
    if r.logical is not None:
        out["logicalLocations"] = [{"fullyQualifiedName": r.logical}]
    return out


def sarif(results: list[Result]) -> str:
    """One SARIF 2.1.0 log with one run of segcheck; a rule per result kind (finding kind, drift class...)."""
    rule_ids = sorted({r.rule_id for r in results})
    help_of = {r.rule_id: r.rule_help for r in results}
    rules = [{"id": rid, "shortDescription": {"text": help_of[rid] or rid}} for rid in rule_ids]
    out = []
    for r in results:
        item: dict[str, Any] = {"ruleId": r.rule_id, "ruleIndex": rule_ids.index(r.rule_id), "level": r.level,
                                "message": {"text": r.message}}
        where = _sarif_location(r)
        if where:
            item["locations"] = [where]
        out.append(item)
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION,
           "runs": [{"tool": {"driver": {"name": "segcheck", "version": tool_version(), "rules": rules}},
                     "results": out}]}
    return json.dumps(log, indent=2) + "\n"
