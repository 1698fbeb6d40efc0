"""The agent's HTTP API under attack and load: authentication of every per-cell read, request deadlines against
idle and dripping clients, body and head limits, malformed input, a bounded pool, and 50 concurrent clients.

A real server on loopback with stand-in routes; every loop is bounded in count and time."""

from __future__ import annotations

import http.client
import json
import logging
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

from segcheck.agent.adapters import http_tls
from segcheck.agent.adapters.auth import SCRAPE_METRICS, TokenFileAuth
from segcheck.agent.adapters.http_api import PROBES_IN_FLIGHT, ApiServer, Routes
from segcheck.agent.adapters.http_server import Limits

TOKEN = "t0ken"
REQUEST_SECONDS = 2.0  # generous: a loaded machine may run the loop late
LIMITS = Limits(request_seconds=REQUEST_SECONDS, idle_seconds=REQUEST_SECONDS, workers=4, waiting=64)


class FakeAgent:
    """Stand-in routes: fixed answers, and a gate that holds probes while a test needs them running."""

    def __init__(self) -> None:
        self.probes: list[dict[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)

    def probe(self, body: dict[str, str]) -> tuple[int, Any]:
        self.entered.release()
        self.gate.wait(10)
        self.probes.append(body)
        return 200, {"from": body["from"], "to": body["to"]}

    def routes(self, token_file: Path, **kw: Any) -> Routes:
        return Routes(metrics=lambda: b"segcheck_up 1\n", healthy=lambda: (True, "ok"), ready=lambda: (False, "stale"),
                      cells=lambda wanted, drift: (200, {"networks": sorted(wanted), "drift_only": drift}),
                      probe=self.probe, authorize=TokenFileAuth(token_file), **kw)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def fake() -> FakeAgent:
    return FakeAgent()


@pytest.fixture
def server(fake: FakeAgent, token_file: Path) -> Iterator[ApiServer]:
    srv = ApiServer("127.0.0.1", 0, fake.routes(token_file), LIMITS)
    srv.start()
    yield srv
    fake.gate.set()
    srv.stop()


def call(srv: ApiServer, path: str, token: str | None = None, body: bytes | None = None,
         method: str | None = None) -> tuple[int, bytes, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{srv.port}{path}", data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def raw(srv: ApiServer, data: bytes, wait: float = 3 * REQUEST_SECONDS + 2) -> bytes:
    """Send bytes as they are and read the answer until the server closes (bounded by `wait`)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=wait) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


# -- who may read what --

@pytest.mark.parametrize("path", ["/v1/matrix", "/v1/drift", "/v1/drift?network=default/tenantblue"])
def test_every_per_cell_read_needs_a_token(server, path):
    status, body, headers = call(server, path)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer") and b"get matrix.segcheck.io" in body
    assert call(server, path, token="wrong")[0] == 403
    assert call(server, path, token=TOKEN.upper())[0] == 403
    status, body, _ = call(server, path, token=TOKEN)
    assert status == 200 and json.loads(body)["drift_only"] == path.startswith("/v1/drift")


def test_probes_and_health_stay_open_and_metrics_open_unless_asked(server, fake, token_file):
    assert call(server, "/healthz")[0] == 200
    assert call(server, "/readyz")[:2] == (503, b"stale\n")
    assert call(server, "/metrics")[:2] == (200, b"segcheck_up 1\n")
    guarded = ApiServer("127.0.0.1", 0, fake.routes(token_file, metrics_access=SCRAPE_METRICS), LIMITS)
    guarded.start()
    try:
        assert call(guarded, "/metrics")[0] == 401
        assert call(guarded, "/metrics", token="wrong")[0] == 403
        assert call(guarded, "/metrics", token=TOKEN)[0] == 200
        assert call(guarded, "/healthz")[0] == 200  # kubelet probes carry no token
    finally:
        guarded.stop()


def test_probe_needs_a_token_before_anything_is_sent(server, fake):
    body = json.dumps({"from": "vm-server", "to": "db:5432"}).encode()
    assert call(server, "/v1/probe", body=body)[0] == 401
    assert call(server, "/v1/probe", token="wrong", body=body)[0] == 403
    assert fake.probes == []
    status, answer, _ = call(server, "/v1/probe", token=TOKEN, body=body)
    assert status == 200 and json.loads(answer) == {"from": "vm-server", "to": "db:5432"}


# -- bad bodies --

@pytest.mark.parametrize("body, why", [
    (b"{not json", b"invalid JSON"),
    (b"[" * 2000 + b"]" * 2000, b"nested too deep"),
    (b'{"from": {"a": [1, [2, [3]]]}, "to": "db:5432"}', b"must be strings"),
    (b'["vm-server", "db:5432"]', b"expected a JSON object"),
    (b'{"from": "vm-server", "to": "db:5432", "shell": "rm -rf /"}', b"unknown field"),
    (b"\xff\xfe\x00", b"invalid JSON"),
])
def test_malformed_or_deep_json_is_400(server, fake, body, why):
    status, answer, _ = call(server, "/v1/probe", token=TOKEN, body=body)
    assert status == 400 and why in answer, answer
    assert fake.probes == []


def test_a_10_mb_body_is_413_and_the_client_reads_it(server):
    status, answer, _ = call(server, "/v1/probe", token=TOKEN, body=b"x" * 10_000_000)
    assert status == 413 and b"body over" in answer


def test_a_large_body_announced_with_expect_is_refused_before_it_is_sent(server):
    answer = raw(server, b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
    assert status_of(answer) == 413 and b"100 Continue" not in answer


def test_a_body_shorter_than_its_content_length_is_400_after_the_deadline(server, fake):
    # raw() gives up (socket timeout) long before "forever": an answer at all is the point
    answer = raw(server, b"POST /v1/probe HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode() +
                 b"\r\nContent-Length: 100\r\n\r\n{\"from\": ")
    assert status_of(answer) == 400 and b"shorter than its Content-Length" in answer
    assert fake.probes == []


@pytest.mark.parametrize("data, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"GET http://evil/ HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nX-A : b\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nX-A: b\r\n folded\r\n\r\n", 400),
    (b"POST /v1/probe HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello", 400),
    (b"POST /v1/probe HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /v1/probe HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501),
    (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"GET /metrics HTTP/1.1\r\n" + b"X-N: 1\r\n" * 100 + b"\r\n", 431),
    (b"GET /nothing HTTP/1.1\r\n\r\n", 404),
    (b"DELETE /v1/matrix HTTP/1.1\r\n\r\n", 405),
    (b"GET /v1/matrix?netwrok=x HTTP/1.1\r\n\r\n", 400),
    (b"GET /v1/matrix HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n", 401),
    (b"GET /v1/matrix HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer t0ken\r\n\r\n", 400),
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", 431),
    (b"GET /metr\xc3\xa9s HTTP/1.1\r\n\r\n", 400),
    (b"GET /metrics\x00 HTTP/1.1\r\n\r\n", 400),
    (b"GET /v1/matrix?" + b"&".join(b"network=%d" % i for i in range(100)) + b" HTTP/1.1\r\n\r\n", 400),
])
def test_malformed_requests_get_a_json_4xx_or_5xx(server, data, status):
    answer = raw(server, data)
    assert status_of(answer) == status, answer[:200]
    assert "error" in json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_head_answers_like_get_without_a_body(server):
    answer = raw(server, b"HEAD /v1/probe HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 405 and b"Allow: POST" in answer and answer.endswith(b"\r\n\r\n")


# -- slow and idle clients --

def read_until_closed(s: socket.socket) -> bytes:
    s.settimeout(15)
    answer = b""
    while chunk := s.recv(4096):
        answer += chunk
    return answer


def test_idle_and_half_sent_connections_are_closed_and_never_block_others(fake, token_file):
    # A longer deadline than the other tests': under a heavy machine load the loop may see a first byte late,
    # and a request it sees no byte of within the deadline is closed without an answer (not 408).
    server = ApiServer("127.0.0.1", 0, fake.routes(token_file), Limits(request_seconds=3.0, workers=4))
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    half = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    try:
        for s in half:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        # While 350 connections say nothing useful, others are served at once (more than the 4 workers).
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda _: call(server, "/healthz")[0], range(16))) == [200] * 16
        # Each is closed by the server: silently if it said nothing, with 408 if it had started a request.
        assert {read_until_closed(s) for s in idle} == {b""}
        assert {status_of(read_until_closed(s)) for s in half} == {408}
    finally:
        for s in idle + half:
            s.close()
        server.stop()


def test_a_dripping_client_is_cut_off_at_the_request_deadline(server):
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        sent = 0
        for byte in b"GET /metrics HTTP/1.1\r\nX-Drip: " + b"a" * 200:
            # One byte every 0.1 s until the server answers (select also paces the drip; bounded to 200 bytes).
            if select.select([s], [], [], 0.1)[0]:
                break
            s.sendall(bytes([byte]))
            sent += 1
        assert status_of(read_until_closed(s)) == 408
    assert sent < 200  # the deadline held although bytes kept coming


def test_keep_alive_serves_several_requests_then_closes_when_idle(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for path in ("/healthz", "/metrics", "/healthz"):
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200 and response.headers["Connection"] == "keep-alive"
        response.read()
    conn.request("HEAD", "/metrics")
    head = conn.getresponse()
    assert head.status == 200 and head.read() == b"" and int(head.headers["Content-Length"]) > 0
    conn.sock.settimeout(REQUEST_SECONDS * 3 + 5)
    assert conn.sock.recv(1) == b""  # the idle connection is closed by the server
    conn.close()


def test_pipelined_requests_are_answered_in_order(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\n\r\n"
                  b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        answer = read_until_closed(s)
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    assert statuses == [200, 404, 200] and answer.endswith(b"segcheck_up 1\n")


# -- load and saturation --

def test_fifty_concurrent_clients_are_all_served(server):
    clients, each = 50, 20
    barrier = threading.Barrier(clients, timeout=30)

    def client(i: int) -> list[int]:
        barrier.wait()
        path = ("/metrics", "/v1/matrix", "/v1/drift", "/healthz")[i % 4]
        return [call(server, path, token=TOKEN)[0] for _ in range(each)]

    with ThreadPoolExecutor(clients) as pool:
        statuses = [s for batch in pool.map(client, range(clients)) for s in batch]
    assert len(statuses) == clients * each and set(statuses) == {200}


def test_probes_beyond_the_in_flight_limit_get_429_not_a_worker(server, fake):
    fake.gate.clear()
    body = json.dumps({"from": "vm-server", "to": "db:5432"}).encode()
    with ThreadPoolExecutor(PROBES_IN_FLIGHT) as pool:
        held = [pool.submit(call, server, "/v1/probe", TOKEN, body) for _ in range(PROBES_IN_FLIGHT)]
        for _ in range(PROBES_IN_FLIGHT):
            assert fake.entered.acquire(timeout=10)
        status, answer, headers = call(server, "/v1/probe", token=TOKEN, body=body)
        assert status == 429 and headers["Retry-After"] == "1"
        assert call(server, "/healthz")[0] == 200  # the others are still served
        fake.gate.set()
        assert [f.result()[0] for f in held] == [200] * PROBES_IN_FLIGHT


def test_requests_beyond_the_waiting_room_get_503(fake, token_file):
    fake.gate.clear()
    srv = ApiServer("127.0.0.1", 0, fake.routes(token_file), Limits(request_seconds=5, workers=1, waiting=0))
    srv.start()
    body = json.dumps({"from": "vm-server", "to": "db:5432"}).encode()
    try:
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(call, srv, "/v1/probe", TOKEN, body)
            assert fake.entered.acquire(timeout=10)  # the only worker is busy
            status, answer, headers = call(srv, "/healthz")
            assert status == 503 and headers["Retry-After"] == "1" and b"busy" in answer
            fake.gate.set()
            assert held.result()[0] == 200
    finally:
        fake.gate.set()
        srv.stop()


# -- errors are JSON log lines --

def test_a_failing_route_answers_500_and_logs_one_json_line(fake, token_file, caplog):
    def broken(wanted: frozenset[str], drift: bool) -> tuple[int, Any]:
        raise KeyError("boom")

    routes = fake.routes(token_file)
    routes.cells = broken
    srv = ApiServer("127.0.0.1", 0, routes, LIMITS)
    srv.start()
    try:
        with caplog.at_level(logging.ERROR, logger="segcheck.http"):
            status, answer, _ = call(srv, "/v1/matrix", token=TOKEN)
    finally:
        srv.stop()
    assert status == 500 and json.loads(answer) == {"error": "internal error (logged by the agent)"}
    from segcheck.agent.adapters.jsonlog import JsonFormatter

    failed = [r for r in caplog.records if r.getMessage() == "request failed"]
    assert len(failed) == 1
    line = json.loads(JsonFormatter().format(failed[0]))
    assert line["path"] == "/v1/matrix" and "KeyError: 'boom'" in line["error"]


def test_uncaught_exceptions_are_json_lines_not_tracebacks():
    code = ("from segcheck.agent.adapters.jsonlog import configure\n"
            "import threading\nconfigure()\n"
            "t = threading.Thread(target=lambda: 1 / 0, name='worker'); t.start(); t.join()\n"
            "raise ValueError('at top level')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is JSON
    assert [(e["level"], e.get("in_thread")) for e in lines] == [("critical", "worker"), ("critical", None)]
    assert "ZeroDivisionError" in lines[0]["error"] and "ValueError: at top level" in lines[1]["error"]


# -- TLS --

def _certificate(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def _served_certificate_name(port: int, ca: Path, name: str) -> str:
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s, \
            context.wrap_socket(s, server_hostname=name) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 200")
        return dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]


def test_tls_serves_the_certificate_and_reloads_it_when_rotated(fake, token_file, tmp_path, monkeypatch):
    monkeypatch.setattr(http_tls, "CERT_CHECK_SECONDS", 0.0)
    cert, key = _certificate(tmp_path, "segcheck.segcheck.svc")
    srv = ApiServer("127.0.0.1", 0, fake.routes(token_file), LIMITS, tls=(cert, key))
    srv.start()
    try:
        assert srv.scheme == "https"
        assert _served_certificate_name(srv.port, cert, "segcheck.segcheck.svc") == "segcheck.segcheck.svc"
        new_cert, new_key = _certificate(tmp_path, "rotated.segcheck.svc")
        new_cert.replace(cert)
        new_key.replace(key)
        assert _served_certificate_name(srv.port, cert, "rotated.segcheck.svc") == "rotated.segcheck.svc"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as plain:
            plain.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")  # plain HTTP to a TLS port: refused, no answer
            plain.settimeout(3 * REQUEST_SECONDS + 5)
            assert not plain.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        srv.stop()


def test_connections_beyond_the_cap_are_closed_at_once_and_the_cap_frees_up(fake, token_file):
    from segcheck.agent.lab.polling import wait_until

    srv = ApiServer("127.0.0.1", 0, fake.routes(token_file), Limits(request_seconds=30, connections=5))
    srv.start()
    held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(5)]
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            try:
                assert extra.recv(100) == b""
            except ConnectionResetError:
                pass  # closed with a reset: refused all the same
        for s in held:
            s.close()

        def served() -> bool:
            try:
                return call(srv, "/healthz")[0] == 200
            except OSError:
                return False

        assert wait_until(served, timeout=10)
    finally:
        for s in held:
            s.close()
        srv.stop()
