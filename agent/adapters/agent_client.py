"""A client of a running agent's HTTP API (`segcheck drift --agent`, `segcheck probe --agent`)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class AgentUnreachable(RuntimeError):
    """The agent could not be asked, or refused: the check could not be made."""


def read_token(token: str | None, token_file: str | None) -> str | None:
    """--token-file, else --token, else $SEGCHECK_TOKEN."""
    if token_file:
        try:
            return Path(token_file).read_text().strip()
        except OSError as exc:
            raise AgentUnreachable(f"cannot read the token file {token_file}: {exc.strerror}") from None
    return token or os.environ.get("SEGCHECK_TOKEN")


@dataclass(frozen=True)
class AgentClient:
    url: str
    token: str | None = None
    timeout: float = 30.0

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method="POST" if body is not None else "GET")
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - the user names the agent URL
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                detail = exc.reason
            raise AgentUnreachable(f"agent answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise AgentUnreachable(f"cannot reach the agent at {self.url}: {exc}") from None

    def drift(self, network: str | None = None) -> dict[str, Any]:
        return self._state("/v1/drift", network)

    def matrix(self, network: str | None = None) -> dict[str, Any]:
        """Every cell the agent checks, with the halves its node's zone judged."""
        return self._state("/v1/matrix", network)

    def _state(self, path: str, network: str | None) -> dict[str, Any]:
        query = "?" + urllib.parse.urlencode({"network": network}) if network else ""
        data = self._call(path + query)
        if not isinstance(data, dict) or "networks" not in data:
            raise AgentUnreachable(f"agent has no evaluation yet: {data.get('error', data) if isinstance(data, dict) else data}")
        return data

    def probe(self, source: str, destination: str, network: str | None = None,
              namespace: str | None = None) -> dict[str, Any]:
        body = {"from": source, "to": destination, **({"network": network} if network else {}),
                **({"namespace": namespace} if namespace else {})}
        data = self._call("/v1/probe", body)
        if not isinstance(data, dict):
            raise AgentUnreachable(f"agent answered with {type(data).__name__}, not an object")
        return data
