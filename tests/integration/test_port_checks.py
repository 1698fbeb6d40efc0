"""The checks endpoints declare per port, run from inside a network namespace against small servers in that
namespace (127.0.0.1 only; the namespace is this test's and is removed afterwards): a TCP connect, an HTTP GET,
a PostgreSQL startup with the declared user and database and the declared sslmode (TLS included)."""

from __future__ import annotations

import secrets
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from segcheck.agent.adapters.netns import open_socket
from segcheck.agent.adapters.port_checks import run_check
from segcheck.agent.core.model import HttpCheck, PostgresCheck, TcpCheck

pytestmark = pytest.mark.lab
LOCAL = "127.0.0.1"
SERVE_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def ns() -> Iterator[str]:
    name = f"sc6chk-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, timeout=10)


@pytest.fixture
def serve(ns: str) -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """Accept one connection in the namespace and hand it to `handler`; returns the port. Bounded in time."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(handler: Callable[[socket.socket], None]) -> int:
        listener = open_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((LOCAL, 0))
        listener.listen(1)
        listener.settimeout(SERVE_TIMEOUT)
        listeners.append(listener)

        def run() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(SERVE_TIMEOUT)
                try:
                    handler(conn)
                except OSError:  # the client may hang up first (e.g. TLS refused): nothing to serve then
                    pass

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(SERVE_TIMEOUT)


def closed_port(ns: str) -> int:
    probe = open_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    probe.bind((LOCAL, 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def test_tcp_connect(ns, serve) -> None:
    port = serve(lambda conn: None)
    assert run_check(TcpCheck(), ns, LOCAL, port).ok
    refused = run_check(TcpCheck(), ns, LOCAL, closed_port(ns))
    assert not refused.ok and "failed" in refused.summary


def reply(text: bytes) -> Callable[[socket.socket], None]:
    def handler(conn: socket.socket) -> None:
        request = conn.recv(4096)
        seen.append(request)
        conn.sendall(text)
    seen: list[bytes] = []
    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_http_get_of_the_declared_path(ns, serve) -> None:
    handler = reply(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    answer = run_check(HttpCheck("/healthz"), ns, LOCAL, serve(handler))
    assert answer.ok and answer.kind == "http" and "503 Service Unavailable" in answer.summary
    assert handler.seen[0].startswith(b"GET /healthz HTTP/1.1\r\n")  # type: ignore[attr-defined]
    not_http = run_check(HttpCheck("/"), ns, LOCAL, serve(reply(b"SSH-2.0-OpenSSH_9.2\r\n")))
    assert not not_http.ok and "not an HTTP answer" in not_http.summary


def _recv(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _read_message(conn: socket.socket) -> bytes:
    length = struct.unpack("!I", _recv(conn, 4))[0]
    return _recv(conn, length - 4)


def _startup_params(body: bytes) -> dict[str, str]:
    parts = body[4:].split(b"\0")
    return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2) if parts[i]}


AUTH_OK = b"R" + struct.pack("!II", 8, 0)


def postgres(tls: ssl.SSLContext | None, log: list[object]) -> Callable[[socket.socket], None]:
    """A PostgreSQL that answers SSLRequest with S (when it has TLS) or N, and AuthenticationOk for role app."""
    def handler(conn: socket.socket) -> None:
        first = _read_message(conn)
        if first == struct.pack("!I", 80877103):
            log.append("ssl-request")
            conn.sendall(b"S" if tls else b"N")
            if tls:
                conn = tls.wrap_socket(conn, server_side=True)
            first = _read_message(conn)
        params = _startup_params(first)
        log.append(params)
        if params.get("user") == "app":
            conn.sendall(AUTH_OK)
        else:
            error = b"SFATAL\0C28000\0Mrole does not exist\0\0"
            conn.sendall(b"E" + struct.pack("!I", len(error) + 4) + error)
        conn.recv(5)
    return handler


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    folder: Path = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=db",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def test_postgres_startup_carries_the_declared_user_and_database(ns, serve) -> None:
    log: list[object] = []
    answer = run_check(PostgresCheck("app", "orders", "prefer"), ns, LOCAL, serve(postgres(None, log)))
    assert answer.ok and "AuthenticationOk" in answer.summary and "no TLS" in answer.summary
    assert log == ["ssl-request", {"user": "app", "database": "orders"}]
    log.clear()
    refused = run_check(PostgresCheck("reporting", "orders", "disable"), ns, LOCAL, serve(postgres(None, log)))
    assert refused.ok and "role does not exist" in refused.summary  # an answer, though a refusal
    assert log == [{"user": "reporting", "database": "orders"}]  # sslmode=disable: no SSLRequest


def test_sslmode_require_needs_tls_and_gets_it(ns, serve, server_tls) -> None:
    log: list[object] = []
    no_tls = run_check(PostgresCheck("app", "appdb", "require"), ns, LOCAL, serve(postgres(None, log)))
    assert not no_tls.ok and "refuses TLS" in no_tls.summary
    log = []
    answer = run_check(PostgresCheck("app", "appdb", "require"), ns, LOCAL, serve(postgres(server_tls, log)))
    assert answer.ok and "TLS" in answer.summary and "AuthenticationOk" in answer.summary, answer
    assert log == ["ssl-request", {"user": "app", "database": "appdb"}]


def test_sslmode_verify_full_refuses_a_certificate_no_ca_vouches_for(ns, serve, server_tls) -> None:
    answer = run_check(PostgresCheck("app", "appdb", "verify-full"), ns, LOCAL, serve(postgres(server_tls, [])))
    assert not answer.ok and "TLS" in answer.summary and "verify" in answer.summary.lower(), answer
