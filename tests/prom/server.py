"""A real Prometheus (`/usr/bin/prometheus`) as a plain child process on 127.0.0.1, for tests.

It scrapes the targets it is given every second, each in its job (`segcheck` unless the target says), may load rule files, and answers
PromQL through its HTTP API. Readiness and results are awaited by polling with a deadline; the pause between
polls is a wait on the child process itself, so a Prometheus that dies is noticed at once. It is stopped by PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

PROMETHEUS_BIN = "/usr/bin/prometheus"
PROMTOOL_BIN = "/usr/bin/promtool"
HOST = "127.0.0.1"
JOB = "segcheck"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1

Vector = list[dict[str, Any]]
T = TypeVar("T")


class PrometheusError(RuntimeError):
    """Prometheus did not start, died, or answered an error."""


@dataclass(frozen=True)
class ScrapeTarget:
    """What a job scrapes: `host:port`, plus the target labels a ServiceMonitor would add."""

    address: str
    labels: dict[str, str] = field(default_factory=dict)
    job: str = JOB


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def scrape_config(targets: Sequence[ScrapeTarget], rule_files: Sequence[Path] = ()) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{
            "job_name": job,
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "static_configs": [{"targets": [t.address], "labels": dict(t.labels)} for t in targets if t.job == job],
        } for job in sorted({t.job for t in targets})],
    }


class Prometheus:
    """A running Prometheus child process and a small client for its HTTP API."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise PrometheusError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")

    def pause(self, seconds: float) -> None:
        """Wait on the child process: returns after `seconds`, raises if Prometheus exits meanwhile."""
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return
        self.check_alive()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def get(self, path: str, params: dict[str, str] | None = None, timeout: float = 5.0) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            with urllib.request.urlopen(self.url + path + query, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            raise PrometheusError(f"GET {path} {params}: HTTP {exc.code}: {body.decode(errors='replace')}") from exc
        payload = json.loads(body)
        if payload.get("status") != "success":
            raise PrometheusError(f"GET {path} {params}: {payload}")
        return payload["data"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def query(self, expr: str) -> Vector:
        """Instant query; returns the result vector (a scalar comes back as a one-element vector)."""
        data = self.get("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr}: expected a vector, got {data['resultType']}")
        return list(data["result"])

    def wait_until(self, condition: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
        """Poll `condition()` until it returns something other than None; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value is not None:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what}: not within {timeout}s")
            self.pause(POLL_INTERVAL)

    def wait_for(self, expr: str, predicate: Callable[[Vector], bool] = bool, timeout: float = 20.0) -> Vector:
        """Poll `expr` until `predicate(result)` holds; raise TimeoutError with the last result otherwise."""
        last: list[Vector] = [[]]

        def check() -> Vector | None:
            last[0] = self.query(expr)
            return last[0] if predicate(last[0]) else None

        try:
            return self.wait_until(check, repr(expr), timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last result: {last[0]}") from None

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/rules")["groups"])

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL by PID if it does not exit in time; always reaps the child."""
        if self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT)


def _start(workdir: Path, targets: Sequence[ScrapeTarget], rule_files: Sequence[Path], binary: str) -> Prometheus:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(targets, rule_files), sort_keys=False))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address={HOST}:{port}", "--log.level=info"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    return Prometheus(process, f"http://{HOST}:{port}", log_path)


@contextmanager
def running_prometheus(workdir: Path, targets: Sequence[ScrapeTarget], rule_files: Sequence[Path] = (),
                       binary: str = PROMETHEUS_BIN, start_timeout: float = START_TIMEOUT) -> Iterator[Prometheus]:
    """Start Prometheus, wait until `/-/ready` answers 200 (deadline `start_timeout`), yield it, stop it by PID."""
    prometheus = _start(workdir, targets, rule_files, binary)
    try:
        deadline = time.monotonic() + start_timeout
        while not prometheus.ready():
            prometheus.check_alive()
            if time.monotonic() >= deadline:
                raise PrometheusError(f"prometheus not ready within {start_timeout}s:\n{prometheus.log_tail()}")
            prometheus.pause(POLL_INTERVAL)
        yield prometheus
    finally:
        prometheus.stop()
