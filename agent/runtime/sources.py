"""Opening the three planes' sources for one-shot commands (`probe`, `verify`): the lab, or a node."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..adapters.manifest_files import load_inventory
from ..adapters.ovsdb import DEFAULT_NB, DEFAULT_OVS, NorthboundReader, OvsReader, SourceDown
from ..adapters.probers.raw import RawSocketProber
from ..adapters.probers.scapy_prober import ScapyProber
from ..core.northbound import NbSnapshot, OvsSnapshot
from ..core.probe import Prober
from ..lab.lab import Lab
from ..lab.locator import LabLocator
from ..lab.topology import topology_from_inventory
from .checker import Locator

PROBERS = ("raw", "scapy")


def packaged_seed() -> Path:
    """examples/seed next to the installed sources (editable installs and the repository)."""
    import segcheck.agent

    return Path(segcheck.agent.__file__).resolve().parents[1] / "examples" / "seed"


def make_prober(name: str) -> Prober:
    if name == "scapy":
        return ScapyProber()
    return RawSocketProber()


@dataclass
class Programmed:
    nb: NbSnapshot | None
    ovs: OvsSnapshot | None
    errors: list[str]


def read_programmed(nb_url: str | None, ovs_url: str | None, timeout: float = 5.0) -> Programmed:
    """One consistent read of each database; a database that cannot be read leaves its plane unknown."""
    errors: list[str] = []
    nb = ovs = None
    for url, reader_type in ((nb_url, NorthboundReader), (ovs_url, OvsReader)):
        if url is None:
            continue
        reader: Any = reader_type(url, timeout=timeout)
        try:
            snap = reader.snapshot()
            if reader_type is NorthboundReader:
                nb = snap
            else:
                ovs = snap
        except SourceDown as exc:
            errors.append(str(exc))
        finally:
            reader.close()
    return Programmed(nb, ovs, errors)


@dataclass
class NodeSources:
    nb_url: str | None
    ovs_url: str | None
    locator: Locator | None
    lab: Lab | None = None


def lab_sources(state_dir: Path, prefix: str, paths: Sequence[str] = ()) -> NodeSources:
    """The lab's databases and send points; its hosts follow the manifests it was built from (`paths`)."""
    lab = Lab(state_dir=state_dir, prefix=prefix)
    if paths:
        inventory, _ = load_inventory(paths)
        localnets = sorted(ref for ref, net in inventory.networks.items() if net.topology == "localnet")
        if localnets:
            try:
                lab.topology = topology_from_inventory(inventory, localnets[0])
            except ValueError:
                pass  # keep the seed's hosts; the check will say what it cannot locate
    return NodeSources(lab.nb_url, lab.ovs_url, LabLocator(lab), lab)


def node_sources(nb_url: str | None = DEFAULT_NB, ovs_url: str | None = DEFAULT_OVS) -> NodeSources:
    from ..adapters.node_locator import NodeLocator

    return NodeSources(nb_url, ovs_url, NodeLocator())
