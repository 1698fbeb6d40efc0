"""Declared-state sources for the agent: the Kubernetes API (list+watch) or manifest files (offline, lab).

Both hand the core the same thing: raw objects parsed into an Inventory, with a generation number that
changes when the objects do, and health (up, staleness) for the metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

from ..adapters.manifest_files import expand_paths, load_inventory, parse_yaml, read_objects
from ..core.inventory import Inventory
from ..core.manifests import ManifestError, RawObject, build_inventory

LOG = logging.getLogger(__name__)


class DeclaredSource(Protocol):
    name: str

    def start(self, on_change: Callable[[], None]) -> None: ...
    def stop(self) -> None: ...
    def generation(self) -> int: ...
    def inventory(self) -> tuple[Inventory, list[ManifestError]]: ...
    def up(self) -> bool: ...
    def staleness(self) -> float: ...
    def synced(self) -> bool: ...


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
            inv, errors = load_inventory(self.paths)
            self._ok = not any(e.object == "-" and "no such file" in e.message for e in errors)
            if self._ok:
                self._last_ok = time.time()
            self._cache = (gen, (inv, errors))
        return self._cache[1]

    def up(self) -> bool:
        return self._ok

    def staleness(self) -> float:
        return 0.0 if self._ok else time.time() - self._last_ok

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
            inv, more = build_inventory(raws + extra, parse_yaml)
            self._cache = (generation, (inv, errors + more))
        return self._cache[1]

    def up(self) -> bool:
        return all(h.up for h in self.kube.health().values() if h.available is not False)

    def staleness(self) -> float:
        return max((h.staleness_seconds() for h in self.kube.health().values() if h.available), default=0.0)

    def synced(self) -> bool:
        return bool(self.kube.synced())
