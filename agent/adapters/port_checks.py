"""The application-level check an endpoint declares for a port, run from inside the workload's namespace after
the probe found the cell allowed: a full TCP connect, an HTTP GET, or a PostgreSQL startup. Never raises;
each is bounded by a timeout and reads a bounded answer."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..core.model import HttpCheck, PortCheck, PostgresCheck
from .netns import open_socket
from .pg_probe import postgres_answer

MAX_STATUS_LINE = 1024


@dataclass(frozen=True)
class CheckAnswer:
    kind: str  # tcp | http | postgres
    ok: bool  # the service answered as its protocol does (whatever it said)
    summary: str


def _connected(netns: str, ip: str, port: int, timeout: float) -> socket.socket:
    sock = open_socket(netns, socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _status_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_STATUS_LINE:
        chunk = sock.recv(MAX_STATUS_LINE - len(data))
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].rstrip(b"\r")


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _http(sock: socket.socket, check: HttpCheck, ip: str, port: int) -> CheckAnswer:
    request = (f"GET {check.path} HTTP/1.1\r\nHost: {_host(ip)}:{port}\r\nUser-Agent: segcheck\r\n"
               "Connection: close\r\n\r\n")
    try:
        sock.sendall(request.encode("ascii"))
        line = _status_line(sock)
    except OSError as exc:
        return CheckAnswer("http", False, f"GET {check.path}: no answer ({exc})")
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return CheckAnswer("http", False, f"GET {check.path}: not an HTTP answer ({line[:80]!r})")
    return CheckAnswer("http", True, f"GET {check.path}: {line.decode('latin-1')}")


def run_check(check: PortCheck, netns: str, ip: str, port: int, timeout: float = 2.0) -> CheckAnswer:
    if isinstance(check, PostgresCheck):
        answer = postgres_answer(netns, ip, port, check, timeout)
        return CheckAnswer("postgres", answer.ok, answer.summary)
    kind = "http" if isinstance(check, HttpCheck) else "tcp"
    try:
        sock = _connected(netns, ip, port, timeout)
    except OSError as exc:
        return CheckAnswer(kind, False, f"TCP connect to {_host(ip)}:{port} failed: {exc}")
    try:
        if isinstance(check, HttpCheck):
            return _http(sock, check, ip, port)
        return CheckAnswer("tcp", True, f"TCP connect to {_host(ip)}:{port} established")
    finally:
        sock.close()
