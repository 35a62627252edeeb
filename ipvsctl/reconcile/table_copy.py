"""The kernel's IPVS table as a copy: its entries after a list of changes.

One in-memory table serves two purposes. The engine plans each event against
its copy of the kernel's table instead of dumping the kernel again, so the
copy must follow every change the kernel accepted, as the kernel applies it.
The tests' fake kernel holds one too, and must refuse what the kernel refuses,
so that a plan the fake accepts means something. Both are this class.

As ip_vs_ctl.c does it: `-A` adds an empty service (EEXIST when it is there),
`-E` replaces its config, `-D` takes its real servers with it, `-a` puts the
new real server first (the kernel lists the newest first; EEXIST when it is
there), `-e` keeps the connection counts, `-d` drops it; a change to a
missing service is refused with ESRCH, one to a missing real server with
ENOENT, as the kernel answers. An `-a` right after the `-d` of the same real
server (a hash service's move, see `plan.hash_order`) gets back its
connection counts and stats: the kernel revives the deleted server from its
trash (`ip_vs_trash_get_dest`), connections and all.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import RealServerEntry, ServiceKey, VirtualServerEntry

__all__ = ["TableCopy"]


class TableCopy:
    """The entries by service key; `apply` answers as the kernel would (0 or an errno)."""

    def __init__(self, entries: Iterable[VirtualServerEntry] = ()) -> None:
        self.entries: dict[ServiceKey, VirtualServerEntry] = {
            entry.service.key: entry for entry in entries
        }
        # The real server the last change deleted, as the kernel's trash holds it.
        self._deleted: tuple[ServiceKey, RealServerEntry] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def get(self, key: ServiceKey) -> VirtualServerEntry | None:
        return self.entries.get(key)

    def listing(self) -> tuple[VirtualServerEntry, ...]:
        """Every entry, as a dump lists them."""
        return tuple(self.entries.values())

    def apply_accepted(self, changes: Iterable[IpvsChange]) -> bool:
        """Carry out `changes` the kernel accepted, in order; False when the copy refused
        one the kernel took: the copy is not the kernel's table any more."""
        answers = [self.apply(change) for change in changes]
        return not any(answers)

    def apply(self, change: IpvsChange) -> int:
        """Carry out one change; 0, or the errno the kernel answers and nothing changed."""
        deleted, self._deleted = self._deleted, None
        op, service, server = change
        key = service.key
        entry = self.entries.get(key)
        if op is Op.ADD_SERVICE:
            if entry is not None:
                return errno.EEXIST
            self.entries[key] = VirtualServerEntry(service)
            return 0
        if entry is None:
            return errno.ESRCH
        if op is Op.EDIT_SERVICE:
            self.entries[key] = entry._replace(service=service)
            return 0
        if op is Op.DELETE_SERVICE:
            del self.entries[key]
            return 0
        assert server is not None  # every real-server op names one
        present = [rs for rs in entry.real_servers if rs.server.key == server.key]
        if op is Op.ADD_REAL:
            if present:
                return errno.EEXIST
            added = RealServerEntry(server)
            if deleted is not None and deleted[0] == key and deleted[1].server.key == server.key:
                added = deleted[1]._replace(server=server)
            self.entries[key] = entry._replace(real_servers=(added, *entry.real_servers))
            return 0
        if not present:
            return errno.ENOENT
        if op is Op.EDIT_REAL:
            servers = tuple(
                rs._replace(server=server) if rs.server.key == server.key else rs
                for rs in entry.real_servers
            )
        else:
            servers = tuple(rs for rs in entry.real_servers if rs.server.key != server.key)
            self._deleted = (key, present[0])
        self.entries[key] = entry._replace(real_servers=servers)
        return 0
