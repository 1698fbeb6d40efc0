"""A fake Kubernetes API server on 127.0.0.1 speaking the real HTTP/JSON list and watch protocol.

Only GET is served (segcheck only reads); tests change the cluster through the Python control API instead.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .state import RESOURCES, Cluster, FakeResource, Obj, Request, status_object

_HOST = "127.0.0.1"
_DEFAULT_WATCH_TIMEOUT_SECONDS = 30.0


def _route(path: str) -> tuple[FakeResource, str | None] | None:
    """Map a collection path (cluster-wide or namespaced) to its resource and namespace."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) == 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) != 1 or rest[0] not in RESOURCES:
        return None
    resource = RESOURCES[rest[0]]
    if (resource.group, resource.version) != (group, version) or (namespace and not resource.namespaced):
        return None
    return resource, namespace


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer, as the real server
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `requests` instead
        pass

    def _send_json(self, status: int, document: Any) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_status(self, code: int, reason: str, message: str) -> None:
        self._send_json(code, status_object(code, reason, message))

    def do_GET(self) -> None:
        cluster = self.server.cluster
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        with cluster.cond:
            cluster.requests.append(Request(url.path, query, self.headers.get("Authorization"), time.monotonic()))
        discovery = self.server.owner.discovery(url.path)
        if discovery is not None:
            self._send_json(200, discovery)
            return
        routed = _route(url.path)
        if routed is None or routed[0].plural in cluster.unavailable:
            self._send_status(404, "NotFound", "the server could not find the requested resource")
            return
        resource, namespace = routed
        failure = cluster.take_failure(resource.plural)
        if failure is not None:
            self._send_status(failure, "InternalError" if failure >= 500 else "Failure", "injected failure")
        elif query.get("watch") in ("true", "1"):
            self._watch(resource, namespace, query)
        else:
            self._list(resource, namespace, query)

    def _list(self, resource: FakeResource, namespace: str | None, query: dict[str, str]) -> None:
        cluster = self.server.cluster
        token = query.get("continue")
        if token:
            with cluster.cond:
                saved = cluster.continues.pop(token, None)
            if saved is None:
                self._send_status(410, "Expired", "the provided continue parameter is too old")
                return
            rv, items = saved
        else:
            requested = query.get("resourceVersion")
            rv, items = cluster.list_objects(resource, namespace)
            # Only the current state is kept, so an exact older one is as gone as in a compacted etcd.
            if query.get("resourceVersionMatch") == "Exact" and requested and int(requested) != rv:
                self._send_status(410, "Expired", f"too old resource version: {requested} ({rv})")
                return
        limit = int(query.get("limit") or 0)
        metadata: dict[str, str] = {"resourceVersion": str(rv)}
        if 0 < limit < len(items):
            metadata["continue"] = cluster.save_continue(rv, items[limit:])
            items = items[:limit]
        self._send_json(200, {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                              "metadata": metadata, "items": [_strip_type(o) for o in items]})

    def _watch(self, resource: FakeResource, namespace: str | None, query: dict[str, str]) -> None:
        since = query.get("resourceVersion")
        timeout = float(query.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT_SECONDS)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = self.server.cluster.watch(resource, namespace, int(since) if since not in (None, "", "0") else None,
                                           timeout, bookmarks, self.server.alive)
        try:
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
        finally:
            events.close()  # at once, even when the client went away: open_watches must be exact
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True


