"""Reading the fields of raw objects (dicts from YAML or the API): each reader names the field it rejects.

Shared by the manifest parsers; every failure is an `InvalidObject`, a permanent problem with that one object.
"""

from __future__ import annotations

from typing import Any

from .model import MAX_PORT, MIN_PORT, IPAddress, Protocol, Ref, parse_ip


class InvalidObject(ValueError):
    """A permanent problem with one object: retrying cannot help."""


def mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidObject(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def items(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidObject(f"{where}: expected a list, got {type(value).__name__}")
    return value


def text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidObject(f"{where}: expected a non-empty string")
    return value


def address(value: Any, where: str) -> IPAddress:
    if not isinstance(value, str):
        raise InvalidObject(f"{where}: expected an IP address, got {value!r}")
    try:
        return parse_ip(value)
    except ValueError:
        raise InvalidObject(f"{where}: invalid IP address {value!r}") from None


def port_number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_PORT <= value <= MAX_PORT:
        raise InvalidObject(f"{where}: port must be a number from {MIN_PORT} to {MAX_PORT}, got {value!r}")
    return value


def protocol(value: Any, where: str) -> Protocol:
    try:
        return Protocol.parse(text(value, where))
    except ValueError as exc:
        raise InvalidObject(f"{where}: {exc}") from None


def only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse unknown keys (a typo must not be ignored silently)."""
    unknown = set(data) - allowed
    if unknown:
        raise InvalidObject(f"{where + ': ' if where else ''}unknown field(s) {', '.join(sorted(unknown))}")


def metadata(obj: dict[str, Any], *, namespaced: bool) -> tuple[Ref, dict[str, Any]]:
    meta = mapping(obj.get("metadata"), "metadata")
    name = text(meta.get("name"), "metadata.name")
    namespace = meta.get("namespace", "default") if namespaced else ""
    if namespaced:
        namespace = text(namespace, "metadata.namespace")
    return Ref(namespace, name), meta
