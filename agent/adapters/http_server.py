"""A small HTTP/1.1 server that an idle, slow or hostile client cannot tie up.

Connections live in one asyncio loop (an idle or dripping connection costs a socket, never a thread); a request
is handed to a bounded worker pool only once its headers and body have arrived in full, within `request_seconds`.
Bounded: open connections, header size and count, body size (413), waiting requests (503), keep-alive idle time.
A refused body is drained for a moment after the answer, so the client reads the status instead of a reset.
Optional TLS (the certificate is reloaded when its file changes, as a service-CA rotation does).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .http_tls import CertReloader

LOG = logging.getLogger("segcheck.http")
TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
FD_RESERVE = 128  # file descriptors kept for everything else the process opens (OVSDB, netns, probes)
SINGLE_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "authorization", "expect"})


@dataclass(frozen=True)
class Limits:
    request_seconds: float = 10.0  # headers and body of one request must arrive within this
    idle_seconds: float = 15.0  # keep-alive: wait this long for the next request
    header_bytes: int = 16 * 1024
    headers: int = 64
    body_bytes: int = 4096
    drain_bytes: int = 16 * 1024 * 1024  # read and drop up to this much of a refused body
    connections: int = 2048
    workers: int = 8
    waiting: int = 256  # complete requests waiting for a worker; beyond, 503
    backlog: int = 1024
    requests_per_connection: int = 1000


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: str


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """A request the server refuses before any handler sees it."""

    def __init__(self, status: HTTPStatus, message: str, *, drain: int = 0):
        super().__init__(message)
        self.status, self.drain = status, drain


Handler = Callable[[Request], Response]
ErrorBody = Callable[[int, str], Response]  # how refusals look (the API answers JSON)


class _Closed(Exception):
    """The client went away, or sent nothing before the deadline: close without an answer."""


def _listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _connection_cap(wanted: int) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft == resource.RLIM_INFINITY else max(1, min(wanted, soft - FD_RESERVE))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class HttpServer:
    def __init__(self, host: str, port: int, handler: Handler, error_body: ErrorBody, limits: Limits = Limits(),
                 tls: tuple[Path, Path] | None = None):
        self.handler, self.error_body, self.limits = handler, error_body, limits
        self.tls = CertReloader(*tls) if tls else None
        self._sock = _listening_socket(host, port, limits.backlog)
        self.port = int(self._sock.getsockname()[1])
        self._max_connections = _connection_cap(limits.connections)
        self._open = 0
        self._busy = 0  # requests in or waiting for the pool
        self._pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="segcheck-http")
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    # -- lifecycle (from any thread) --

    def start(self) -> None:
        started = threading.Event()
        failed: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(started, failed), name="segcheck-http-loop",
                                        daemon=True)
        self._thread.start()
        started.wait()
        if failed:
            raise failed[0]

    def _run(self, started: threading.Event, failed: list[BaseException]) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.set_exception_handler(lambda _, ctx: LOG.warning(
            "http connection error", extra={"error": str(ctx.get("exception") or ctx.get("message"))}))
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(
                self._accepted, sock=self._sock, limit=self.limits.header_bytes,
                ssl=self.tls.context if self.tls else None,
                ssl_handshake_timeout=self.limits.request_seconds if self.tls else None))
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it in the caller
            failed.append(exc)
            return
        finally:
            started.set()
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        if self._thread is None:
            self._sock.close()
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- connections --

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self._open >= self._max_connections:
                log_refusal(_client(writer), 0, f"{self._open} connections open: closed at once")
                writer.transport.abort()
                return
            self._open += 1
            try:
                await self._serve(reader, writer)
            finally:
                self._open -= 1
                writer.close()
        except (asyncio.CancelledError, ConnectionError, ssl.SSLError):
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _client(writer)
        for served in range(self.limits.requests_per_connection):
            started = time.monotonic()
            try:
                request = await self._read(reader, writer, client, self.limits.idle_seconds if served else None)
            except _Closed:
                return
            except HttpError as exc:
                log_refusal(client, exc.status, str(exc))
                if await self._write(writer, self.error_body(exc.status, str(exc)), keep_alive=False):
                    await self._drain(reader, exc.drain)
                return
            response = await self._dispatch(request)
            keep = _wants_keep_alive(request) and served + 1 < self.limits.requests_per_connection
            keep = keep and response.status < 500 and response.status != HTTPStatus.TOO_MANY_REQUESTS
            LOG.debug("request", extra={"client": client, "method": request.method, "path": request.path,
                                        "status": response.status, "seconds": round(time.monotonic() - started, 4)})
            if not await self._write(writer, response, keep, head=request.method == "HEAD") or not keep:
                return

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: str,
                    idle: float | None) -> Request:
        """One request. The first one of a connection must arrive within `request_seconds` of the connect; on a
        kept-alive connection the next may start within `idle_seconds`, then gets the same budget."""
        progress = _Progress()
        if idle is not None:
            try:
                progress.pending = await asyncio.wait_for(reader.read(1), idle)
            except (asyncio.TimeoutError, ConnectionError):
                raise _Closed() from None
            if not progress.pending:
                raise _Closed()
        try:
            async with asyncio.timeout(self.limits.request_seconds):
                if not progress.pending:
                    progress.pending = await reader.read(1)
                    if not progress.pending:
                        raise _Closed()
                method, target, headers = await self._head(reader, progress)
                progress.body = True
                body = await self._body(reader, writer, headers)
        except TimeoutError:
            if progress.body:
                raise HttpError(HTTPStatus.BAD_REQUEST, "body shorter than its Content-Length after "
                                                        f"{self.limits.request_seconds:g} s") from None
            if not progress.pending and not progress.started:
                raise _Closed() from None  # connected and said nothing
            raise HttpError(HTTPStatus.REQUEST_TIMEOUT,
                            f"request head not complete within {self.limits.request_seconds:g} s") from None
        url = urlsplit(target)
        try:
            query = parse_qs(url.query, max_num_fields=32)
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "too many query parameters") from None
        return Request(method, url.path, query, headers, body, client)

    async def _line(self, reader: asyncio.StreamReader, progress: "_Progress") -> bytes:
        pending, progress.pending = progress.pending, b""
        progress.started = True
        if pending == b"\n":
            return pending
        try:
            return pending + await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "connection closed inside the request head") from None
        except asyncio.LimitOverrunError:
            raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                            f"request head over {self.limits.header_bytes} bytes") from None

    async def _head(self, reader: asyncio.StreamReader, progress: "_Progress") -> tuple[str, str, dict[str, str]]:
        line = await self._line(reader, progress)
        for _ in range(8):  # RFC 9112: a server should ignore empty lines before the request line
            if line not in (b"\r\n", b"\n"):
                break
            line = await self._line(reader, progress)
        parts = line.rstrip(b"\r\n").split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1].startswith(b"/"):
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request line")
        method, target, version = (p.decode("ascii", "replace") for p in parts)
        if not set(method) <= TOKEN_CHARS or any(c <= " " or c > "~" for c in target):
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request line")
        if version not in ("HTTP/1.0", "HTTP/1.1"):
            raise HttpError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "only HTTP/1.0 and HTTP/1.1 are served")
        headers: dict[str, str] = {"": version}
        size = len(line)
        for count in range(self.limits.headers + 2):
            line = await self._line(reader, progress)
            size += len(line)
            if size > self.limits.header_bytes or count > self.limits.headers:
                raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
            if line in (b"\r\n", b"\n"):
                return method, target, headers
            name, sep, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            # No folding, no space before the colon: ambiguous heads are how requests get smuggled.
            if not sep or not name or not set(name) <= TOKEN_CHARS:
                raise HttpError(HTTPStatus.BAD_REQUEST, "malformed header line")
            key, value = name.lower(), value.strip(" \t")
            if key in headers and key in SINGLE_HEADERS:
                raise HttpError(HTTPStatus.BAD_REQUEST, f"duplicate {name} header")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header lines")

    async def _body(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]) -> bytes:
        if "transfer-encoding" in headers:
            raise HttpError(HTTPStatus.NOT_IMPLEMENTED, "Transfer-Encoding is not supported: send Content-Length")
        text = headers.get("content-length", "0")
        if not text.isdigit() or len(text) > 12:
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        length = int(text)
        expects = headers.get("expect", "").lower() == "100-continue"
        if length > self.limits.body_bytes:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {self.limits.body_bytes} bytes",
                            drain=0 if expects else min(length, self.limits.drain_bytes))
        if not length:
            return b""
        if expects and headers[""] == "HTTP/1.1":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            return await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            f"body shorter than its Content-Length ({len(exc.partial)} of {length} bytes)") from None

    async def _drain(self, reader: asyncio.StreamReader, budget: int) -> None:
        """Read and drop what the client still sends of a refused body (bounded in bytes and time)."""
        try:
            async with asyncio.timeout(self.limits.request_seconds):
                while budget > 0:
                    chunk = await reader.read(min(65536, budget))
                    if not chunk:
                        return
                    budget -= len(chunk)
        except (TimeoutError, ConnectionError):
            return

    # -- work --

    async def _dispatch(self, request: Request) -> Response:
        if self._busy >= self.limits.workers + self.limits.waiting:
            log_refusal(request.client, HTTPStatus.SERVICE_UNAVAILABLE, "all workers busy")
            response = self.error_body(HTTPStatus.SERVICE_UNAVAILABLE, "busy, retry shortly")
            response.headers["Retry-After"] = "1"
            return response
        self._busy += 1
        try:
            return await self._loop.run_in_executor(self._pool, self._call, request)
        finally:
            self._busy -= 1

    def _call(self, request: Request) -> Response:
        try:
            return self.handler(request)
        except Exception:  # noqa: BLE001 - a handler bug answers 500 and is logged, the server goes on
            LOG.exception("request failed", extra={"method": request.method, "path": request.path})
            return self.error_body(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (logged by the agent)")

    async def _write(self, writer: asyncio.StreamWriter, response: Response, keep_alive: bool,
                     head: bool = False) -> bool:
        lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}", f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(response.body)}", f"Connection: {'keep-alive' if keep_alive else 'close'}",
                 "Cache-Control: no-store", "X-Content-Type-Options: nosniff"]
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else response.body))
        try:
            # A client that does not read its answer is cut off, at a pace of at least 64 KiB/s.
            await asyncio.wait_for(writer.drain(), self.limits.request_seconds + len(response.body) / 65536)
        except (asyncio.TimeoutError, ConnectionError):
            writer.transport.abort()
            return False
        if not keep_alive and writer.can_write_eof():
            writer.write_eof()
        return True

def _client(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else "local"


def _wants_keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.headers.get("") == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


@dataclass
class _Progress:
    pending: bytes = b""  # the request's first byte, read ahead to tell an idle connection from a slow request
    started: bool = False
    body: bool = False  # the head is complete, the body is being read


class _RateLimitedLog:
    """Refused requests are logged as JSON lines, at most `per_second` a second (a flood must not fill the disk);
    the next line says how many were left out."""

    def __init__(self, per_second: float = 10.0):
        self.per_second = per_second
        self._window = 0.0
        self._count = 0
        self._suppressed = 0
        self._lock = threading.Lock()

    def log(self, client: str, status: int, why: str, **extra: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._window >= 1.0:
                self._window, self._count = now, 0
            self._count += 1
            if self._count > self.per_second:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
        LOG.warning("request refused", extra={"client": client, "status": status, "error": why, **extra,
                                              **({"suppressed": suppressed} if suppressed else {})})


log_refusal = _RateLimitedLog().log
