"""Probers: raw socket (default), scapy, simulated (tests). `make_prober` builds one by its CLI name."""

from __future__ import annotations

from ...core.probe import Prober

PROBERS = ("raw", "scapy")


def make_prober(name: str) -> Prober:
    """The prober called `name` (one of PROBERS); imported lazily so the unused one costs nothing."""
    if name == "scapy":
        from .scapy_prober import ScapyProber

        return ScapyProber()
    if name == "raw":
        from .raw import RawSocketProber

        return RawSocketProber()
    raise ValueError(f"unknown prober {name!r} (have {', '.join(PROBERS)})")
