"""A PostgreSQL-level answer for an allowed TCP cell: what the server says to an SSLRequest and a startup
message sent from inside the workload's namespace. Never raises; bounded by a timeout."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from .netns import open_socket

SSL_REQUEST = struct.pack("!II", 8, 80877103)
PROTOCOL_3 = 196608


@dataclass(frozen=True)
class PgAnswer:
    ok: bool
    summary: str


def _startup(user: str, database: str) -> bytes:
    body = struct.pack("!I", PROTOCOL_3) + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in (("user", user), ("database", database))) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def _describe(kind: bytes, payload: bytes) -> PgAnswer:
    if kind == b"R":
        code = struct.unpack("!I", payload[:4])[0]
        names = {0: "AuthenticationOk", 3: "cleartext password requested", 5: "MD5 password requested",
                 10: "SASL authentication requested"}
        return PgAnswer(True, f"startup answered: {names.get(code, f'authentication request {code}')}")
    if kind == b"E":
        fields = dict((f[:1].decode(), f[1:].decode(errors="replace")) for f in payload.split(b"\0") if f)
        return PgAnswer(True, f"startup refused by the server: {fields.get('M', 'error')} ({fields.get('C', '?')})")
    return PgAnswer(False, f"unexpected reply type {kind!r}")


def postgres_answer(netns: str, ip: str, port: int = 5432, user: str = "app", database: str = "appdb",
                    timeout: float = 2.0) -> PgAnswer:
    try:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = open_socket(netns, family, socket.SOCK_STREAM)
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        return PgAnswer(False, f"cannot open a socket in {netns}: {exc}")
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        sock.sendall(SSL_REQUEST)
        ssl = _recv_exact(sock, 1)
        if ssl not in (b"S", b"N"):
            return PgAnswer(False, f"not PostgreSQL: SSLRequest answered {ssl!r}")
        tls = "offers TLS" if ssl == b"S" else "no TLS"
        if ssl == b"S":
            return PgAnswer(True, "PostgreSQL answered SSLRequest with 'S' (offers TLS)")
        sock.sendall(_startup(user, database))
        kind = _recv_exact(sock, 1)
        length = struct.unpack("!I", _recv_exact(sock, 4))[0]
        answer = _describe(kind, _recv_exact(sock, min(length - 4, 4096)))
        sock.sendall(b"X" + struct.pack("!I", 4))
        return PgAnswer(answer.ok, f"PostgreSQL ({tls}), {answer.summary}")
    except (OSError, ConnectionError, struct.error) as exc:
        return PgAnswer(False, f"no PostgreSQL answer: {exc}")
    finally:
        sock.close()
