"""What the Services want: each Service translated (again on every change), and the
virtual servers of all of them by key, for the engine to plan against.

Two Services may name the same virtual server (an external IP both list): the
one that had it first keeps it, the other gets an error for it and is
translated again once the key is free, so the wanted state never holds a key
twice. At a start (`retranslate_all`) the first is the first by
namespace/name, as `translate` decides it for a whole table.

Errors refuse a Service (`rejected`); warnings (`warned`: an external address of
a family the Service does not have, skipped) are told but refuse nothing.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from ipvsctl.model.desired import DesiredState, DesiredVirtualServer, TranslateConfig
from ipvsctl.model.inputs import EndpointSlice, ObjectError, ObjectKey, Service
from ipvsctl.model.ipvs import ServiceKey
from ipvsctl.translate import conflict_error, service_warnings, translate_service


class ServiceSource(Protocol):
    """Where the Services and their EndpointSlices are read: the agent's cache of the
    API, or a manifest file's objects."""

    @property
    def services(self) -> Mapping[ObjectKey, Service]: ...

    def slices_of(self, key: ObjectKey) -> Sequence[EndpointSlice]: ...


class WantedServices:
    """Not thread-safe: one thread calls it. `rejected` holds each Service's problems:
    a Service that was never valid contributes nothing; one whose latest version is
    invalid contributes what its last good version gives. `warned` holds the warnings
    of each Service translated without a problem (it is served all the same)."""

    def __init__(self, config: TranslateConfig) -> None:
        self.config = config
        self.wanted: dict[ObjectKey, tuple[DesiredVirtualServer, ...]] = {}
        self.by_key: dict[ServiceKey, DesiredVirtualServer] = {}
        self.owner: dict[ServiceKey, ObjectKey] = {}
        self.waiting: dict[ServiceKey, set[ObjectKey]] = {}  # refused a key someone else has
        self.rejected: dict[ObjectKey, tuple[ObjectError, ...]] = {}
        self.warned: dict[ObjectKey, tuple[ObjectError, ...]] = {}
        # Each Service's last version that translated without a problem.
        self.last_good: dict[ObjectKey, Service] = {}
        self.users: Counter[str] = Counter()  # bound address -> virtual servers on it
        self.real_servers = 0

    def retranslate(self, keys: Iterable[ObjectKey], source: ServiceSource) -> set[ServiceKey]:
        """Translate the Services `keys` again; the virtual server keys that may change.

        A Service refused a key another one has is translated again once that
        key is free.
        """
        affected: set[ServiceKey] = set()
        queue = deque(sorted(set(keys)))
        services = source.services
        while queue:
            key = queue.popleft()
            # A waiter is translated again even if it was already: each requeue follows
            # a real release of a key, so this ends.
            freed = self._translate_one(key, services.get(key), source, affected)
            if freed:
                queue.extend(sorted(freed))
        return affected

    def _translate_one(
        self,
        key: ObjectKey,
        service: Service | None,
        source: ServiceSource,
        affected: set[ServiceKey],
    ) -> set[ObjectKey]:
        servers: tuple[DesiredVirtualServer, ...] = ()
        errors: list[ObjectError] = []
        warnings: tuple[ObjectError, ...] = ()
        if service is None:
            self.last_good.pop(key, None)
        else:
            slices = source.slices_of(key)
            translated, problems = translate_service(service, slices, self.config)
            errors.extend(problems)
            if not problems:
                self.last_good[key] = service
                warnings = service_warnings(service)
            elif (good := self.last_good.get(key)) is not None and good.uid == service.uid:
                # A live Service whose update is invalid (a scheduler typo) keeps what
                # its last good version gives, with today's endpoints, until it is fixed.
                # (Not one deleted and made again under its name: that is another.)
                translated, _ = translate_service(good, slices, self.config)
            kept = []
            for server in translated:
                owner = self.owner.get(server.key, key)
                if owner == key:
                    kept.append(server)
                else:
                    errors.append(conflict_error(service, server.key, "/".join(owner)))
                    self.waiting.setdefault(server.key, set()).add(key)
            servers = tuple(kept)
        if errors:
            self.rejected[key] = tuple(errors)
        else:
            self.rejected.pop(key, None)
        if warnings:
            self.warned[key] = warnings
        else:
            self.warned.pop(key, None)
        old = self.wanted.pop(key, ())
        kept_keys = {server.key for server in servers} if old else set()
        freed: set[ObjectKey] = set()
        for server in old:
            affected.add(server.key)
            del self.by_key[server.key], self.owner[server.key]
            self._count(server, -1)
            if server.key not in kept_keys:  # released: whoever waits for it may have it
                freed |= self.waiting.pop(server.key, set())
        for server in servers:
            affected.add(server.key)
            self.by_key[server.key] = server
            self.owner[server.key] = key
            self._count(server, +1)
        if servers:
            self.wanted[key] = servers
        return freed

    def _count(self, server: DesiredVirtualServer, step: int) -> None:
        self.real_servers += step * len(server.real_servers)
        if server.bound:
            self.users[server.key.address] += step
            if self.users[server.key.address] <= 0:
                del self.users[server.key.address]

    def retranslate_all(self, source: ServiceSource, config: TranslateConfig) -> None:
        """Start over with `config` (this node's addresses or zone changed)."""
        self.config = config
        self.wanted.clear()
        self.by_key.clear()
        self.owner.clear()
        self.waiting.clear()
        self.rejected.clear()
        self.warned.clear()
        self.users.clear()
        self.real_servers = 0
        self.retranslate(list(source.services), source)

    def errors(self) -> tuple[ObjectError, ...]:
        """Every Service's problems, by namespace/name."""
        return tuple(error for key in sorted(self.rejected) for error in self.rejected[key])

    def warnings(self) -> tuple[ObjectError, ...]:
        """Every served Service's warnings, by namespace/name."""
        return tuple(warning for key in sorted(self.warned) for warning in self.warned[key])

    def desired(self) -> DesiredState:
        """Everything the Services want now."""
        return DesiredState(tuple(self.by_key.values()), frozenset(self.users))
