"""Answer loss injected inside a namespace: an nftables rule dropping a random share of what it sends.

This kernel has no `tc netem`; `numgen random mod 100 < N drop` on the output hook drops N % of the namespace's
outgoing IP packets (SYN-ACKs, RSTs, echo replies; ARP is another family and passes). The table lives in that
namespace only, and is deleted on exit (the namespace's removal would drop it too).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator

TABLE = "segcheck_loss"


def _nft(netns: str, *args: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "nft", *args], input=stdin, text=True, check=True,
                   capture_output=True, timeout=10)


@contextlib.contextmanager
def answer_loss(netns: str, percent: int) -> Iterator[None]:
    if shutil.which("nft") is None:
        raise RuntimeError("nft not found: bash scripts/setup.sh installs nftables")
    if not 0 < percent < 100:
        raise ValueError(f"loss percent {percent} not in 1..99")
    _nft(netns, "-f", "-", stdin=f"table inet {TABLE} {{\n chain out {{\n  type filter hook output priority 0;\n"
                                 f"  numgen random mod 100 < {percent} drop\n }}\n}}\n")
    try:
        yield
    finally:
        _nft(netns, "delete", "table", "inet", TABLE)
