"""The in-memory store of raw Kubernetes objects behind `KubeSource`: one lock, one condition, one generation counter.

Objects are the dicts decoded from the API. The store never mutates one in place (an update replaces it), so a
snapshot can share them with the store instead of deep-copying; readers must treat them as read-only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from .kube_api import RawObject


class ObjectKey(NamedTuple):
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return ObjectKey(str(obj.get("kind", "")), str(metadata.get("namespace") or ""), str(metadata.get("name", "")))


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of every object at one generation. Generations only grow; same generation, same content."""

    generation: int
    objects: Mapping[ObjectKey, Mapping[str, Any]]

    def of_kind(self, kind: str) -> list[Mapping[str, Any]]:
        return [obj for key, obj in sorted(self.objects.items()) if key.kind == kind]


@dataclass(frozen=True)
class ResourceHealth:
    """How fresh our copy of one resource is. `last_success` is wall-clock seconds of the last contact that worked."""

    resource: str
    available: bool | None  # None until the first answer says whether the API is served
    up: bool
    synced: bool
    last_success: float | None
    resource_version: str | None  # the last one seen (list, event or bookmark): where a watch resumes
    last_error: str | None
    last_error_temporary: bool | None
    consecutive_failures: int
    relists: int
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def staleness_seconds(self) -> float:
        """Seconds since the last successful contact; infinite if there never was one."""
        if self.last_success is None:
            return float("inf")
        return max(0.0, self.clock() - self.last_success)


class Store:
    """Objects of all kinds plus per-resource health, guarded by one condition that every change notifies."""

    def __init__(self, resources: Iterable[str], clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._objects: dict[ObjectKey, RawObject] = {}
        self._generation = 0
        self._snapshot = Snapshot(0, MappingProxyType({}))
        self._health = {
            name: ResourceHealth(name, None, False, False, None, None, None, None, 0, 0, clock) for name in resources
        }

    # -- readers ---------------------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._cond:
            # Built at most once per generation: repeated readers of an unchanged store share one copy.
            if self._snapshot.generation != self._generation:
                self._snapshot = Snapshot(self._generation, MappingProxyType(dict(self._objects)))
            return self._snapshot

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def wait_for_change(self, generation: int, timeout: float | None) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._generation != generation, timeout)
            return self._generation

    def health(self) -> Mapping[str, ResourceHealth]:
        with self._cond:
            return MappingProxyType(dict(self._health))

    def synced(self) -> bool:
        with self._cond:
            return self._synced_locked()

    def _synced_locked(self) -> bool:
        # An unavailable API counts as synced (there is nothing to list); an unanswered one does not.
        return all(h.synced or h.available is False for h in self._health.values())

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Block until `predicate()` (called under the lock, so it may only read this store) holds."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_for_sync(self, timeout: float | None) -> bool:
        return self.wait_until(self._synced_locked, timeout)

    # -- writers (called by the resource threads) -----------------------------------------------------------------

    def replace_kind(
        self, resource: str, kind: str, items: Iterable[RawObject], resource_version: str, relist: bool
    ) -> None:
        """Install a complete list of one kind: what is absent from it was deleted while we were not watching."""
        fresh = {key_of(obj): obj for obj in items}
        with self._cond:
            current = {key: obj for key, obj in self._objects.items() if key.kind == kind}
            if current != fresh:
                for key in current.keys() - fresh.keys():
                    del self._objects[key]
                self._objects.update(fresh)
                self._generation += 1
            self._update_health(resource, resource_version, available=True, synced=True, relists_delta=int(relist))

    def apply_event(self, resource: str, event_type: str, obj: RawObject) -> None:
        key = key_of(obj)
        with self._cond:
            if event_type == "DELETED":
                changed = self._objects.pop(key, None) is not None
            else:
                changed = self._objects.get(key) != obj
                self._objects[key] = obj
            if changed:
                self._generation += 1
            self._update_health(resource, (obj.get("metadata") or {}).get("resourceVersion"))

    def mark_contact(self, resource: str, resource_version: str | None = None) -> None:
        """The server answered (a bookmark, a watch that timed out): our copy is current as of now."""
        with self._cond:
            self._update_health(resource, resource_version)

    def mark_unavailable(self, resource: str, kind: str, message: str) -> None:
        """The API is not served: whatever we held of it is gone with its CRD."""
        with self._cond:
            doomed = [key for key in self._objects if key.kind == kind]
            for key in doomed:
                del self._objects[key]
            if doomed:
                self._generation += 1
            old = self._health[resource]
            self._set_health(
                old, available=False, up=False, synced=False, resource_version=None, last_error=message,
                last_error_temporary=False,
            )

    def mark_failure(self, resource: str, error: str, temporary: bool) -> None:
        with self._cond:
            old = self._health[resource]
            self._set_health(
                old,
                up=False,
                last_error=error,
                last_error_temporary=temporary,
                consecutive_failures=old.consecutive_failures + 1,
            )

    def _update_health(
        self,
        resource: str,
        resource_version: str | None,
        available: bool | None = None,
        synced: bool | None = None,
        relists_delta: int = 0,
    ) -> None:
        old = self._health[resource]
        self._set_health(
            old,
            resource_version=old.resource_version if resource_version is None else str(resource_version),
            available=old.available if available is None else available,
            synced=old.synced if synced is None else synced,
            up=True,
            last_success=self._clock(),
            consecutive_failures=0,
            relists=old.relists + relists_delta,
        )

    def _set_health(self, old: ResourceHealth, **changes: Any) -> None:
        fields = {**old.__dict__, **changes}
        self._health[old.resource] = ResourceHealth(**fields)
        self._cond.notify_all()