def _strip_type(obj: Obj) -> Obj:
    """List items come without apiVersion and kind, as from the real server."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: FakeKubeServer, port: int) -> None:
        self.owner = owner
        self.cluster = owner.cluster
        self.alive = threading.Event()
        self.alive.set()
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((_HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients vanishing mid-stream are expected (stop(), client shutdown)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FakeKubeServer:
    """The fake API server plus its control API. Cluster state survives `stop()`/`start()`, as etcd would."""

    def __init__(self) -> None:
        self.cluster = Cluster()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def start(self) -> FakeKubeServer:
        """Serve on an ephemeral port the first time, on the same port after `stop()`."""
        self._server = _Server(self, self.port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-kube", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """An outage: refuse new connections and cut the open ones (watches included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.alive.clear()
        with self.cluster.cond:
            self.cluster.cond.notify_all()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- cluster changes ----------------------------------------------------------------------------------------

    def create(self, obj: Obj) -> Obj:
        return self.cluster.create(obj)

    def update(self, obj: Obj) -> Obj:
        return self.cluster.update(obj)

    def delete(self, obj: Obj) -> Obj:
        return self.cluster.delete(obj)

    def compact(self) -> None:
        """Forget the event history: watches from any older resourceVersion now get 410 Gone."""
        self.cluster.compact()

    # -- faults -------------------------------------------------------------------------------------------------

    def set_unavailable(self, resource: str, unavailable: bool = True) -> None:
        """Answer 404 for `resource` (a plural, e.g. `virtualmachineinstances`), as when its CRD is absent."""
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}")
        with self.cluster.cond:
            (self.cluster.unavailable.add if unavailable else self.cluster.unavailable.discard)(resource)
            # Open watches of a removed API end, as they do when a CRD is deleted.
            self.cluster.watch_epoch += 1
            self.cluster.cond.notify_all()

    def fail_next(self, n: int, status: int = 500, resource: str | None = None) -> None:
        """Answer the next `n` list/watch requests (of `resource`, or of any resource) with `status`."""
        with self.cluster.cond:
            self.cluster.pending_failures.extend([(status, resource)] * n)

    def close_watches(self) -> None:
        """End every open watch stream cleanly, as an API server does on restart or timeout."""
        with self.cluster.cond:
            self.cluster.watch_epoch += 1
            self.cluster.cond.notify_all()

    def send_bookmarks(self) -> None:
        """Make every open watch that allows bookmarks send one at the current resourceVersion."""
        with self.cluster.cond:
            self.cluster.bookmark_epoch += 1
            self.cluster.cond.notify_all()

    # -- inspection ---------------------------------------------------------------------------------------------

    def wait_for_watches(self, resource: str | None = None, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until `count` watches are open on `resource` (on every resource if None)."""
        plurals = [resource] if resource else list(RESOURCES)
        with self.cluster.cond:
            return self.cluster.cond.wait_for(
                lambda: all(self.cluster.open_watches[p] >= count for p in plurals
                            if p not in self.cluster.unavailable), timeout)

    @property
    def resource_version(self) -> int:
        with self.cluster.cond:
            return self.cluster.rv

    def objects(self) -> dict[tuple[str, str, str], Obj]:
        """Current objects keyed by (kind, namespace, name), with apiVersion and kind."""
        with self.cluster.cond:
            return {(o["kind"], ns, name): json.loads(json.dumps(o))
                    for (_, ns, name), o in self.cluster.objects.items()}

    def requests(self, resource: str | None = None, watch: bool | None = None) -> list[Request]:
        """Requests received so far, optionally only those on `resource`'s collections, only watches or lists."""
        with self.cluster.cond:
            seen = list(self.cluster.requests)
        return [r for r in seen
                if (resource is None or ((route := _route(r.path)) is not None and route[0].plural == resource))
                and (watch is None or r.is_watch == watch)]

    def discovery(self, path: str) -> dict[str, Any] | None:
        """`/version`, `/api`, `/apis` and the group-version resource lists, for clients that discover."""
        with self.cluster.cond:
            served = [r for r in RESOURCES.values() if r.plural not in self.cluster.unavailable]
        if path == "/version":
            return {"major": "1", "minor": "27", "gitVersion": "v1.27.0-fake", "platform": "linux/amd64"}
        if path == "/api":
            address = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{_HOST}:{self.port}"}
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [address]}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for r in served:
                if r.group:
                    groups.setdefault(r.group, []).append(r.version)
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                for g, vs in sorted(groups.items())]}
        for group_version in {r.api_version for r in served}:
            prefix = "/api/" if group_version == "v1" else "/apis/"
            if path == prefix + group_version:
                return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": [
                    {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
                     "verbs": ["get", "list", "watch"]}
                    for r in served if r.api_version == group_version]}
        return None
