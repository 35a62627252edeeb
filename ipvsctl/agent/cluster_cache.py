"""The agent's copy of the cluster: Services, EndpointSlices and this Node, as the
watches deliver them, and which Services changed since the engine last looked.

The reflectors (sources.api.watch) write here from their threads; the engine
takes the changed Services (`take_changes`) from its own. A change that leaves
an object equal to what is held (a relist after `410 Gone`, a watch replaying
every object as ADDED) marks nothing, so it costs no kernel work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import NamedTuple

from ipvsctl.model.inputs import (
    EndpointSlice,
    NodeInfo,
    ObjectError,
    ObjectKey,
    ObjectRef,
    Refused,
    Service,
)

SERVICE, SLICE, NODE = "Service", "EndpointSlice", "Node"


class Changes(NamedTuple):
    """What changed since the last `take_changes`.

    `services`: each changed Service (namespace, name) with the monotonic time
    its first unseen change arrived (for the event-to-kernel latency).
    `node`: this Node changed (its addresses or zone). `invalid`: objects that
    became invalid, with their problems, to report once each. `reconnected`: the
    API server answers again after failures (a full sync shows the agent whole).
    """

    services: dict[ObjectKey, float]
    node: bool = False
    invalid: tuple[tuple[ObjectRef, tuple[ObjectError, ...]], ...] = ()
    reconnected: bool = False  # a reflector reached the API server again after failures

    @property
    def empty(self) -> bool:
        return not self.services and not self.node and not self.invalid and not self.reconnected


class ClusterCache:
    """Thread-safe; every method may be called from any thread."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.services: dict[ObjectKey, Service] = {}
        self._slices: dict[ObjectKey, EndpointSlice] = {}
        self._slices_of: dict[ObjectKey, set[ObjectKey]] = {}  # Service -> its slices
        self.node: NodeInfo | None = None
        self._invalid: dict[tuple[str, ObjectKey], tuple[ObjectError, ...]] = {}
        self._pending: dict[ObjectKey, float] = {}
        self._node_changed = False
        self._new_invalid: list[tuple[ObjectRef, tuple[ObjectError, ...]]] = []
        self._woken = False
        self._reconnected = False

    # --- the sink the reflectors write to -------------------------------------------

    def replace(
        self,
        kind: str,
        values: Mapping[ObjectKey, object],
        invalid: Mapping[ObjectKey, Refused],
    ) -> None:
        """After a (re)list: `values` is every valid object of `kind`, `invalid` every
        malformed one (whose last good version stays); the rest are gone."""
        with self._changed:
            held = self._held(kind)
            for key in [key for key in held if key not in values and key not in invalid]:
                self._delete(kind, key)
            for which, key in [k for k in self._invalid if k[0] == kind]:
                if key not in invalid and key not in values:
                    del self._invalid[(which, key)]  # gone while we were not watching
            for key, value in values.items():
                self._upsert(kind, key, value)
            for key, refused in invalid.items():
                self._refuse(kind, key, refused)
            self._changed.notify_all()

    def upsert(self, kind: str, key: ObjectKey, value: object) -> None:
        with self._changed:
            self._upsert(kind, key, value)
            self._changed.notify_all()

    def delete(self, kind: str, key: ObjectKey) -> None:
        with self._changed:
            self._delete(kind, key)
            self._changed.notify_all()

    def invalid(self, kind: str, key: ObjectKey, refused: Refused) -> None:
        """A malformed new version: the last good one held (if any, and the same object)
        stays, so the Service keeps what it had; reported once per problem set."""
        with self._changed:
            self._refuse(kind, key, refused)
            self._changed.notify_all()

    # --- what the engine reads ------------------------------------------------------

    def take_changes(self, timeout: float | None) -> Changes:
        """The changes since the last call, waiting up to `timeout` s for the first."""
        with self._changed:
            if not self._has_changes() and not self._woken:
                self._changed.wait(timeout)
            changes = Changes(
                self._pending, self._node_changed, tuple(self._new_invalid), self._reconnected
            )
            self._pending, self._node_changed, self._new_invalid = {}, False, []
            self._reconnected = False
            return changes

    def slices_of(self, key: ObjectKey) -> list[EndpointSlice]:
        with self._changed:
            return [self._slices[s] for s in sorted(self._slices_of.get(key, ()))]

    def malformed(self, kind: str) -> list[ObjectKey]:
        """The objects of `kind` the sources could not read, as they stand now."""
        with self._changed:
            return [key for which, key in self._invalid if which == kind]

    def snapshot(self) -> tuple[list[Service], list[EndpointSlice]]:
        with self._changed:
            return list(self.services.values()), list(self._slices.values())

    def reconnected(self, kind: str) -> None:
        """A reflector (of `kind`) reached the API server again after failures."""
        with self._changed:
            self._reconnected = True
            self._changed.notify_all()

    def wake(self) -> None:
        """End every `take_changes` wait from now on at once (shutdown)."""
        with self._changed:
            self._woken = True
            self._changed.notify_all()

    # --- internals (under the lock) -------------------------------------------------

    def _has_changes(self) -> bool:
        return bool(self._pending or self._node_changed or self._new_invalid or self._reconnected)

    def _held(self, kind: str) -> Mapping[ObjectKey, object]:
        if kind == SERVICE:
            return self.services
        if kind == SLICE:
            return self._slices
        return {("", self.node.name): self.node} if self.node is not None else {}

    def _mark(self, service: ObjectKey) -> None:
        self._pending.setdefault(service, time.monotonic())

    def _upsert(self, kind: str, key: ObjectKey, value: object) -> None:
        self._invalid.pop((kind, key), None)
        if kind == SERVICE and isinstance(value, Service):
            if self.services.get(key) != value:
                self.services[key] = value
                self._mark(key)
        elif kind == SLICE and isinstance(value, EndpointSlice):
            old = self._slices.get(key)
            if old == value:
                return
            if old is not None:
                self._forget_slice(key, old)
            self._slices[key] = value
            owner = (value.namespace, value.service_name)
            self._slices_of.setdefault(owner, set()).add(key)
            self._mark(owner)
        elif kind == NODE and isinstance(value, NodeInfo) and self.node != value:
            self.node = value
            self._node_changed = True

    def _refuse(self, kind: str, key: ObjectKey, refused: Refused) -> None:
        held = self.services.get(key) if kind == SERVICE else None
        if held is not None and held.uid != refused.uid:
            # Deleted and made again under its name while we were not looking: the
            # held version is another Service's, not a last good one of this.
            self._delete(kind, key)
        problems = refused.errors
        if self._invalid.get((kind, key)) != problems:
            self._new_invalid.append((ObjectRef(kind, *key), problems))
        self._invalid[(kind, key)] = problems

    def _delete(self, kind: str, key: ObjectKey) -> None:
        self._invalid.pop((kind, key), None)
        if kind == SERVICE:
            if self.services.pop(key, None) is not None:
                self._mark(key)
        elif kind == SLICE:
            old = self._slices.pop(key, None)
            if old is not None:
                self._forget_slice(key, old)
        elif kind == NODE and self.node is not None and self.node.name == key[1]:
            self.node = None
            self._node_changed = True

    def _forget_slice(self, key: ObjectKey, old: EndpointSlice) -> None:
        owner = (old.namespace, old.service_name)
        members = self._slices_of.get(owner)
        if members is not None:
            members.discard(key)
            if not members:
                del self._slices_of[owner]
        self._mark(owner)
