"""Bounds on what segcheck accepts as input, and the checks that enforce them.

A manifest set is untrusted: nesting, size and number magnitude are refused past these limits with a message
naming where, so no input can exhaust the stack, the memory or the clock. Kubernetes itself is far stricter
(1.5 MiB per object, 256 KiB of annotations, int64 numbers); the limits leave room for List dumps.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100  # nesting levels of one document (Kubernetes objects rarely pass 20; CRD schemas 50)
MAX_VALUES = 4_000_000  # values in one document: a 32 MiB JSON List holds about 2 million
MAX_NUMBER_DIGITS = 40  # characters of one integer literal (int64 needs 20)
MAX_EMBEDDED_JSON_BYTES = 1 << 20  # JSON inside an annotation or a NAD config (an object is at most 1.5 MiB)
INT_RANGE = (-(1 << 63), (1 << 64) - 1)  # what a Kubernetes number field can hold (int64, or uint64)
SCALARS = (str, int, float, bool, type(None))


class InputTooLarge(ValueError):
    """Input past one of the limits above: permanent, retrying cannot help."""


def _where(path: tuple[str, ...]) -> str:
    text = ".".join(path).replace(".[", "[") or "the document"
    return text if len(text) <= 120 else text[:117] + "..."


def _scalar_problem(value: Any) -> str | None:
    if not isinstance(value, SCALARS):
        return f"unsupported value of type {type(value).__name__}"
    if isinstance(value, int) and not isinstance(value, bool) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        return "number out of range (Kubernetes numbers are 64-bit)"
    return None


def check_shape(data: Any) -> str | None:
    """Why `data` (a parsed document) is refused, or None: JSON-shaped values only, string keys, bounded
    depth, count and numbers. Iterative, so a hostile document cannot exhaust the stack."""
    if not isinstance(data, (dict, list)):
        return _scalar_problem(data)
    stack: list[tuple[dict[str, Any] | list[Any], tuple[str, ...]]] = [(data, ())]
    count = 0
    while stack:
        container, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            return f"{_where(path)}: nested deeper than {MAX_DEPTH} levels"
        count += len(container)
        if count > MAX_VALUES:
            return f"more than {MAX_VALUES:,} values in one document"
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(container, dict) and not isinstance(key, str):
                return f"{_where(path)}: key {str(key)[:40]!r} is a {type(key).__name__}, not a string"
            step = key if isinstance(key, str) else f"[{key}]"
            if isinstance(item, (dict, list)):
                stack.append((item, path + (step,)))
                continue
            problem = _scalar_problem(item)
            if problem is not None:
                return f"{_where(path + (step,))}: {problem}"
    return None


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise InputTooLarge(f"an integer of {len(text):,} digits (at most {MAX_NUMBER_DIGITS})")
    return int(text)


def load_json(text: str) -> Any:
    """JSON from a file or embedded in an object, within the limits; raises ValueError with a short reason."""
    try:
        data = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise InputTooLarge(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    problem = check_shape(data)
    if problem is not None:
        raise InputTooLarge(problem)
    return data


def load_embedded_json(text: str) -> Any:
    if len(text) > MAX_EMBEDDED_JSON_BYTES:
        raise InputTooLarge(f"{len(text):,} bytes of JSON (at most {MAX_EMBEDDED_JSON_BYTES:,} inside an object)")
    return load_json(text)
