"""The shipped seed scenario (examples/seed): the lab's default manifests."""

from __future__ import annotations

from pathlib import Path


def packaged_seed() -> Path:
    """examples/seed next to the installed sources (editable installs and the repository)."""
    import segcheck.agent

    return Path(segcheck.agent.__file__).resolve().parents[1] / "examples" / "seed"


def packaged_seed_ipv6() -> Path:
    """examples/seed-ipv6: the seed, IPv6-only (fd00:200::/64)."""
    return packaged_seed().with_name("seed-ipv6")
