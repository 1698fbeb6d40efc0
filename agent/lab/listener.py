"""A tiny TCP/UDP listener for lab hosts, so that allowed traffic towards them is observable.

Run as `python3 -m segcheck.agent.lab.listener --bind IP --tcp 8080 --udp 8080 --pidfile F --name N`.
It binds first, then daemonizes; the pidfile (with the daemon's PID) exists once it is listening, so the
caller needs no sleep. TCP answers one line `segcheck-lab <name> <port>` and closes; UDP echoes.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Iterable


def _serve_tcp(sock: socket.socket, banner: bytes) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        try:
            conn.settimeout(1.0)
            conn.sendall(banner)
        except OSError:
            pass
        finally:
            conn.close()


def _serve_udp(sock: socket.socket) -> None:
    while True:
        try:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)
        except OSError:
            continue


def command(bind: str | Iterable[str], name: str, pidfile: Path, ports: Iterable[tuple[str, int]]) -> list[str]:
    """The command line that starts this listener on `bind` (an address, or several: dual-stack) for `ports`
    ((protocol, port) pairs, TCP or UDP)."""
    argv = [sys.executable, "-m", "segcheck.agent.lab.listener", "--name", name, "--pidfile", str(pidfile)]
    for address in ([bind] if isinstance(bind, str) else bind):
        argv += ["--bind", address]
    for protocol, port in ports:
        argv += [f"--{protocol.lower()}", str(port)]
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segcheck-lab-listener")
    parser.add_argument("--bind", required=True, action="append")
    parser.add_argument("--tcp", type=int, action="append", default=[])
    parser.add_argument("--udp", type=int, action="append", default=[])
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--name", default="host")
    args = parser.parse_args(argv)

    sockets: list[tuple[str, int, socket.socket]] = []
    for bind in args.bind:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        for port in args.tcp:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((bind, port))
            s.listen(512)
            sockets.append(("tcp", port, s))
        for port in args.udp:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((bind, port))
            sockets.append(("udp", port, s))

    # Double fork: the daemon is nobody's child, so a stopped listener never lingers as a zombie.
    first = os.fork()
    if first:
        _, status = os.waitpid(first, 0)
        return os.waitstatus_to_exitcode(status)
    os.setsid()
    second = os.fork()
    if second:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{second}\n")
        os.replace(tmp, args.pidfile)
        os._exit(0)

    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threads = []
    for proto, port, s in sockets:
        banner = f"segcheck-lab {args.name} {port}\n".encode()
        if proto == "tcp":
            t = threading.Thread(target=_serve_tcp, args=(s, banner), daemon=True)
        else:
            t = threading.Thread(target=_serve_udp, args=(s,), daemon=True)
        t.start()
        threads.append(t)
    while True:  # the serving threads do the work; SIGTERM ends the process
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
