"""The fake API server's cluster state: objects, one global resourceVersion, an event history with compaction.

Watchers read the history under one condition; every mutation and every control action notifies it.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class FakeResource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: dict[str, FakeResource] = {
    r.plural: r
    for r in (
        FakeResource("", "v1", "pods", "Pod", True),
        FakeResource("", "v1", "namespaces", "Namespace", False),
        FakeResource("k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition", True),
        FakeResource("k8s.cni.cncf.io", "v1beta1", "multi-networkpolicies", "MultiNetworkPolicy", True),
        FakeResource("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance", True),
        FakeResource("segcheck.io", "v1alpha1", "externalendpoints", "ExternalEndpoint", True),
    )
}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES.values()}


def resource_of(obj: Obj) -> FakeResource:
    try:
        return _BY_KIND[(obj["apiVersion"], obj["kind"])]
    except KeyError:
        raise ValueError(f"fake server does not serve {obj.get('apiVersion')}/{obj.get('kind')}") from None


def status_object(code: int, reason: str, message: str) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


@dataclass(frozen=True)
class Event:
    rv: int
    resource: str
    type: str
    obj: Obj


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    authorization: str | None
    at: float  # time.monotonic() on arrival

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


class Cluster:
    """Objects keyed by (plural, namespace, name); history holds every event with rv > `compacted_rv`."""

    def __init__(self, first_resource_version: int = 1000) -> None:
        self.cond = threading.Condition()
        self.rv = first_resource_version
        self.compacted_rv = first_resource_version
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.history: list[Event] = []
        self.unavailable: set[str] = set()
        self.requests: list[Request] = []
        self.pending_failures: list[tuple[int, str | None]] = []  # (status, resource or None for any)
        self.watch_epoch = 0  # bumped to end every open watch
        self.bookmark_epoch = 0  # bumped to make every open watch send a bookmark
        self.continues: dict[str, tuple[int, list[Obj]]] = {}
        self.open_watches: dict[str, int] = {plural: 0 for plural in RESOURCES}
        self._uids = itertools.count(1)
        self._tokens = itertools.count(1)

    # -- mutations ----------------------------------------------------------------------------------------------

    def _record(self, resource: FakeResource, event_type: str, obj: Obj) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append(Event(self.rv, resource.plural, event_type, copy.deepcopy(obj)))
        self.cond.notify_all()
        return copy.deepcopy(obj)

    def _key(self, resource: FakeResource, obj: Obj) -> tuple[str, str, str]:
        metadata = obj.setdefault("metadata", {})
        if resource.namespaced:
            metadata.setdefault("namespace", "default")
        return resource.plural, metadata.get("namespace", ""), metadata["name"]

    def create(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        resource = resource_of(obj)
        with self.cond:
            key = self._key(resource, obj)
            if key in self.objects:
                raise ValueError(f"{key} already exists")
            obj["metadata"].setdefault("uid", f"uid-{next(self._uids)}")
            obj["metadata"].setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self.objects[key] = obj
            return self._record(resource, "ADDED", obj)

    def update(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        resource = resource_of(obj)
        with self.cond:
            key = self._key(resource, obj)
            old = self.objects[key]
            for field in ("uid", "creationTimestamp"):
                obj["metadata"][field] = old["metadata"][field]
            self.objects[key] = obj
            return self._record(resource, "MODIFIED", obj)

    def delete(self, obj: Obj) -> Obj:
        resource = resource_of(obj)
        with self.cond:
            key = self._key(resource, copy.deepcopy(obj))
            return self._record(resource, "DELETED", self.objects.pop(key))

    def compact(self) -> None:
        with self.cond:
            self.history.clear()
            self.compacted_rv = self.rv
            self.continues.clear()  # continue tokens point into compacted history too
            self.cond.notify_all()

    # -- reads for the HTTP layer -------------------------------------------------------------------------------

    def list_objects(self, resource: FakeResource, namespace: str | None) -> tuple[int, list[Obj]]:
        with self.cond:
            items = [copy.deepcopy(o) for (plural, ns, _), o in sorted(self.objects.items())
                     if plural == resource.plural and namespace in (None, ns)]
            return self.rv, items

    def save_continue(self, rv: int, rest: list[Obj]) -> str:
        with self.cond:
            token = f"c{next(self._tokens)}"
            self.continues[token] = (rv, rest)
            return token

    def take_failure(self, resource: str) -> int | None:
        with self.cond:
            for index, (status, only) in enumerate(self.pending_failures):
                if only in (None, resource):
                    del self.pending_failures[index]
                    return status
            return None

    def watch(self, resource: FakeResource, namespace: str | None, since: int | None, timeout: float,
              bookmarks: bool, alive: threading.Event) -> Generator[dict[str, Any], None, None]:
        """Events of one resource after `since` until `timeout`, `close_watches()` or the server stops."""
        deadline = time.monotonic() + timeout
        with self.cond:
            epoch, bookmark_epoch = self.watch_epoch, self.bookmark_epoch
            if since is None:  # no resourceVersion: synthetic ADDED for the current state, as a real server does
                position, initial = self.rv, self.list_objects(resource, namespace)[1]
            else:
                position, initial = since, []
            self.open_watches[resource.plural] += 1
            self.cond.notify_all()
        try:
            yield from self._stream(resource, namespace, initial, position, epoch, bookmark_epoch, deadline,
                                    bookmarks, alive)
        finally:
            with self.cond:
                self.open_watches[resource.plural] -= 1
                self.cond.notify_all()

    def _stream(self, resource: FakeResource, namespace: str | None, initial: list[Obj], position: int, epoch: int,
                bookmark_epoch: int, deadline: float, bookmarks: bool,
                alive: threading.Event) -> Iterator[dict[str, Any]]:
        def mine(event: Event) -> bool:
            return event.resource == resource.plural and namespace in (None, event.obj["metadata"].get("namespace"))

        for obj in initial:
            yield {"type": "ADDED", "object": obj}
        while True:
            with self.cond:
                self.cond.wait_for(
                    lambda: (self.rv > position or self.watch_epoch != epoch or self.compacted_rv > position
                             or self.bookmark_epoch != bookmark_epoch or not alive.is_set()
                             or time.monotonic() >= deadline),
                    max(0.0, deadline - time.monotonic()),
                )
                if self.watch_epoch != epoch or not alive.is_set():
                    return
                expired = (f"too old resource version: {position} ({self.compacted_rv})"
                           if position < self.compacted_rv else None)
                events = [copy.deepcopy(e) for e in self.history if e.rv > position and mine(e)]
                position = self.rv
                bookmark_now = self.bookmark_epoch != bookmark_epoch or time.monotonic() >= deadline
                bookmark_epoch = self.bookmark_epoch
                timed_out = time.monotonic() >= deadline
            if expired:  # events this watcher still owed were compacted away
                yield {"type": "ERROR", "object": status_object(410, "Expired", expired)}
                return
            for event in events:
                yield {"type": event.type, "object": event.obj}
            if bookmarks and bookmark_now:
                yield {"type": "BOOKMARK", "object": {
                    "kind": resource.kind, "apiVersion": resource.api_version,
                    "metadata": {"resourceVersion": str(position)}}}
            if timed_out:
                return
