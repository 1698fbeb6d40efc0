"""Source ports for probes: a range reserved in the sender's namespace, and a guard against 5-tuple reuse.

Why reserve: `net.ipv4.ip_local_reserved_ports` keeps the workload's own ephemeral sockets out of the range, so
an answer to a probe never lands on a real connection (and the kernel RSTs the SYN-ACK, ending the half-open).

Why guard: Open vSwitch 3.1.0's userspace conntrack aborts (or silently drops the first SYN: a false "denied")
when a 5-tuple is reused after its entry expired but before the sweep. So ports rotate per
(source IP, destination IP, destination port, protocol) and a tuple is never handed out again within
`guard_seconds`; past that the allocator refuses instead of reusing.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Hashable

RESERVED_PORTS_SYSCTL = "net.ipv4.ip_local_reserved_ports"
DEFAULT_PORT_RANGE = (40000, 59999)
DEFAULT_GUARD_SECONDS = 120.0  # > OVS userspace conntrack timeouts of a refused/reset probe (≤60 s) + 20 s sweep


class PortExhausted(Exception):
    """Every port of the range was used for this tuple within the guard time."""


def parse_port_list(text: str) -> list[tuple[int, int]]:
    """`"8080,40000-59999"` → [(8080, 8080), (40000, 59999)] (the sysctl's format)."""
    ranges: list[tuple[int, int]] = []
    for part in text.replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        lo, hi = int(first), int(last or first)
        if not 0 < lo <= hi <= 65535:
            raise ValueError(f"bad port range {part!r}")
        ranges.append((lo, hi))
    return ranges


def covers(ranges: list[tuple[int, int]], first: int, last: int) -> bool:
    """Whether the union of `ranges` contains every port of first..last."""
    want = first
    for lo, hi in sorted(ranges):
        if lo > want:
            break
        want = max(want, hi + 1)
        if want > last:
            return True
    return want > last


def with_range(text: str, first: int, last: int) -> str | None:
    """The sysctl value that also reserves first..last, or None when it already does."""
    ranges = parse_port_list(text)
    if covers(ranges, first, last):
        return None
    return ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in sorted(ranges + [(first, last)]))


def reserve_here(first: int, last: int) -> str:
    """Add first..last to the reserved ports of the *calling thread's* namespace (run it via netns).

    Returns "" or a warning: a read-only /proc/sys does not stop probing, it only allows collisions."""
    path = "/proc/sys/" + RESERVED_PORTS_SYSCTL.replace(".", "/")
    try:
        with open(path, encoding="ascii") as handle:
            wanted = with_range(handle.read(), first, last)
        if wanted is not None:
            with open(path, "w", encoding="ascii") as handle:
                handle.write(wanted)
    except (OSError, ValueError) as exc:
        return f"could not reserve ports {first}-{last}: {exc}"
    return ""


class _KeyState:
    __slots__ = ("next", "used")

    def __init__(self, start: int) -> None:
        self.next = start
        self.used: deque[tuple[float, int]] = deque()  # (allocation time, port), oldest first


class SourcePortAllocator:
    """Rotating ports (or ICMP ids) in first..last per tuple key, never reused within `guard_seconds`.

    Ports are handed out cyclically per key, so the next port is always the least recently used one: once all
    of them were used within the guard, `allocate` raises `PortExhausted` rather than reuse a live tuple.
    Allocation happens at most one run before the send; the guard is chosen with that margin.
    """

    def __init__(self, first: int = DEFAULT_PORT_RANGE[0], last: int = DEFAULT_PORT_RANGE[1],
                 guard_seconds: float = DEFAULT_GUARD_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < first <= last <= 65535:
            raise ValueError(f"bad port range {first}-{last}")
        self.first, self.last = first, last
        self.size = last - first + 1
        self.guard_seconds = guard_seconds
        self._clock = clock
        self._keys: dict[Hashable, _KeyState] = {}
        self._allocations = 0
        self._rng = random.Random()  # seeded from the OS: each allocator (and process) starts elsewhere

    def allocate(self, key: Hashable) -> int:
        now = self._clock()
        state = self._keys.get(key)
        if state is None:
            # A random start per key: another allocator (a previous CLI run, another prober in this process) that
            # knows nothing of our history is unlikely to hand out the same tuple while its conntrack entry lives.
            state = self._keys[key] = _KeyState(self._rng.randrange(self.size))
        used = state.used
        while used and now - used[0][0] >= self.guard_seconds:
            used.popleft()
        if len(used) >= self.size:
            oldest = now - used[0][0]
            raise PortExhausted(
                f"5-tuple guard: all {self.size} source ports {self.first}-{self.last} for {key} were used in the "
                f"last {self.guard_seconds:g}s (oldest {oldest:.1f}s ago); refusing to reuse a live conntrack tuple")
        port = self.first + state.next
        state.next = (state.next + 1) % self.size
        used.append((now, port))
        self._allocations += 1
        if self._allocations % 50000 == 0:
            self._prune(now)
        return port

    def in_use(self, key: Hashable) -> int:
        """How many ports of `key` are still within the guard time."""
        state = self._keys.get(key)
        if state is None:
            return 0
        now = self._clock()
        return sum(1 for t, _ in state.used if now - t < self.guard_seconds)

    def _prune(self, now: float) -> None:
        """Forget keys whose every allocation is past the guard (bounds memory over long runs)."""
        stale = [k for k, s in self._keys.items() if not s.used or now - s.used[-1][0] >= self.guard_seconds]
        for key in stale:
            del self._keys[key]
