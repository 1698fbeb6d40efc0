"""The raw prober's own-socket drop evidence is the kernel's: PACKET_STATISTICS counts frames its receive buffer
had no room for, and reading it resets it (so each pass reads its own).

Two throw-away namespaces joined by a veth; a packet socket with a small receive buffer on one end is not read
while the other end sends a burst of frames at it.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import subprocess
from collections.abc import Iterator

import pytest

from segcheck.agent.adapters import netns
from segcheck.agent.adapters.probers import packets as pk
from segcheck.agent.adapters.probers.raw import ETH_P_ALL, _Sender, socket_drops
from segcheck.agent.core.probe import SendPoint

BURST = 3000


@pytest.fixture()
def pair() -> Iterator[tuple[str, str]]:
    prefix = f"scd{secrets.token_hex(3)}"
    a, b = f"{prefix}-a", f"{prefix}-b"
    try:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, timeout=10)
        subprocess.run(["ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b],
                       check=True, capture_output=True, timeout=10)
        for ns, dev in ((a, "va"), (b, "vb")):
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True, capture_output=True, timeout=10)
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=10)


def _packet_socket(ns: str, dev: str, rcvbuf: int) -> socket.socket:
    def opener() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((dev, ETH_P_ALL))
        return sock

    return netns.run_in_netns(ns, opener)


def test_frames_the_receive_buffer_had_no_room_for_are_counted_and_the_count_resets(pair) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    receiver = _packet_socket(a, "va", 4096)  # room for a handful of frames
    sender = _packet_socket(b, "vb", 1 << 20)
    try:
        receiving = _Sender(SendPoint(a, "va", ipaddress.IPv4Address("10.0.0.1")), sock=receiver)
        assert socket_drops([receiving]) == {receiving: 0}  # nothing yet (and the counter is now reset)
        frame = pk.BROADCAST + bytes.fromhex("020000000002") + b"\x88\xb5" + b"\0" * 46  # local experimental type
        for _ in range(BURST):
            sender.send(frame)
        dropped = socket_drops([receiving])[receiving]
        assert 0 < dropped < BURST  # most of the burst found no room; the few queued ones were not dropped
        assert socket_drops([receiving]) == {receiving: 0}  # read once, then reset: each pass reads its own
    finally:
        receiver.close()
        sender.close()
