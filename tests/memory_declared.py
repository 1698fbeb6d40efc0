"""A declared source over an inventory held in memory, for the agent's tests and benchmarks."""

from __future__ import annotations

from typing import Any, Callable

from segcheck.agent.core.inventory import Inventory


class StaticDeclared:
    """A declared source holding one inventory; `set` swaps it as a watch event would (a new generation, and the
    agent woken when it was started)."""

    name = "files"

    def __init__(self, inventory: Inventory) -> None:
        self._inventory, self._generation = inventory, 1
        self._on_change: Callable[[], None] = lambda: None

    def set(self, inventory: Inventory) -> None:
        self._inventory, self._generation = inventory, self._generation + 1
        self._on_change()

    def start(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change

    def stop(self) -> None:
        pass

    def generation(self) -> int:
        return self._generation

    def inventory(self) -> tuple[Inventory, list[Any]]:
        return self._inventory, []

    def declared_errors(self) -> tuple[()]:
        return ()

    def up(self) -> bool:
        return True

    def staleness(self) -> float:
        return 0.0

    def synced(self) -> bool:
        return True
