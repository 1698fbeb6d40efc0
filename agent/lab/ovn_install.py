"""Locating or provisioning an OVN with ACL tiers for the lab.

OVN-K writes every policy ACL in tier 2 (OpenShift 4.14 ships OVN 23.09); bookworm's OVN 23.03 has no
`tier` column. When the system's OVN lacks it, Debian trixie's OVN (25.03) is unpacked into the same private
prefix as OVS (`ovs_install`) and run through that prefix's loader: it links the prefix's Open vSwitch
library and needs nothing else. Without the Debian archive the system's OVN is used and the lab says it
has no tiers.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabUnavailable
from .ovs_install import DEFAULT_CACHE_DIR, OvsInstall, add_to_prefix, prefix_install, provision

log = logging.getLogger(__name__)

SYSTEM_SCHEMA_DIR = Path("/usr/share/ovn")
PREFIX_SCHEMA_DIR = "usr/share/ovn"
TOOLS = {  # tool -> (path inside a Debian OVN package tree, the package)
    "ovn-northd": ("usr/bin/ovn-northd", "ovn-central"),
    "ovn-controller": ("usr/bin/ovn-controller", "ovn-host"),
    "ovn-nbctl": ("usr/bin/ovn-nbctl", "ovn-common"),
    "ovn-sbctl": ("usr/bin/ovn-sbctl", "ovn-common"),
    "ovn-trace": ("usr/bin/ovn-trace", "ovn-common"),
}
TRIXIE_PACKAGES = ("ovn-common", "ovn-central", "ovn-host")


def schema_has_tiers(schema_dir: Path) -> bool:
    """Does this NB schema have ACL.tier (OVN 23.06 and later)?"""
    try:
        schema = json.loads((schema_dir / "ovn-nb.ovsschema").read_text())
    except (OSError, ValueError):
        return False
    return "tier" in schema.get("tables", {}).get("ACL", {}).get("columns", {})


@dataclass(frozen=True)
class OvnInstall:
    """How to run each OVN binary: directly (system) or through the OVS prefix's loader."""

    binaries: dict[str, Path]
    schema_dir: Path
    runner: OvsInstall | None = None  # the prefix whose loader runs the binaries (None: system OVN)
    launchers: dict[str, Path] = field(default_factory=dict)

    @property
    def tiers(self) -> bool:
        return schema_has_tiers(self.schema_dir)

    @property
    def source(self) -> str:
        return f"private prefix {self.runner.prefix}" if self.runner is not None else "system"

    def argv(self, tool: str, *args: str) -> list[str]:
        if self.runner is None:
            return [str(self.binaries[tool]), *args]
        return self.runner.loader_argv(tool, self.binaries[tool], self.launchers[tool], *args)


def system_ovn() -> OvnInstall | None:
    binaries = {}
    for tool in TOOLS:
        found = shutil.which(tool, path="/usr/bin:/usr/sbin:/usr/local/bin")
        if found is None:
            return None
        binaries[tool] = Path(found)
    return OvnInstall(binaries, SYSTEM_SCHEMA_DIR)


def _in_prefix(prefix: OvsInstall) -> OvnInstall | None:
    assert prefix.prefix is not None
    root = prefix.prefix.parent
    found = OvnInstall({t: prefix.prefix / rel for t, (rel, _) in TOOLS.items()}, prefix.prefix / PREFIX_SCHEMA_DIR,
                       prefix, {t: root / "bin" / t for t in TOOLS})
    ready = all(p.exists() for p in [*found.binaries.values(), *found.launchers.values()])
    return found if ready and found.tiers else None


def locate_or_provision(ovs: OvsInstall, cache_dir: Path = DEFAULT_CACHE_DIR, *,
                        allow_download: bool = True) -> OvnInstall:
    """The system's OVN if it has ACL tiers, else trixie's in the OVS prefix (provisioned on first use), else
    (no archive) the system's without tiers."""
    system = system_ovn()
    if system is not None and system.tiers:
        return system
    prefix = ovs if ovs.prefix is not None else prefix_install(cache_dir)
    if prefix is not None and (found := _in_prefix(prefix)) is not None:
        return found
    try:
        if not allow_download:
            raise LabUnavailable(f"no OVN with ACL tiers in {cache_dir}")
        prefix = prefix if prefix is not None else provision(cache_dir)
        assert prefix.prefix is not None
        add_to_prefix(prefix.prefix.parent, TRIXIE_PACKAGES, TOOLS)
        found = _in_prefix(prefix)
        if found is None:
            raise LabUnavailable(f"trixie's OVN unpacked into {prefix.prefix} has no usable binaries or no ACL tiers")
        return found
    except LabUnavailable as exc:
        if system is None:
            raise LabUnavailable(f"no OVN: apt-get install ovn-central ovn-host ({exc})") from None
        log.warning("using the system's OVN without ACL tiers: %s", exc)
        return system
