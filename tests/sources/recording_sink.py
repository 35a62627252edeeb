"""A `ClusterSink` for tests: it keeps every call, and the state the calls add up to."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from ipvsctl.model.inputs import ObjectError, ObjectKey, Refused
from ipvsctl.sources.api.resources import ClusterValue, Kind

WAIT_TIMEOUT = 10.0


class RecordingSink:
    """What reflectors told it: `calls` in order (name, kind, arguments...), and per kind
    the values held (`state`) and the objects reported invalid (`problems`)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.state: dict[str, dict[ObjectKey, ClusterValue]] = {}
        self.problems: dict[str, dict[ObjectKey, list[ObjectError]]] = {}
        self._changed = threading.Condition()

    def replace(
        self,
        kind: Kind,
        values: Mapping[ObjectKey, ClusterValue],
        invalid: Mapping[ObjectKey, Refused],
    ) -> None:
        with self._changed:
            self.calls.append(("replace", kind, dict(values)))
            # As the agent's cache: a malformed object keeps its last good version.
            held = self.state.get(kind, {})
            kept = {key: held[key] for key in invalid if key in held}
            self.state[kind] = {**kept, **values}
            self.problems[kind] = {}
            for key, refused in invalid.items():
                self.calls.append(("invalid", kind, key, list(refused.errors)))
                self.problems[kind][key] = list(refused.errors)
            self._changed.notify_all()

    def upsert(self, kind: Kind, key: ObjectKey, value: ClusterValue) -> None:
        with self._changed:
            self.calls.append(("upsert", kind, key, value))
            self.state.setdefault(kind, {})[key] = value
            self.problems.setdefault(kind, {}).pop(key, None)
            self._changed.notify_all()

    def delete(self, kind: Kind, key: ObjectKey) -> None:
        with self._changed:
            self.calls.append(("delete", kind, key))
            self.state.setdefault(kind, {}).pop(key, None)
            self.problems.setdefault(kind, {}).pop(key, None)
            self._changed.notify_all()

    def invalid(self, kind: Kind, key: ObjectKey, refused: Refused) -> None:
        with self._changed:
            self.calls.append(("invalid", kind, key, list(refused.errors)))
            self.problems.setdefault(kind, {})[key] = list(refused.errors)
            self._changed.notify_all()

    def held(self, kind: str) -> dict[ObjectKey, ClusterValue]:
        with self._changed:
            return dict(self.state.get(kind, {}))

    def calls_named(self, name: str) -> list[tuple[Any, ...]]:
        with self._changed:
            return [call for call in self.calls if call[0] == name]

    def wait_for(self, condition: Callable[[RecordingSink], object], what: str = "") -> None:
        """Until `condition(self)` holds; fails the test if it does not within a generous
        timeout (a guard against a hang, not a measurement)."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), WAIT_TIMEOUT):
                raise AssertionError(f"sink never got {what or condition}: {self.calls}")
