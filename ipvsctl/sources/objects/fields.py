"""Reading typed fields out of a parsed Kubernetes object, one problem per bad field.

A `FieldReader` is bound to one object: every accessor returns a usable value
(a default when the field is bad) and records an `ObjectError` naming the
object, the field path and the value, so a converter reports every problem of
an object at once instead of stopping at the first.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from ipvsctl.model import Protocol, canonical_address
from ipvsctl.model.inputs import ObjectError, ObjectRef
from ipvsctl.model.printable import printable

PROTOCOLS = {"TCP": int(Protocol.TCP), "UDP": int(Protocol.UDP), "SCTP": int(Protocol.SCTP)}


def show_value(value: object) -> str:
    """A value as the user wrote it, quoted like JSON, on one line, cut to MAX_SHOWN."""
    try:
        shown = json.dumps(value, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):
        # A circular structure cannot come from YAML, nor keys json cannot sort from a
        # bounded manifest, but stay total.
        shown = repr(value)
    return printable(shown)


class FieldReader:
    """Typed access to one object's fields, collecting a problem for each bad one."""

    def __init__(self, ref: ObjectRef) -> None:
        self.ref = ref
        self.errors: list[ObjectError] = []

    def problem(self, field: str, message: str) -> None:
        self.errors.append(ObjectError(self.ref, field, message))

    def mapping(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return value
        self.problem(path, f"{show_value(value)} is not a mapping")
        return {}

    def sequence(self, parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
        value = parent.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.problem(path, f"{show_value(value)} is not a list")
        return []

    def text(self, parent: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        value = parent.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        self.problem(path, f"{show_value(value)} is not a string")
        return default

    def choice(
        self, parent: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]
    ) -> str:
        """A string from `allowed`; its first entry is the default."""
        value = parent.get(key)
        if value is None or value == "":
            return allowed[0]
        if isinstance(value, str) and value in allowed:
            return value
        self.problem(path, f"{show_value(value)} is not one of {', '.join(allowed)}")
        return allowed[0]

    def flag(self, parent: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = parent.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.problem(path, f"{show_value(value)} is not true or false")
        return default

    def integer(
        self, value: object, path: str, low: int, high: int, what: str, optional: bool = False
    ) -> int:
        """An int in low..high; 0 when absent and `optional`, or when bad."""
        if value is None and optional:
            return 0
        # bool is an int in Python, and YAML turns `yes` into True: reject it explicitly.
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        if value is None:
            self.problem(path, f"missing (must be {what}, {low}-{high})")
        else:
            self.problem(path, f"{show_value(value)} is not {what} ({low}-{high})")
        return 0

    def port(self, value: object, path: str, optional: bool = False) -> int:
        return self.integer(value, path, 1, 65535, "a port", optional)

    def protocol(self, parent: Mapping[str, Any], key: str, path: str) -> int:
        value = parent.get(key)
        if value is None:
            return PROTOCOLS["TCP"]
        if isinstance(value, str) and value in PROTOCOLS:
            return PROTOCOLS[value]
        self.problem(path, f"{show_value(value)} is not a protocol (TCP, UDP, SCTP)")
        return PROTOCOLS["TCP"]

    def address(self, value: object, path: str) -> str | None:
        """The canonical spelling of an IP address, or None (and a problem)."""
        if isinstance(value, str):
            try:
                return canonical_address(value)
            except (OSError, ValueError):
                pass
        self.problem(path, f"{show_value(value)} is not an IP address")
        return None

    def addresses(self, parent: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        found: list[str] = []
        for index, value in enumerate(self.sequence(parent, key, path)):
            address = self.address(value, f"{path}[{index}]")
            if address is not None:
                found.append(address)
        return tuple(found)

    def cidr(self, value: object, path: str) -> str | None:
        if isinstance(value, str):
            try:
                return str(ipaddress.ip_network(value.strip(), strict=False))
            except ValueError:
                pass
        self.problem(path, f"{show_value(value)} is not a CIDR")
        return None
