"""Where each policy, each of its rules, and each network was written: file and line, for reports that point
into the manifests (SARIF results, review comments). Read apart from the inventory (the YAML is composed, not
constructed, so only the reports that cite lines pay for it); a file that does not parse has no locations here,
its errors are reported by the inventory's reading."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import yaml

from .manifest_files import expand_paths

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
POLICY_KIND = "MultiNetworkPolicy"
NETWORK_KIND = "NetworkAttachmentDefinition"
LOCATED_KINDS = (POLICY_KIND, NETWORK_KIND)
DIRECTIONS = ("ingress", "egress")


@dataclass(frozen=True)
class Location:
    file: str  # as reached from the paths given (relative paths stay relative)
    line: int  # 1-based


@dataclass
class ManifestLocations:
    objects: dict[tuple[str, str], Location] = field(default_factory=dict)  # (kind, "ns/name")
    rules: dict[str, Location] = field(default_factory=dict)  # "ns/policy:egress[0]"

    def policy(self, ref: object) -> Location | None:
        return self.objects.get((POLICY_KIND, str(ref)))

    def network(self, ref: object) -> Location | None:
        return self.objects.get((NETWORK_KIND, str(ref)))

    def reason(self, ref: str) -> Location | None:
        """A verdict's reason: the rule it names (`ns/p:egress[0]`), else the policy (`ns/p:egress`)."""
        return self.rules.get(ref) or self.policy(ref.rpartition(":")[0] if ":" in ref else ref)


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _text(node: yaml.Node | None) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _record(node: yaml.Node, file: str, out: ManifestLocations) -> None:
    kind = _text(_get(node, "kind"))
    items = _get(node, "items")
    if kind is not None and kind.endswith("List") and isinstance(items, yaml.SequenceNode):
        for item in items.value:
            _record(item, file, out)
        return
    meta = _get(node, "metadata")
    name = _text(_get(meta, "name"))
    if kind not in LOCATED_KINDS or name is None:
        return
    ref = f"{_text(_get(meta, 'namespace')) or 'default'}/{name}"
    out.objects.setdefault((kind, ref), Location(file, _line(node)))
    if kind == POLICY_KIND:
        for direction in DIRECTIONS:
            rules = _get(_get(node, "spec"), direction)
            if isinstance(rules, yaml.SequenceNode):
                for i, rule in enumerate(rules.value):
                    out.rules.setdefault(f"{ref}:{direction}[{i}]", Location(file, _line(rule)))


def locate(paths: Iterable[str]) -> ManifestLocations:
    """The locations of the policies, rules and networks in these files and folders (JSON parses as YAML)."""
    out = ManifestLocations()
    files, _ = expand_paths(paths)
    for path in files:
        try:
            docs = list(yaml.compose_all(path.read_text(encoding="utf-8"), Loader=_Loader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        for doc in docs:
            if doc is not None:
                _record(doc, str(path), out)
    return out
