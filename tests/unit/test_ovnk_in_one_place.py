"""OVN-Kubernetes' names, keys and hashes are spelled in `agent/core/ovnk/` only, so the programmed-plane
reader and the lab's writer cannot drift apart (issue 9)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OVNK = ROOT / "agent" / "core" / "ovnk"
# What only the ovnk package may spell: external_ids keys, owner types, name suffixes and hash constants.
FORBIDDEN = [
    r"k8s\.ovn\.org/", r"DefaultDeny", r"owner-controller", r"owner-type", r"gress-index", r"ip-block-index",
    r"port-policy-(protocol|index)", r"-network-controller", r"ovn_(localnet|layer2)_(switch|port)",
    r"NetpolNamespace", r"\"NetworkPolicy\"", r"\"PodSelector\"", r"0xCBF29CE484222325", r"0x100000001B3",
    r"patch-br-int-to-", r"-to-br-int",
    r"f\"\{[a-z_.]*namespace\}:\{[a-z_.]*name\}\"",  # the policy key ns:name
    r"_ip[46]\"",  # OVN's per-port-group address sets, resolved in ovn_match only
]


def sources():
    for folder in ("agent", "cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path


def literals(path: Path):
    """(line, source) of every string literal and f-string in the code, docstrings and comments left out:
    prose may name a key, code may not spell one."""
    text = path.read_text()
    tree = ast.parse(text)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in ast.walk(n) if v is not n}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, (str, int))
                                               and id(node) not in docstrings and id(node) not in inner):
            yield node.lineno, ast.get_source_segment(text, node) or ""


# Spelled like an OVN-K literal but meaning something else: the Kubernetes kind NetworkPolicy, named once.
HOMONYMS = {(ROOT / "agent" / "core" / "consistency.py", r"\"NetworkPolicy\"")}


def test_ovnk_literals_live_in_the_ovnk_package_only():
    allowed_ip_sets = ROOT / "agent" / "core" / "ovn_match.py"
    bad = []
    for path in sources():
        if OVNK in path.parents:
            continue
        for lineno, line in literals(path):
            for pattern in FORBIDDEN:
                if pattern == r"_ip[46]\"" and path == allowed_ip_sets or (path, pattern) in HOMONYMS:
                    continue
                if re.search(pattern, line, re.IGNORECASE if "0x" in pattern else 0):
                    bad.append(f"{path.relative_to(ROOT)}:{lineno}: {pattern}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_the_scan_sees_what_it_forbids():
    """The patterns do catch the package's own spelling (a typo in a pattern must not silently pass)."""
    text = "\n".join(p.read_text() for p in OVNK.glob("*.py"))
    missing = [p for p in FORBIDDEN if p != r"_ip[46]\"" and not re.search(p, text, re.IGNORECASE if "0x" in p else 0)
               and "namespace" not in p]
    assert not missing, missing
