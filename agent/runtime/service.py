"""The agent as a service: the loop, its metrics and HTTP API, started and stopped together."""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..adapters.http_api import ApiServer, Routes
from ..adapters.metrics import exposition, registry_for
from ..core.drift import cell_json, summarize
from ..core.model import Ref
from ..core.resolve import ResolveError, resolve_pair, split_target
from ..core.state import AgentState
from .agent import Agent

LOG = logging.getLogger("segcheck.agent")


def _networks(state: AgentState, query: dict[str, list[str]]) -> list[Any]:
    wanted = set(query.get("network", []))
    return [n for n in state.networks if not wanted or str(n.network) in wanted]


def state_json(state: AgentState, query: dict[str, list[str]], drift_only: bool) -> dict[str, Any]:
    nets = []
    for n in _networks(state, query):
        cells = [c for c in n.cells if c.drift] if drift_only else list(n.cells)
        nets.append({
            "network": str(n.network),
            "drift": summarize(n.cells),
            "cells": [cell_json(c) for c in cells],
            "findings": [f.to_json() for f in n.findings],
            "mapping": None if n.mapping is None else {"localnet": n.mapping.localnet, "bridge": n.mapping.bridge,
                                                        "ok": n.mapping.ok},
        })
    return {
        "node": state.node,
        "evaluated_at": state.evaluated_at,
        "last_drift_change": state.last_drift_change,
        "sources": [{"source": s.name, "up": s.up, "staleness_seconds": s.staleness_seconds, "detail": s.detail}
                    for s in state.sources],
        "declared_errors": [{"source": e.source, "kind": e.kind, "error": e.message, "kept_last_good": e.kept}
                            for e in state.declared_errors],
        "findings": [f.to_json() for f in state.unplaced_findings],  # those of no network
        "networks": nets,
    }


class AgentService:
    def __init__(self, agent: Agent, host: str, port: int, authenticate: Callable[[str | None], str],
                 stale_after: float | None = None):
        self.agent = agent
        self.registry = registry_for(lambda: agent.state)
        self.stale_after = stale_after if stale_after is not None else max(60.0, agent.interval * 3)
        self.server = ApiServer(host, port, Routes(
            metrics=lambda: exposition(self.registry),
            healthy=self._healthy,
            ready=self._ready,
            matrix=lambda q: self._with_state(lambda s: state_json(s, q, drift_only=False)),
            drift=lambda q: self._with_state(lambda s: state_json(s, q, drift_only=True)),
            probe=self._probe,
            authenticate=authenticate,
        ))

    @property
    def port(self) -> int:
        return self.server.port

    def _with_state(self, fn: Callable[[AgentState], Any]) -> Any:
        state = self.agent.state
        return {"error": "no evaluation yet"} if state is None else fn(state)

    def _healthy(self) -> tuple[bool, str]:
        if not self.agent.alive():
            return False, "agent loop not running"
        age = self.agent.clock() - self.agent.loop_heartbeat
        if age > self.stale_after:
            return False, f"agent loop stuck for {age:.0f} s"
        return True, "ok"

    def _ready(self) -> tuple[bool, str]:
        if self.agent.state is None:
            return False, "no evaluation yet"
        if not self.agent.declared.synced():
            return False, "declared state not synced yet"
        state = self.agent.state
        stale = [f"{s.name} down" + (f" ({s.detail})" if s.detail else "") for s in state.sources
                 if s.configured and not s.up]
        kept = [e for e in state.declared_errors if e.kept]
        if kept:
            stale.append(f"{kept[0].source}: {len(kept)} object(s) served from their last good version ({kept[0].message})")
        return (False, "; ".join(stale)) if stale else (True, "ok")

    def _probe(self, body: dict[str, Any]) -> tuple[int, Any]:
        source, destination = body.get("from"), body.get("to")
        if not isinstance(source, str) or not isinstance(destination, str):
            return 400, {"error": "body needs string fields 'from' and 'to' (e.g. {\"from\": \"vm-server\", \"to\": \"db:5432\"})"}
        inventory, _ = self.agent.declared.inventory()
        try:
            target = split_target(destination)
            if target.port is None:
                raise ResolveError("'to' needs a port")
            network = Ref.parse(body["network"], "default") if isinstance(body.get("network"), str) else None
            net, src, dst = resolve_pair(inventory, source, target.text, network, body.get("namespace"))
        except (ResolveError, ValueError) as exc:
            return 400, {"error": str(exc)}
        cell = self.agent.probe_now(net, src, dst, target.port, target.protocol, inventory)
        return 200, cell_json(cell)

    def start(self) -> None:
        self.agent.start()
        self.server.start()
        LOG.info("agent started", extra={"node": self.agent.node, "port": self.port})

    def stop(self) -> None:
        self.server.stop()
        self.agent.stop()
        LOG.info("agent stopped")
