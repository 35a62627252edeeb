"""Hash schedulers (sh, mh, dh): one table per set of real servers, on every node.

The kernel fills a hash scheduler's table by walking the service's real
servers in list order (`ip_vs_sh_reassign`, `ip_vs_dh_reassign`; Maglev's
`ip_vs_mh_populate` too: servers take turns claiming slots in list order, and
the first to reach a contested slot keeps it). That list is insertion history:
`-a` puts the new server at the head. Two nodes that reached the same real
servers by different histories would send one client to different backends.
So every hash service's real servers are kept in one canonical list order,
`canonical_order`, whatever the history, at the cost of moving some of them.

Moving is `-d` then `-a` at once: the kernel keeps a deleted real server in
its trash and an `-a` of the same address and port revives that very server
(`ip_vs_trash_get_dest`), so the connections pointing at it go on; only a
packet arriving between the two would find it unavailable
(`expire_nodest_conn`), hence each pair is adjacent in the batch.

A draining real server (weight 0) keeps its slots in sh's and dh's tables
(they fill by list position) and in mh's (by `last_weight`), and a client
hashed to it is refused unless the scheduler's fallback flag sends it to
another server. With the flag, a client whose server is available keeps it
(`ip_vs_sh_get_fallback` and `ip_vs_mh_get_fallback` try it first), so sh and
mh services always carry it. dh has no such flag and hashes the destination
address, one per virtual server: a drained server that is the one picked
refuses every new client of the service for as long as it drains, so dh
servers leave at once instead of draining.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import RealServer, RealServerEntry, ServiceFlag, VirtualServer

__all__ = [
    "HASH_SCHEDULERS",
    "canonical_order",
    "hash_service",
    "is_hashed",
    "plan_hash_order",
]

HASH_SCHEDULERS = frozenset({"sh", "mh", "dh"})
# The schedulers whose flag-1 re-hashes a client whose server is unavailable.
_FALLBACK = {"sh": int(ServiceFlag.SCHED1), "mh": int(ServiceFlag.SCHED1)}


def is_hashed(service: VirtualServer) -> bool:
    return service.scheduler in HASH_SCHEDULERS


def hash_service(service: VirtualServer) -> VirtualServer:
    """`service` with its scheduler's fallback flag set (sh, mh); any other unchanged."""
    flag = _FALLBACK.get(service.scheduler, 0)
    if not flag or service.flags & flag:
        return service
    return service._replace(flags=service.flags | flag)


def _order_key(server: RealServer) -> tuple[int, bytes, int]:
    family = socket.AF_INET6 if ":" in server.address else socket.AF_INET
    packed = socket.inet_pton(family, server.address)
    return (len(packed), packed, server.port)


def canonical_order(servers: Iterable[RealServer]) -> list[RealServer]:
    """The real servers in the kernel's list order every node keeps: highest address first
    (IPv6 before IPv4), then highest port.

    Adding servers in ascending order gives this list (each `-a` goes to the
    head), so a new service needs no extra operation; and a newcomer with the
    highest address, what sequential address allocation tends to give, goes
    to the head in one `-a`.
    """
    return sorted(servers, key=_order_key, reverse=True)


def plan_hash_order(
    service: VirtualServer,
    final: Sequence[RealServer],
    present: Sequence[RealServerEntry],
) -> list[IpvsChange]:
    """The fewest `-a`, `-e` and `-d -a` pairs that turn the present list into `final`
    (canonical order, each server with the config it must end with).

    An `-a` goes to the head, so the servers left alone end up at the tail in
    their present order: they must be a suffix of `final` whose present
    positions rise. The longest such suffix stays (edited in place where its
    config differs); everything before it is added, or deleted and re-added,
    from the tail of that prefix towards the head. Servers not in `final` are
    the caller's to delete.
    """
    position = {entry.server.key: index for index, entry in enumerate(present)}
    current = {entry.server.key: entry.server for entry in present}
    start = len(final)
    after = len(present)
    while start > 0:
        at = position.get(final[start - 1].key)
        if at is None or at >= after:
            break
        start, after = start - 1, at
    changes: list[IpvsChange] = []
    for server in reversed(final[:start]):
        if server.key in current:
            changes.append(IpvsChange(Op.DELETE_REAL, service, current[server.key]))
        changes.append(IpvsChange(Op.ADD_REAL, service, server))
    for server in final[start:]:
        if current[server.key] != server:
            changes.append(IpvsChange(Op.EDIT_REAL, service, server))
    return changes
