"""A PostgreSQL-level answer for an allowed TCP cell: what the server says to a startup message as the user and
database the endpoint declares, sent from inside the workload's namespace, TLS negotiated as libpq's `sslmode`
does. Never raises; bounded by a timeout."""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass

from ..core.model import PostgresCheck
from .netns import open_socket

SSL_REQUEST = struct.pack("!II", 8, 80877103)
PROTOCOL_3 = 196608
MAX_REPLY = 4096
# sslmode -> (ask for TLS, TLS required, verify the certificate chain, verify the host name). `allow` is libpq's
# first attempt (plain); libpq would retry with TLS only after the server refused it.
_SSLMODES = {"disable": (False, False, False, False), "allow": (False, False, False, False),
             "prefer": (True, False, False, False), "require": (True, True, False, False),
             "verify-ca": (True, True, True, False), "verify-full": (True, True, True, True)}


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


def _tls(sock: socket.socket, ip: str, verify: bool, hostname: bool) -> ssl.SSLSocket:
    context = ssl.create_default_context()  # the system's CAs, for verify-ca / verify-full
    context.check_hostname = hostname
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(sock, server_hostname=ip if hostname else None)


def postgres_answer(netns: str, ip: str, port: int, check: PostgresCheck, timeout: float = 2.0) -> PgAnswer:
    ask, required, verify, hostname = _SSLMODES[check.sslmode]
    try:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock: socket.socket = open_socket(netns, family, socket.SOCK_STREAM)
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        return PgAnswer(False, f"cannot open a socket in {netns}: {exc}")
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        tls = f"no TLS (sslmode={check.sslmode})"
        if ask:
            sock.sendall(SSL_REQUEST)
            offer = _recv_exact(sock, 1)
            if offer not in (b"S", b"N"):
                return PgAnswer(False, f"not PostgreSQL: SSLRequest answered {offer!r}")
            if offer == b"N" and required:
                return PgAnswer(False, f"PostgreSQL refuses TLS, which sslmode={check.sslmode} requires")
            if offer == b"S":
                sock = _tls(sock, ip, verify, hostname)
                tls = f"TLS {sock.version()}" + (" (certificate verified)" if verify else "")
            else:
                tls = "no TLS"
        sock.sendall(_startup(check.user, check.database))
        kind = _recv_exact(sock, 1)
        length = struct.unpack("!I", _recv_exact(sock, 4))[0]
        answer = _describe(kind, _recv_exact(sock, min(max(length - 4, 0), MAX_REPLY)))
        sock.sendall(b"X" + struct.pack("!I", 4))
        return PgAnswer(answer.ok, f"PostgreSQL ({tls}) as {check.user} on {check.database}, {answer.summary}")
    except ssl.SSLError as exc:
        return PgAnswer(False, f"TLS with PostgreSQL failed (sslmode={check.sslmode}): {exc.reason or exc}")
    except (OSError, ConnectionError, struct.error) as exc:
        return PgAnswer(False, f"no PostgreSQL answer: {exc}")
    finally:
        sock.close()
