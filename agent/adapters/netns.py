"""Run code inside a network namespace without moving the process.

`setns(CLONE_NEWNET)` changes the namespace of the calling *thread* only, so every entry happens on a fresh,
dedicated thread that dies afterwards: the main thread never changes namespace. A socket keeps the namespace it
was created in, so sockets opened here can be used from any thread. `/proc/sys/net` resolves against the opening
thread's namespace, which is how sysctls are read and written per namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"
_DEFAULT_TIMEOUT = 30.0


class NetnsError(OSError):
    """The namespace cannot be resolved or entered."""


def netns_path(netns: str) -> str:
    """A namespace path (`/run/netns/x`, `/proc/PID/ns/net`) or a name under /run/netns, as a path that exists."""
    if not netns or "\0" in netns:
        raise NetnsError(f"bad network namespace {netns!r}")
    path = netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns)
    if not os.path.exists(path):
        raise NetnsError(f"network namespace {netns!r} not found ({path})")
    return path


def _setns(fd: int, nstype: int) -> None:
    if hasattr(os, "setns"):  # Python >= 3.12
        os.setns(fd, nstype)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"setns: {os.strerror(err)}")


def run_in_netns(netns: str, fn: Callable[..., T], *args: object, timeout: float | None = _DEFAULT_TIMEOUT) -> T:
    """Call `fn(*args)` on a dedicated thread inside `netns` and return its result (or raise its exception)."""
    path = netns_path(netns)
    box: dict[str, object] = {}

    def target() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            box["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns:{os.path.basename(path)}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"call in network namespace {netns!r} did not finish within {timeout}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def open_socket(netns: str, family: int, type_: int, proto: int = 0) -> socket.socket:
    """A socket created inside `netns` (it stays there whichever thread uses it)."""
    return run_in_netns(netns, socket.socket, family, type_, proto)


def _sysctl_path(key: str) -> str:
    if not key or ".." in key or key.startswith(("/", ".")):
        raise ValueError(f"bad sysctl key {key!r}")
    return "/proc/sys/" + key.replace(".", "/")


def _read(path: str) -> str:
    with open(path, encoding="ascii") as handle:
        return handle.read().strip()


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


def read_sysctl(netns: str, key: str) -> str:
    """E.g. `read_sysctl("x", "net.ipv4.ip_local_reserved_ports")`."""
    return run_in_netns(netns, _read, _sysctl_path(key))


def write_sysctl(netns: str, key: str, value: str) -> None:
    run_in_netns(netns, _write, _sysctl_path(key), value)
