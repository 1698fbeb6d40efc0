"""The lab's JSON state file: what was made, written *before* making it, so `down` can undo a partial `up`."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

STATE_FILE = "lab.json"
log = logging.getLogger(__name__)


def load(state_dir: Path, name: str = STATE_FILE) -> dict[str, Any]:
    """The recorded state; an absent, truncated or corrupt file reads as empty (down then scans instead)."""
    try:
        data = json.loads((state_dir / name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(state_dir: Path, data: dict[str, Any], name: str = STATE_FILE) -> None:
    path = state_dir / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def forget(state_dir: Path, name: str = STATE_FILE) -> None:
    """Remove the state file (and a half-written one), then the state directory if nothing else is left in it."""
    for f in (name, name.replace(".json", ".tmp")):
        (state_dir / f).unlink(missing_ok=True)
    try:
        state_dir.rmdir()
    except OSError:
        pass  # not empty (someone else's files) or already gone


def undo_failed_bring_up(what: str, state_dir: Path, record: dict[str, Any], down: Callable[[], object],
                         name: str = STATE_FILE) -> None:
    """Record a failed bring-up, then remove what it made; a failing cleanup is logged, never raised (the
    bring-up's own error is the one to report)."""
    record["phase"] = "failed"
    save(state_dir, record, name)
    log.warning("%s: bring-up failed; removing what it made", what)
    try:
        down()
    except Exception as exc:  # noqa: BLE001
        log.error("%s: cleanup after the failed bring-up failed too: %s", what, exc)
