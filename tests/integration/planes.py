"""Shared helpers for three-plane tests on the real lab: the seed applied, a checker over it, tampering tools."""

from __future__ import annotations

import contextlib
from typing import Iterator

from segcheck.agent.adapters.manifest_files import load_inventory
from segcheck.agent.adapters.probers.raw import RawSocketProber
from segcheck.agent.core.enforcement import PROFILES
from segcheck.agent.core.inventory import Inventory
from segcheck.agent.core.model import Ref
from segcheck.agent.lab.controller import LabController
from segcheck.agent.lab.lab import Lab
from segcheck.agent.lab.locator import LabLocator
from segcheck.agent.lab.seed import packaged_seed
from segcheck.agent.lab.sources import LabSources
from segcheck.agent.runtime.checker import Checker
from segcheck.agent.runtime.checks import read_programmed

NET = Ref("default", "tenantblue")


def seed_inventory() -> Inventory:
    inventory, errors = load_inventory([packaged_seed()])
    assert not errors, errors
    return inventory


def checker(lab: Lab, inventory: Inventory, prober: RawSocketProber | None = None) -> Checker:
    programmed = read_programmed(LabSources(lab))
    assert not programmed.errors, programmed.errors
    return Checker(inventory, NET, programmed.nb, programmed.ovs, prober or RawSocketProber(), LabLocator(lab),
                   PROFILES[lab.ovnk_version])


def owned_acl(lab: Lab, policy: str, direction: str) -> tuple[str, str, str]:
    """(port group, direction, uuid) of the allow ACL OVN-K-style programming made for `policy`."""
    for line in lab.run_nbctl("--bare", "--columns=_uuid,external_ids", "find", "ACL",  # same ids in every version
                              f'external_ids:"k8s.ovn.org/name"="default:{policy}"').split("\n\n"):
        parts = line.split("\n")
        if len(parts) >= 2 and f"direction={direction}" in parts[1]:
            uuid = parts[0].strip()
            pg = lab.run_nbctl("--bare", "--columns=name", "find", "Port_Group", f"acls{{>=}}{uuid}").strip()
            return pg, direction, uuid
    raise AssertionError(f"no {direction} ACL owned by default:{policy}")


@contextlib.contextmanager
def drop_flow(lab: Lab, bridge: str, flow: str) -> Iterator[None]:
    """A high-priority drop flow on an OVS bridge: the dataplane disagrees with OVN until it is removed."""
    lab.run_ofctl("add-flow", bridge, f"priority=65000,{flow},actions=drop")
    try:
        yield
    finally:
        lab.run_ofctl("--strict", "del-flows", bridge, f"priority=65000,{flow}")


@contextlib.contextmanager
def seeded(lab: Lab, ovnk_version: str | None = None) -> Iterator[tuple[LabController, Inventory]]:
    """The seed's policies programmed in one OVN-K version's NB shapes (default: the lab's)."""
    controller = LabController(lab)
    inventory = seed_inventory()
    controller.apply(inventory, NET, PROFILES[ovnk_version] if ovnk_version else None)
    try:
        yield controller, inventory
    finally:
        controller.clear(NET.name)
