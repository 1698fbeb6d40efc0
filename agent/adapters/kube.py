"""Declared state from the Kubernetes API: list + watch of the resources segcheck reads, kept in one store.

One daemon thread per resource runs the reflector loop of client-go in miniature: list (paged), then watch from the
list's resourceVersion with bookmarks; a watch that ends is resumed from the last resourceVersion seen; 410 Gone
(HTTP or an ERROR event) forces a relist, whose result replaces that kind wholesale (so deletes missed while
disconnected disappear); other errors back off exponentially with jitter; an API that is not served (CRD absent)
is reported unavailable and retried slowly. Nothing here raises to the caller once started.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from kubernetes import client as k8s_client

from .kube_api import (
    DEFAULT_RESOURCES,
    KubeApi,
    KubeError,
    RawObject,
    ResourceGoneError,
    ResourceType,
    ResourceUnavailableError,
    WatchStream,
    build_api_client,
    error_for_status,
)
from .kube_store import ObjectKey, ResourceHealth, Snapshot, Store

__all__ = ["DEFAULT_RESOURCES", "Backoff", "KubeSource", "ObjectKey", "ResourceHealth", "ResourceType", "Snapshot"]

log = logging.getLogger(__name__)

_OBJECT_EVENTS: Final = frozenset({"ADDED", "MODIFIED", "DELETED"})
_MAX_BACKOFF_EXPONENT: Final = 32  # keeps factor**n finite; the cap applies long before


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: the n-th consecutive failure waits up to min(cap, initial·factor^(n-1))."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5  # fraction of the delay that is randomised away, so that agents do not retry in step

    def delay(self, failures: int, rng: random.Random) -> float:
        exponent = min(max(failures - 1, 0), _MAX_BACKOFF_EXPONENT)
        base = min(self.cap, self.initial * self.factor**exponent)
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class _Settings:
    watch_timeout_seconds: int
    list_page_size: int
    backoff: Backoff
    slow_retry_seconds: float


class _Reflector:
    """List + watch of one resource into the store, until `stopping` is set."""

    def __init__(
        self, resource: ResourceType, api: KubeApi, store: Store, settings: _Settings, stopping: threading.Event
    ) -> None:
        self.resource = resource
        self._api = api
        self._store = store
        self._settings = settings
        self._stopping = stopping
        self._rng = random.Random()
        self._rv: str | None = None  # last resourceVersion seen; None ⇒ the next step is a (re)list
        self._listed = False
        self._stream: WatchStream | None = None
        self._stream_lock = threading.Lock()

    def run(self) -> None:
        failures = 0
        gone_streak = 0
        while not self._stopping.is_set():
            try:
                if self._rv is None:
                    self._list()
                self._watch()
                failures = gone_streak = 0
            except ResourceGoneError as exc:
                if self._stopping.is_set():
                    break
                log.info("%s: %s; relisting", self.resource.name, exc)
                self._rv = None
                gone_streak += 1
                # A fresh list gives a current resourceVersion; only a server that keeps answering 410 to it
                # (a lagging watch cache) makes us wait.
                if gone_streak > 1:
                    self._stopping.wait(self._settings.backoff.delay(gone_streak - 1, self._rng))
            except ResourceUnavailableError as exc:
                if self._stopping.is_set():
                    break
                if self._store.health()[self.resource.name].available is not False:
                    log.info("%s is not served (%s); retrying every %gs", self.resource.name, exc,
                             self._settings.slow_retry_seconds)
                self._store.mark_unavailable(self.resource.name, self.resource.kind, str(exc))
                self._rv = None
                failures = 0
                self._stopping.wait(self._settings.slow_retry_seconds)
            except KubeError as exc:
                if self._stopping.is_set():
                    break
                failures += 1
                self._fail(str(exc), exc.temporary, failures)
                # Resume from the last resourceVersion: if it was compacted meanwhile the watch answers 410.
                delay = (self._settings.backoff.delay(failures, self._rng) if exc.temporary
                         else self._settings.slow_retry_seconds)
                self._stopping.wait(delay)
            except Exception as exc:  # a bug or an object we cannot handle must not kill the thread
                if self._stopping.is_set():
                    break
                failures += 1
                log.exception("%s: unexpected error", self.resource.name)
                self._fail(f"unexpected {type(exc).__name__}: {exc}", True, failures)
                self._rv = None  # the store may miss an event: start again from a list
                self._stopping.wait(self._settings.backoff.delay(failures, self._rng))

    def _fail(self, message: str, temporary: bool, failures: int) -> None:
        # Warn on the transition only: an outage must not flood the log once per retry.
        level = logging.WARNING if failures == 1 else logging.DEBUG
        log.log(level, "%s: %s (%s, failure %d)", self.resource.name, message,
                "temporary" if temporary else "permanent", failures)
        self._store.mark_failure(self.resource.name, message, temporary)

    def _list(self) -> None:
        items: list[RawObject] = []
        page = self._api.list_page(self.resource, self._settings.list_page_size, None)
        resource_version = page.resource_version  # every page of one list is served from the same snapshot
        items.extend(page.items)
        while page.continue_token and not self._stopping.is_set():
            page = self._api.list_page(self.resource, self._settings.list_page_size, page.continue_token)
            items.extend(page.items)
        if self._stopping.is_set():
            return
        self._store.replace_kind(self.resource.name, self.resource.kind, items, resource_version, self._listed)
        if self._listed:
            log.info("%s: relisted %d objects at resourceVersion %s", self.resource.name, len(items),
                     resource_version)
        self._listed = True
        self._rv = resource_version

    def _watch(self) -> None:
        if self._rv is None or self._stopping.is_set():
            return
        stream = self._api.open_watch(self.resource, self._rv, self._settings.watch_timeout_seconds)
        with self._stream_lock:
            self._stream = stream
        try:
            if self._stopping.is_set():  # stop() ran between open and registration
                return
            self._store.mark_contact(self.resource.name)  # accepted: we are current as of now, even if all is quiet
            for event in stream.events():
                self._apply(event)
            self._store.mark_contact(self.resource.name, self._rv)
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()

    def _apply(self, event: RawObject) -> None:
        event_type = event.get("type")
        obj: RawObject = event["object"]
        if event_type == "ERROR":
            code = obj.get("code")
            if code is None and obj.get("reason") in ("Expired", "Gone"):
                code = 410
            raise error_for_status(int(code or 500), f"watch {self.resource.path}: {obj.get('message', '')}")
        resource_version = (obj.get("metadata") or {}).get("resourceVersion")
        if resource_version:
            self._rv = str(resource_version)
        if event_type in _OBJECT_EVENTS:
            obj.setdefault("apiVersion", self.resource.api_version)
            obj.setdefault("kind", self.resource.kind)
            self._store.apply_event(self.resource.name, event_type, obj)
        elif event_type == "BOOKMARK":
            self._store.mark_contact(self.resource.name, self._rv)
        else:
            log.debug("%s: ignoring watch event of type %r", self.resource.name, event_type)

    def interrupt(self) -> None:
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.interrupt()


class KubeSource:
    """Keeps a current set of raw objects (dicts with apiVersion and kind) for the resources segcheck reads.

    `start()` launches one daemon thread per resource; `snapshot()`, `wait_for_change()`, `synced()` and
    `health()` may be called from any thread; `stop()` ends the threads within about its timeout.
    """

    def __init__(
        self,
        api_client: k8s_client.ApiClient | None = None,
        *,
        resources: Iterable[ResourceType] = DEFAULT_RESOURCES,
        watch_timeout_seconds: int = 5,
        list_page_size: int = 500,
        backoff: Backoff = Backoff(),
        slow_retry_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`api_client` defaults to in-cluster config, else kubeconfig. `watch_timeout_seconds` bounds each watch
        request server-side (it also bounds how stale `last_success` gets on a quiet cluster).
        `slow_retry_seconds` paces retries of an unavailable API (404) or a permanent error (401, 403)."""
        self._owns_client = api_client is None
        self._api_client = api_client if api_client is not None else build_api_client()
        self._resources = tuple(resources)
        self._store = Store((r.name for r in self._resources), clock)
        self._stopping = threading.Event()
        settings = _Settings(watch_timeout_seconds, list_page_size, backoff, slow_retry_seconds)
        api = KubeApi(self._api_client)
        self._reflectors = [_Reflector(r, api, self._store, settings, self._stopping) for r in self._resources]
        self._threads: list[threading.Thread] = []

    @property
    def resources(self) -> tuple[ResourceType, ...]:
        return self._resources

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("KubeSource already started")
        for reflector in self._reflectors:
            thread = threading.Thread(target=reflector.run, name=f"kube-{reflector.resource.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every thread; True if all ended within `timeout` (stragglers are daemons and die with the process)."""
        self._stopping.set()
        for reflector in self._reflectors:
            reflector.interrupt()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stopped = not any(thread.is_alive() for thread in self._threads)
        if self._owns_client and stopped:
            self._api_client.close()  # type: ignore[no-untyped-call]
        return stopped

    def __enter__(self) -> KubeSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def snapshot(self) -> Snapshot:
        return self._store.snapshot()

    @property
    def generation(self) -> int:
        return self._store.generation

    def wait_for_change(self, generation: int, timeout: float | None) -> int:
        """Block until the generation differs from `generation` or `timeout` passes; return the current one."""
        return self._store.wait_for_change(generation, timeout)

    def synced(self) -> bool:
        """True once every available resource has completed a first list (unavailable ones are skipped)."""
        return self._store.synced()

    def wait_for_sync(self, timeout: float | None) -> bool:
        return self._store.wait_for_sync(timeout)

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Block until `predicate()` holds, re-checked on every change of objects or health."""
        return self._store.wait_until(predicate, timeout)

    def health(self) -> Mapping[str, ResourceHealth]:
        """Per-resource health keyed by `ResourceType.name` (e.g. `pods`, `virtualmachineinstances.kubevirt.io`)."""
        return self._store.health()
