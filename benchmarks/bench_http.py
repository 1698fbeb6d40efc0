#!/usr/bin/env python3
"""The agent's HTTP server under concurrent clients, with and without idle connections held open, against a
baseline in the same run: the standard library's ThreadingHTTPServer (listen backlog 5, a thread per
connection, no deadlines), which is what the agent served with before.

Pure (no lab, no root), loopback only. Each scenario: `--clients` threads, each making `--requests` GETs of a
~8 KiB /metrics body, after `--idle` connections were opened and left silent. Prints requests/s, errors (a
request that fails or takes longer than 10 s), p50/p99 latency, and ratios to the baseline; not a pass/fail test.

Run: python3 benchmarks/bench_http.py [--clients 50] [--requests 100] [--idle 500]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segcheck.agent.adapters.auth import TokenFileAuth
from segcheck.agent.adapters.http_api import ApiServer, Routes

BODY = b"segcheck_example_series 1\n" * 320
REQUEST_TIMEOUT = 10.0


class Baseline(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


class BaselineServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (counted as an error on its side)


def scenario(port: int, clients: int, requests: int, idle: int) -> dict[str, float]:
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]

    def client(_: int) -> tuple[list[float], int]:
        latencies, errors = [], 0
        for _ in range(requests):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=REQUEST_TIMEOUT) as resp:
                    resp.read()
                latencies.append(time.perf_counter() - started)
            except OSError:
                errors += 1
        return latencies, errors

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    for s in held:
        s.close()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    pick = (lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000) if latencies else (lambda q: float("nan"))
    return {"req/s": len(latencies) / wall, "errors": errors, "p50 ms": pick(0.5), "p99 ms": pick(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--idle", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        token = Path(folder) / "token"
        token.write_text("bench\n")
        ours = ApiServer("127.0.0.1", 0, Routes(
            metrics=lambda: BODY, healthy=lambda: (True, "ok"), ready=lambda: (True, "ok"),
            cells=lambda wanted, drift: (200, {}), probe=lambda body: (200, {}), authorize=TokenFileAuth(token)))
        baseline = BaselineServer(("127.0.0.1", 0), Baseline)
        threading.Thread(target=baseline.serve_forever, daemon=True).start()
        ours.start()
        try:
            print(f"{args.clients} clients x {args.requests} GET /metrics ({len(BODY)} bytes)")
            for idle in (0, args.idle):
                base = scenario(baseline.server_address[1], args.clients, args.requests, idle)
                mine = scenario(ours.port, args.clients, args.requests, idle)
                print(f"\nwith {idle} idle connections held open")
                print(f"{'server':<28}{'req/s':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}")
                for name, row in (("stdlib ThreadingHTTPServer", base), ("segcheck ApiServer", mine)):
                    print(f"{name:<28}{row['req/s']:>9.0f}{row['errors']:>8.0f}{row['p50 ms']:>9.1f}{row['p99 ms']:>9.1f}")
                print(f"ratio (segcheck / baseline): req/s {mine['req/s'] / base['req/s']:.2f}, "
                      f"p99 {mine['p99 ms'] / base['p99 ms']:.2f}")
        finally:
            ours.stop()
            baseline.shutdown()
            baseline.server_close()


if __name__ == "__main__":
    main()
