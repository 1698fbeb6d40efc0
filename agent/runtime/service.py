"""The agent as a service: the loop, its metrics and HTTP API, started and stopped together."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..adapters.auth import Access, Authorizer
from ..adapters.http_api import ApiServer, Routes
from ..adapters.http_server import Limits
from ..adapters.metrics import DEFAULT_MAX_DRIFT_PAIRS, exposition, registry_for
from ..core.drift import summarize
from ..core.model import AddressEndpoint, Ref
from ..core.render import cell_json
from ..core.resolve import ResolveError, asked_family, resolve_pair, split_target
from ..core.state import AgentState
from .agent import Agent

LOG = logging.getLogger("segcheck.agent")


def state_json(state: AgentState, wanted: frozenset[str], drift_only: bool) -> dict[str, Any]:
    nets = []
    for n in state.networks:
        if wanted and str(n.network) not in wanted:
            continue
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
    def __init__(self, agent: Agent, host: str, port: int, authorize: Authorizer, stale_after: float | None = None,
                 *, metrics_access: Access | None = None, tls: tuple[Path, Path] | None = None,
                 limits: Limits = Limits(), max_drift_pairs: int = DEFAULT_MAX_DRIFT_PAIRS):
        self.agent = agent
        self.registry = registry_for(lambda: agent.state, max_drift_pairs)
        self.stale_after = stale_after if stale_after is not None else max(60.0, agent.interval * 3)
        self.server = ApiServer(host, port, Routes(
            metrics=lambda: exposition(self.registry),
            healthy=self._healthy,
            ready=self._ready,
            cells=self._cells,
            probe=self._probe,
            authorize=authorize,
            metrics_access=metrics_access,
        ), limits, tls)

    @property
    def port(self) -> int:
        return self.server.port

    def _cells(self, wanted: frozenset[str], drift_only: bool) -> tuple[int, Any]:
        state = self.agent.state
        if state is None or not self.agent.declared.synced():
            return 503, {"error": "no evaluation yet" if state is None else "declared state not synced yet"}
        missing = sorted(wanted - {str(n.network) for n in state.networks})
        if missing:
            return 404, {"error": f"no network {', '.join(missing)[:200]} on this agent"}
        return 200, state_json(state, wanted, drift_only)

    def _healthy(self) -> tuple[bool, str]:
        if not self.agent.alive():
            return False, "agent loop not running"
        age = self.agent.clock() - self.agent.loop_heartbeat
        if age > self.stale_after:
            return False, f"agent loop stuck for {age:.0f} s"
        return True, "ok"

    def _ready(self) -> tuple[bool, str]:
        """Ready when the verdicts can be trusted: evaluated, and every source up and fresh (a source that is
        down or stale is named; Prometheus still scrapes a pod that is not ready)."""
        state = self.agent.state
        if state is None:
            return False, "no evaluation yet"
        if not self.agent.declared.synced():
            return False, "declared state not synced yet"
        down = [f"{s.name} down" + (f" ({s.detail})" if s.detail else "") for s in state.sources
                if s.configured and not s.up]
        stale = [f"{s.name} stale for {s.staleness_seconds:.0f} s" for s in state.sources
                 if s.up and s.staleness_seconds > self.stale_after]
        kept = [e for e in state.declared_errors if e.kept]
        if kept:
            stale.append(f"{kept[0].source}: {len(kept)} object(s) served from their last good version ({kept[0].message})")
        return (False, "; ".join(down + stale)) if down or stale else (True, "ok")

    def _probe(self, body: dict[str, str]) -> tuple[int, Any]:
        source, destination = body.get("from"), body.get("to")
        if not source or not destination:
            return 400, {"error": "body needs string fields 'from' and 'to' (e.g. {\"from\": \"vm-server\", \"to\": \"db:5432\"})"}
        inventory, _ = self.agent.declared.inventory()
        try:
            target = split_target(destination)
            if target.port is None:
                raise ResolveError("'to' needs a port")
            network = Ref.parse(body["network"], "default") if body.get("network") else None
            net, src, dst = resolve_pair(inventory, source, target.text, network, body.get("namespace"))
            family = asked_family(source, target.text)  # dual-stack: an address typed picks the family probed
        except (ResolveError, ValueError) as exc:
            return 400, {"error": str(exc)}
        undeclared = [e.key for e in (src, dst) if isinstance(e, AddressEndpoint)]
        if undeclared:
            # The agent sends packets only to what the declared state names: no scanning through the API.
            return 403, {"error": f"{', '.join(undeclared)} is not a declared workload or external endpoint; the "
                                  "agent probes only those (segcheck probe on the node probes any address)"}
        try:
            cell = self.agent.probe_now(net, src, dst, target.port, target.protocol, inventory, family)
        except KeyError as exc:  # no check point: e.g. the pair has no address of the family typed
            return 400, {"error": str(exc).strip("'\"")}
        return 200, {"network": str(net), **cell_json(cell)}

    def start(self) -> None:
        self.agent.start()
        self.server.start()
        LOG.info("agent started", extra={"node": self.agent.node, "port": self.port, "scheme": self.server.scheme})

    def stop(self) -> None:
        self.server.stop()
        self.agent.stop()
        LOG.info("agent stopped")
