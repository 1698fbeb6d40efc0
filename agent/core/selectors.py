"""Kubernetes label selectors, exactly as metav1.LabelSelector defines them.

`matchLabels` and `matchExpressions` are ANDed; an empty selector (`{}`) matches everything. A *missing*
selector is not a selector: callers decide what absence means (it differs between fields).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")


class SelectorError(ValueError):
    pass


class Operator(enum.Enum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator is Operator.IN:
            return self.key in labels and labels[self.key] in self.values
        if self.operator is Operator.NOT_IN:
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator is Operator.EXISTS:
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        op = "in" if self.operator is Operator.IN else "notin"
        return f"{self.key} {op} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(req.matches(labels) for req in self.match_expressions)

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels] + [str(r) for r in self.match_expressions]
        return ",".join(parts) if parts else "{}"


EVERYTHING = LabelSelector()


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key) or len(key.partition("/")[0]) > 253:
        raise SelectorError(f"{where}: invalid label key {key!r}")
    return key


def _check_value(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SelectorError(f"{where}: invalid label value {value!r}")
    text = str(value)
    if not _VALUE_RE.match(text):
        raise SelectorError(f"{where}: invalid label value {text!r}")
    return text


def parse_selector(data: Any, where: str = "selector") -> LabelSelector:
    """Parse a metav1.LabelSelector; `None` is treated like `{}` (callers handle absence before)."""
    if data is None:
        return EVERYTHING
    if not isinstance(data, dict):
        raise SelectorError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise SelectorError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    labels_raw = data.get("matchLabels") or {}
    if not isinstance(labels_raw, dict):
        raise SelectorError(f"{where}.matchLabels: expected a mapping")
    labels = tuple(
        sorted((_check_key(k, f"{where}.matchLabels"), _check_value(v, f"{where}.matchLabels")) for k, v in labels_raw.items())
    )
    exprs_raw = data.get("matchExpressions") or []
    if not isinstance(exprs_raw, list):
        raise SelectorError(f"{where}.matchExpressions: expected a list")
    exprs = []
    for i, raw in enumerate(exprs_raw):
        here = f"{where}.matchExpressions[{i}]"
        if not isinstance(raw, dict):
            raise SelectorError(f"{here}: expected a mapping")
        try:
            op = Operator(raw.get("operator"))
        except ValueError:
            raise SelectorError(f"{here}: invalid operator {raw.get('operator')!r} (In, NotIn, Exists, DoesNotExist)") from None
        key = _check_key(raw.get("key"), here)
        values = raw.get("values") or []
        if not isinstance(values, list):
            raise SelectorError(f"{here}.values: expected a list")
        if op in (Operator.IN, Operator.NOT_IN) and not values:
            raise SelectorError(f"{here}: operator {op.value} needs at least one value")
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
            raise SelectorError(f"{here}: operator {op.value} takes no values")
        exprs.append(Requirement(key, op, frozenset(_check_value(v, here) for v in values)))
    return LabelSelector(labels, tuple(exprs))


Labels = tuple[tuple[str, str], ...]  # a label set as objects hold it (sorted pairs)


class MatchMemo:
    """`selector.matches(labels)` by value (selector, label set), kept across the evaluations of successive
    worlds (the agent's re-plans): after a policy edit only that policy's selectors are matched again, after a
    label change only the new label set, after a namespace relabel only its new labels. Both keys are values, so
    nothing can go stale; what bounds it is the round: an entry not asked for during one round (one world
    evaluated) is dropped at the next. Not thread-safe: one owner (the agent's loop)."""

    def __init__(self) -> None:
        self._now: dict[LabelSelector, dict[Labels, bool]] = {}
        self._before: dict[LabelSelector, dict[Labels, bool]] = {}
        self._universes: dict[tuple[Hashable, ...], Universe] = {}
        self._universes_before: dict[tuple[Hashable, ...], Universe] = {}
        self._chosen: dict[tuple[Hashable, Universe], list[int]] = {}
        self._chosen_before: dict[tuple[Hashable, Universe], list[int]] = {}
        self.misses = 0  # label sets actually matched (tests count them)
        self.scans = 0  # universes actually scanned by `chosen`

    def next_round(self) -> None:
        self._before, self._now = self._now, {}
        self._universes_before, self._universes = self._universes, {}
        self._chosen_before, self._chosen = self._chosen, {}

    def universe(self, items: tuple[Hashable, ...]) -> "Universe":
        """The one `Universe` of these items (the same object as last round's when they are equal)."""
        found = self._universes.get(items)
        if found is None:
            found = self._universes_before.get(items) or Universe(items)
            self._universes[items] = found
        return found

    def chosen(self, key: Hashable, universe: "Universe", scan: Callable[[], list[int]]) -> list[int]:
        """The positions in `universe` that `key` (a selector, or a peer's selectors) picks, as `scan` finds
        them: scanned once per key while the universe stays equal from round to round. With equal label sets
        (a policy edit, a pod moving between existing label sets) only new keys scan."""
        k = (key, universe)
        found = self._chosen.get(k)
        if found is None:
            found = self._chosen_before.get(k)
            if found is None:
                found = scan()
                self.scans += 1
            self._chosen[k] = found
        return found

    def matcher(self, selector: LabelSelector) -> "_Matcher":
        """One selector's answers (fetch once per selector, then ask per label set)."""
        return _Matcher(self, selector)

    def matches(self, selector: LabelSelector, labels: Labels) -> bool:
        return self.matcher(selector)(labels)


class Universe:
    """The label sets (or keys made of them) an evaluation ranges over, in order; compared by identity, which
    `MatchMemo.universe` keeps equal for equal items."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Hashable, ...]) -> None:
        self.items = items


class _Matcher:
    __slots__ = ("now", "before", "selector", "memo")

    def __init__(self, memo: MatchMemo, selector: LabelSelector) -> None:
        now = memo._now.get(selector)
        if now is None:
            now = memo._now[selector] = {}
        self.now, self.before, self.selector, self.memo = now, memo._before.get(selector), selector, memo

    def __call__(self, labels: Labels) -> bool:
        hit = self.now.get(labels)
        if hit is None:
            hit = self.before.get(labels) if self.before is not None else None
            if hit is None:
                hit = self.selector.matches(dict(labels))
                self.memo.misses += 1
            self.now[labels] = hit
        return hit
