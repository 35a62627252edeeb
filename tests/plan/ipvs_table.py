"""An in-test IPVS table that applies IpvsChange with the kernel's semantics.

Each change is checked the way ip_vs_ctl.c checks it: adding an existing
service or destination fails (EEXIST), editing or deleting a missing one
fails (ESRCH), a destination needs its service. Deleting a service takes its
destinations with it. An edit keeps a destination's connection counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import RealServerEntry, ServiceKey, VirtualServer, VirtualServerEntry


class RefusedChange(AssertionError):
    """The kernel would have refused this change."""


@dataclass
class TableService:
    service: VirtualServer
    real_servers: dict[tuple[str, int], RealServerEntry] = field(default_factory=dict)


class IpvsTable:
    def __init__(self, entries: tuple[VirtualServerEntry, ...] = ()) -> None:
        self.services: dict[ServiceKey, TableService] = {}
        for entry in entries:
            servers = {rs.server.key: rs for rs in entry.real_servers}
            self.services[entry.service.key] = TableService(entry.service, servers)

    def entries(self) -> tuple[VirtualServerEntry, ...]:
        return tuple(
            VirtualServerEntry(held.service, real_servers=tuple(held.real_servers.values()))
            for held in self.services.values()
        )

    def apply(self, change: IpvsChange) -> None:
        key = change.service.key
        held = self.services.get(key)
        if change.op is Op.ADD_SERVICE:
            if held is not None:
                raise RefusedChange(f"EEXIST: {change}")
            self.services[key] = TableService(change.service)
            return
        if held is None:
            raise RefusedChange(f"ESRCH: no service for {change}")
        if change.op is Op.EDIT_SERVICE:
            held.service = change.service
        elif change.op is Op.DELETE_SERVICE:
            del self.services[key]
        else:
            self._apply_real(held, change)

    @staticmethod
    def _apply_real(held: TableService, change: IpvsChange) -> None:
        server = change.real_server
        assert server is not None
        present = held.real_servers.get(server.key)
        if change.op is Op.ADD_REAL:
            if present is not None:
                raise RefusedChange(f"EEXIST: {change}")
            held.real_servers[server.key] = RealServerEntry(server)
            return
        if present is None:
            raise RefusedChange(f"ESRCH: no destination for {change}")
        if change.op is Op.EDIT_REAL:
            held.real_servers[server.key] = RealServerEntry(
                server,
                active_conns=present.active_conns,
                inactive_conns=present.inactive_conns,
            )
        else:
            del held.real_servers[server.key]
