"""The kernel's table as a planner's copy: the entries after a list of changes.

The agent plans each event against its copy of the table instead of dumping
the kernel again, so the copy must follow every change the kernel accepted, as
the kernel applies it: `-A` adds an empty service, `-E` replaces its config,
`-D` takes its real servers with it, `-a` puts the new real server first (the
kernel lists the newest first), `-e` keeps the connection counts, `-d` drops it.
A change whose target is missing is skipped: the kernel refused it too.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import RealServerEntry, ServiceKey, VirtualServerEntry

__all__ = ["apply_to_copy"]


def apply_to_copy(
    table: MutableMapping[ServiceKey, VirtualServerEntry], changes: Iterable[IpvsChange]
) -> None:
    """Carry `changes` (those the kernel accepted) out on `table`, in order."""
    for op, service, server in changes:
        key = service.key
        entry = table.get(key)
        if op is Op.ADD_SERVICE:
            table[key] = VirtualServerEntry(service)
        elif entry is None:
            continue
        elif op is Op.EDIT_SERVICE:
            table[key] = entry._replace(service=service)
        elif op is Op.DELETE_SERVICE:
            del table[key]
        elif server is not None:
            others = tuple(rs for rs in entry.real_servers if rs.server.key != server.key)
            if op is Op.ADD_REAL:
                table[key] = entry._replace(real_servers=(RealServerEntry(server), *others))
            elif op is Op.EDIT_REAL:
                table[key] = entry._replace(
                    real_servers=tuple(
                        rs._replace(server=server) if rs.server.key == server.key else rs
                        for rs in entry.real_servers
                    )
                )
            else:
                table[key] = entry._replace(real_servers=others)
