"""The agent's HTTP server (standard library): metrics, health, the per-cell JSON and on-demand probes.

Read-only endpoints are open (as /metrics is on every exporter); `POST /v1/probe` sends packets, so it needs a
bearer token accepted by the configured authenticator. Request bodies are bounded.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

LOG = logging.getLogger("segcheck.http")
MAX_BODY = 4096


class AuthError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Routes:
    metrics: Callable[[], bytes]
    healthy: Callable[[], tuple[bool, str]]
    ready: Callable[[], tuple[bool, str]]
    matrix: Callable[[dict[str, list[str]]], Any]
    drift: Callable[[dict[str, list[str]]], Any]
    probe: Callable[[dict[str, Any]], tuple[int, Any]]
    authenticate: Callable[[str | None], str]  # bearer token -> user name; raises AuthError


def _handler(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "segcheck"
        sys_version = ""

        def log_message(self, fmt: str, *args: Any) -> None:
            LOG.debug("http", extra={"client": self.client_address[0], "line": fmt % args})

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, (json.dumps(data, indent=1) + "\n").encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            try:
                if url.path == "/metrics":
                    self._send(200, routes.metrics(), CONTENT_TYPE_LATEST)
                elif url.path in ("/healthz", "/readyz"):
                    ok, why = (routes.healthy if url.path == "/healthz" else routes.ready)()
                    self._send(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
                elif url.path == "/v1/matrix":
                    self._json(200, routes.matrix(query))
                elif url.path == "/v1/drift":
                    self._json(200, routes.drift(query))
                else:
                    self._json(404, {"error": f"no such path {url.path}"})
            except Exception as exc:  # noqa: BLE001 - never drop the connection without an answer
                LOG.exception("request failed")
                self._json(500, {"error": str(exc)})

        do_HEAD = do_GET

        def do_POST(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            if url.path != "/v1/probe":
                self._json(404, {"error": f"no such path {url.path}"})
                return
            header = self.headers.get("Authorization")
            token = header[7:].strip() if header and header.lower().startswith("bearer ") else None
            try:
                user = routes.authenticate(token)
            except AuthError as exc:
                self._json(exc.status, {"error": str(exc)})
                return
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self._json(413 if length > MAX_BODY else 400, {"error": f"body must be 0..{MAX_BODY} bytes"})
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as exc:
                self._json(400, {"error": f"invalid JSON: {exc}"})
                return
            LOG.info("on-demand probe", extra={"user": user, "from": str(body.get("from")), "to": str(body.get("to"))})
            try:
                status, data = routes.probe(body)
            except Exception as exc:  # noqa: BLE001
                LOG.exception("probe failed")
                status, data = 500, {"error": str(exc)}
            self._json(status, data)

    return Handler


class ApiServer:
    def __init__(self, host: str, port: int, routes: Routes):
        self.httpd = ThreadingHTTPServer((host, port), _handler(routes))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="segcheck-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
