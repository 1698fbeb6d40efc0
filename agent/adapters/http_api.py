"""The agent's HTTP API: metrics, health, the per-cell JSON and on-demand probes.

Who may do what: /healthz and /readyz are open (kubelet probes carry no token); /metrics is open unless
`metrics_access` is set (the OpenShift overlay requires `get /metrics`, as its own components do); /v1/matrix and
/v1/drift need `get matrix.segcheck.io` (they are the cluster's segmentation map); POST /v1/probe needs
`create probes.segcheck.io` and sends packets, so at most `PROBES_IN_FLIGHT` run at once (429 beyond).
Every refusal is a JSON answer `{"error": ...}` and a JSON log line (at most 10 a second, then counted).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST

from .auth import READ_CELLS, SEND_PROBES, Access, AuthError, Authorizer
from .http_server import HttpServer, Limits, Request, Response, log_refusal

LOG = logging.getLogger("segcheck.http")
PROBES_IN_FLIGHT = 2  # probes share one prober: more would only queue up and hold workers
PROBE_FIELDS = frozenset({"from", "to", "network", "namespace"})
CELL_QUERY = frozenset({"network"})
TEXT = "text/plain; charset=utf-8"


@dataclass
class Routes:
    metrics: Callable[[], bytes]
    healthy: Callable[[], tuple[bool, str]]
    ready: Callable[[], tuple[bool, str]]
    cells: Callable[[frozenset[str], bool], tuple[int, Any]]  # (networks wanted, drift only) -> status, JSON
    probe: Callable[[dict[str, str]], tuple[int, Any]]
    authorize: Authorizer
    metrics_access: Access | None = None  # None: /metrics open, as on most exporters


def error_response(status: int, message: str) -> Response:
    return Response(status, (json.dumps({"error": message}) + "\n").encode())


def _json(status: int, data: Any) -> Response:
    return Response(status, (json.dumps(data, indent=1) + "\n").encode())


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def probe_body(raw: bytes) -> dict[str, str]:
    """The probe request: a flat JSON object of known string fields (ValueError otherwise)."""
    try:
        body = json.loads(raw or b"{}")
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    except ValueError as exc:  # also integers of more than 4,300 digits
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(body) - PROBE_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))[:200]}; expected {sorted(PROBE_FIELDS)}")
    wrong = sorted(k for k, v in body.items() if not isinstance(v, str))
    if wrong:
        raise ValueError(f"field(s) {', '.join(wrong)} must be strings")
    return body


class AgentApi:
    def __init__(self, routes: Routes):
        self.routes = routes
        self._probes = threading.BoundedSemaphore(PROBES_IN_FLIGHT)

    def handle(self, request: Request) -> Response:
        route = {("GET", "/metrics"): self._metrics, ("GET", "/healthz"): self._health, ("GET", "/readyz"): self._health,
                 ("GET", "/v1/matrix"): self._cells, ("GET", "/v1/drift"): self._cells,
                 ("POST", "/v1/probe"): self._probe}
        method = "GET" if request.method == "HEAD" else request.method
        handler = route.get((method, request.path))
        if handler is None:
            allowed = sorted({m for m, p in route if p == request.path})
            if not allowed:
                return error_response(HTTPStatus.NOT_FOUND, f"no such path {request.path[:200]}")
            response = error_response(HTTPStatus.METHOD_NOT_ALLOWED, f"{request.path} answers {', '.join(allowed)}")
            response.headers["Allow"] = ", ".join(allowed + (["HEAD"] if "GET" in allowed else []))
            return response
        return handler(request)

    def _authorized(self, request: Request, access: Access) -> Response | str:
        try:
            return self.routes.authorize(_bearer(request), access)
        except AuthError as exc:
            log_refusal(request.client, int(exc.status), str(exc), path=request.path)
            response = error_response(exc.status, str(exc))
            if exc.status == HTTPStatus.UNAUTHORIZED:
                response.headers["WWW-Authenticate"] = 'Bearer realm="segcheck"'
            return response

    def _metrics(self, request: Request) -> Response:
        if self.routes.metrics_access is not None:
            user = self._authorized(request, self.routes.metrics_access)
            if isinstance(user, Response):
                return user
        return Response(HTTPStatus.OK, self.routes.metrics(), CONTENT_TYPE_LATEST)

    def _health(self, request: Request) -> Response:
        ok, why = (self.routes.healthy if request.path == "/healthz" else self.routes.ready)()
        return Response(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, (why + "\n").encode(), TEXT)

    def _cells(self, request: Request) -> Response:
        unknown = sorted(set(request.query) - CELL_QUERY)
        if unknown:
            return error_response(HTTPStatus.BAD_REQUEST, f"unknown query parameter(s) {', '.join(unknown)[:200]}; "
                                                          f"expected {sorted(CELL_QUERY)}")
        user = self._authorized(request, READ_CELLS)
        if isinstance(user, Response):
            return user
        status, data = self.routes.cells(frozenset(request.query.get("network", [])), request.path == "/v1/drift")
        return _json(status, data)

    def _probe(self, request: Request) -> Response:
        user = self._authorized(request, SEND_PROBES)
        if isinstance(user, Response):
            return user
        try:
            body = probe_body(request.body)
        except ValueError as exc:
            return error_response(HTTPStatus.BAD_REQUEST, str(exc))
        if not self._probes.acquire(blocking=False):
            response = error_response(HTTPStatus.TOO_MANY_REQUESTS, f"{PROBES_IN_FLIGHT} probes already running")
            response.headers["Retry-After"] = "1"
            return response
        try:
            LOG.info("on-demand probe", extra={"user": user, "client": request.client,
                                               "from": body.get("from"), "to": body.get("to")})
            status, data = self.routes.probe(body)
        finally:
            self._probes.release()
        if status >= 400:
            log_refusal(request.client, status, str(data.get("error")), path=request.path, user=user)
        return _json(status, data)


class ApiServer(HttpServer):
    def __init__(self, host: str, port: int, routes: Routes, limits: Limits = Limits(),
                 tls: tuple[Any, Any] | None = None):
        self.api = AgentApi(routes)
        super().__init__(host, port, self.api.handle, error_response, limits, tls)
