"""A dataplane trace of one cell through the OVN logical pipeline (`ovn-trace` on the southbound database),
as a second opinion next to segcheck's own ACL evaluation. Never raises; the trace text is returned as is."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from ..core.sources import Trace

# A locally administered MAC for hosts OVN does not know (external endpoints): the logical switch floods
# unknown destinations to ports with `unknown` addresses, which is the localnet port.
UNKNOWN_MAC = "02:00:00:00:00:01"
TIMEOUT = 10.0
# What an ovn-trace older than the ovn-northd that wrote the southbound prints for logical flows it cannot
# read: its trace would look like a drop.
_UNREADABLE = ("parsing actions failed", "parsing match failed")


def trace_flow(inport: str, src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, protocol: str, port: int | None) -> str:
    family = "ip6" if ":" in src_ip else "ip4"
    flow = [f'inport == "{inport}"', f"eth.src == {src_mac}", f"eth.dst == {dst_mac}",
            f"{family}.src == {src_ip}", f"{family}.dst == {dst_ip}", "ip.ttl == 64"]
    proto = protocol.lower()
    if proto in ("tcp", "udp", "sctp"):
        flow.append(proto)
        if port is not None:
            flow.append(f"{proto}.dst == {port}")
    return " && ".join(flow)


@dataclass(frozen=True)
class OvnTracer:
    """`ovn-trace` against one southbound database (`argv0`: the binary, or a loader command line for it)."""

    sb_url: str
    argv0: tuple[str, ...] = ("ovn-trace",)

    def __call__(self, datapath: str, flow: str) -> Trace:
        return ovn_trace(self.sb_url, datapath, flow, self.argv0)


def ovn_trace(sb_url: str, datapath: str, flow: str, argv0: tuple[str, ...] = ("ovn-trace",)) -> Trace:
    """`ovn-trace --ct=new,trk`: the first packet of a new connection (the default assumes an established one)."""
    argv = [*argv0, f"--db={sb_url}", "--ct=new,trk", "--minimal", datapath, flow]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Trace("unknown", f"ovn-trace could not run: {exc}")
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        return Trace("unknown", text)
    if any(marker in text for marker in _UNREADABLE):
        return Trace("unknown", f"{argv[0]} cannot read this southbound database (written by a newer ovn-northd: "
                                f"trace with a matching ovn-trace): {text}")
    # --minimal prints only what reaches an output; a trace that ends without one is a drop.
    return Trace("delivered" if "output(" in text else "dropped", text)
