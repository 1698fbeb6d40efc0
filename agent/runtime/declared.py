"""Declared-state sources for the agent: the Kubernetes API (list+watch) or manifest files (offline, lab).

Both hand the core the same thing: raw objects parsed into an Inventory, with a generation number that
changes when the objects do, and health (up, staleness) for the metrics. An object that parsed once and then
stops parsing keeps its last good version (an edit with a typo must not drop a policy and raise false alarms);
its error is logged once, exported, and counts as staleness until fixed.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

from ..adapters.manifest_files import expand_paths, parse_yaml, read_objects
from ..core.inventory import Inventory
from ..core.manifests import ManifestError, RawObject, describe, flatten_documents, inventory_from
from ..core.state import DeclaredError

LOG = logging.getLogger(__name__)


class DeclaredSource(Protocol):
    name: str

    def start(self, on_change: Callable[[], None]) -> None: ...
    def stop(self) -> None: ...
    def generation(self) -> int: ...
    def inventory(self) -> tuple[Inventory, list[ManifestError]]: ...
    def declared_errors(self) -> tuple[DeclaredError, ...]: ...
    def up(self) -> bool: ...
    def staleness(self) -> float: ...
    def synced(self) -> bool: ...


def _covers(error: ManifestError, raw: RawObject) -> bool:
    """Whether an error stands for this object: it names it, or it is about the document or file the object
    came from and names no other object."""
    if error.object == describe(raw.data):
        return True
    whole = raw.source == error.source or raw.source.startswith((error.source + "#", error.source + " "))
    return whole and error.kind in ("-", raw.data.get("kind")) and error.object.endswith(("-", "?"))


class LastGood:
    """The declared objects as last parsed, keeping the last good version of each object that stops parsing.

    `load(documents, errors)` is called once per generation of the source; thread-safe."""

    def __init__(self, source: str, clock: Callable[[], float] = time.time):
        self.source, self.clock = source, clock
        self._good: dict[str, tuple[RawObject, float]] = {}  # describe(object) -> (last good version, read at)
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        self.errors: tuple[DeclaredError, ...] = ()
        self.oldest_kept: float | None = None  # when the oldest object still served from its last good version was read

    def load(self, documents: list[RawObject], errors: list[ManifestError]) -> tuple[Inventory, list[ManifestError]]:
        with self._lock:
            flat, more = flatten_documents(documents)
            inventory, bad = inventory_from(flat, parse_yaml)
            errors = errors + more + bad
            failed = {(e.source, e.object) for e in bad}
            now = self.clock()
            fresh = {describe(r.data): (r, now) for r in flat if (r.source, describe(r.data)) not in failed}
            kept = {key: old for key, old in self._good.items()
                    if key not in fresh and any(_covers(e, old[0]) for e in errors)}
            if kept:
                inventory, _ = inventory_from([r for r, _ in fresh.values()] + [r for r, _ in kept.values()], parse_yaml)
            self._good = {**fresh, **kept}
            kept_errors = {id(e) for e in errors for raw, _ in kept.values() if _covers(e, raw)}
            self.errors = tuple(DeclaredError(self.source, e.kind, str(e), id(e) in kept_errors) for e in errors)
            self.oldest_kept = min((at for _, at in kept.values()), default=None)
            self._log(self.errors)
            return inventory, errors

    def _log(self, errors: tuple[DeclaredError, ...]) -> None:
        now = {e.message for e in errors}
        for e in errors:
            if e.message not in self._logged:
                LOG.warning("declared object refused", extra={"source": e.source, "kind": e.kind, "error": e.message,
                                                              "kept_last_good": e.kept})
        self._logged = now

    def staleness(self) -> float:
        return 0.0 if self.oldest_kept is None else self.clock() - self.oldest_kept


def _signature(paths: Sequence[str | Path]) -> tuple[tuple[str, float, int], ...]:
    files, _ = expand_paths(paths)
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((str(f), st.st_mtime, st.st_size))
        except OSError:
            continue
    return tuple(out)


class FilesSource:
    """Manifests on disk, re-read when a file's mtime or size changes (checked every `poll_seconds`)."""

    name = "files"

    def __init__(self, paths: Sequence[str | Path], poll_seconds: float = 2.0):
        self.paths = list(paths)
        self.poll_seconds = poll_seconds
        self._generation = 0
        self._signature: tuple[tuple[str, float, int], ...] | None = None
        self._cache: tuple[int, tuple[Inventory, list[ManifestError]]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok = time.time()
        self._ok = True
        self._last_good = LastGood(self.name)

    def start(self, on_change: Callable[[], None]) -> None:
        self._signature = _signature(self.paths)
        self._generation = 1

        def loop() -> None:
            while not self._stop.wait(self.poll_seconds):
                sig = _signature(self.paths)
                if sig != self._signature:
                    self._signature = sig
                    self._generation += 1
                    on_change()

        self._thread = threading.Thread(target=loop, name="declared-files", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def generation(self) -> int:
        return self._generation

    def inventory(self) -> tuple[Inventory, list[ManifestError]]:
        gen = self._generation
        if self._cache is None or self._cache[0] != gen:
            inv, errors = self._last_good.load(*read_objects(self.paths))
            self._ok = not any(e.object == "-" and "no such file" in e.message for e in errors)
            if self._ok:
                self._last_ok = time.time()
            self._cache = (gen, (inv, errors))
        return self._cache[1]

    def declared_errors(self) -> tuple[DeclaredError, ...]:
        self.inventory()
        return self._last_good.errors

    def up(self) -> bool:
        return self._ok

    def staleness(self) -> float:
        return max(0.0 if self._ok else time.time() - self._last_ok, self._last_good.staleness())

    def synced(self) -> bool:
        return self._generation > 0


class KubernetesSource:
    """The API server through KubeSource (list+watch); segcheck's endpoint config still comes from files."""

    name = "kubernetes"

    def __init__(self, kube: object, endpoint_files: Sequence[str | Path] = ()):
        from ..adapters.kube import KubeSource

        assert isinstance(kube, KubeSource)
        self.kube = kube
        self.endpoint_files = list(endpoint_files)
        self._stop = threading.Event()
        self._cache: tuple[int, tuple[Inventory, list[ManifestError]]] | None = None
        self._files_generation = 0  # bumps when the endpoints file changes (a ConfigMap update)
        self._files_signature = _signature(self.endpoint_files)
        self._last_good = LastGood(self.name)

    def start(self, on_change: Callable[[], None]) -> None:
        self.kube.start()

        def health() -> tuple[tuple[str, bool], ...]:
            return tuple(sorted((name, h.up) for name, h in self.kube.health().items()))

        def loop() -> None:
            gen, seen = -1, health()  # whatever arrived before this thread looked is a change too
            while not self._stop.is_set():
                self.kube.wait_until(lambda g=gen, h=seen: self.generation() != g or health() != h, timeout=1.0)
                files = _signature(self.endpoint_files)
                if files != self._files_signature:
                    self._files_signature = files
                    self._files_generation += 1
                new, now = self.generation(), health()
                if new != gen or now != seen:
                    gen, seen = new, now
                    on_change()

        threading.Thread(target=loop, name="declared-kube", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.kube.stop()

    def generation(self) -> int:
        return int(self.kube.generation) + self._files_generation

    def inventory(self) -> tuple[Inventory, list[ManifestError]]:
        snap = self.kube.snapshot()
        generation = int(snap.generation) + self._files_generation
        if self._cache is None or self._cache[0] != generation:
            raws = [RawObject("api", dict(obj)) for obj in snap.objects.values()]
            extra, errors = read_objects(self.endpoint_files)
            self._cache = (generation, self._last_good.load(raws + extra, errors))
        return self._cache[1]

    def declared_errors(self) -> tuple[DeclaredError, ...]:
        self.inventory()
        return self._last_good.errors

    def up(self) -> bool:
        return all(h.up for h in self.kube.health().values() if h.available is not False)

    def staleness(self) -> float:
        listed = max((h.staleness_seconds() for h in self.kube.health().values() if h.available), default=0.0)
        return max(listed, self._last_good.staleness())

    def synced(self) -> bool:
        return bool(self.kube.synced())
