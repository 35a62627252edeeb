"""The real-server edits of one virtual server, with graceful termination.

A real server that leaves while it still has connections is set to weight 0
instead of deleted, so the scheduler sends it nothing new while its
connections finish (kube-proxy's graceful_termination.go). A later plan,
seeing it idle, deletes it. UDP and SCTP real servers go at once, as in
kube-proxy: a datagram flow has no end to wait for, and with
expire_nodest_conn their entries die on the next packet. So do the real
servers of a dh service, and those of sh, mh and dh services are kept in one
canonical order (see `hash_order`).
"""

from __future__ import annotations

from collections.abc import Collection

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import Protocol, RealServer, RealServerEntry, VirtualServer
from ipvsctl.plan.hash_order import canonical_order, is_hashed, plan_hash_order

__all__ = ["RealServerKey", "drains_gracefully", "plan_real_servers"]

RealServerKey = tuple[str, int]  # (address, port), as RealServer.key

# fwmark services (protocol 0) drain: the mark may well select TCP traffic.
_IMMEDIATE_PROTOCOLS = frozenset({Protocol.UDP, Protocol.SCTP})


def drains_gracefully(service: VirtualServer) -> bool:
    # dh has no fallback: a drained server it picks would refuse every new client
    # (see `hash_order`), so its leavers go at once.
    return service.key.protocol not in _IMMEDIATE_PROTOCOLS and service.scheduler != "dh"


def _has_connections(entry: RealServerEntry) -> bool:
    return entry.active_conns + entry.inactive_conns > 0


def _same_servers(wanted: tuple[RealServer, ...], present: tuple[RealServerEntry, ...]) -> bool:
    """True when `present` holds exactly `wanted` in its order or the reverse.

    The fast path for a converged service, which needs no index. The kernel
    dumps a service's real servers newest first (`list_add_rcu` in
    `__ip_vs_update_dest`), so servers we added in key order come back
    reversed; any other order takes the indexed path.
    """
    if len(wanted) != len(present):
        return False
    servers = [entry.server for entry in present]
    # The first address tells the order; a wrong guess only costs the index.
    if servers and servers[0].address != wanted[0].address:
        servers.reverse()
    return servers == list(wanted)


def plan_real_servers(
    service: VirtualServer,
    wanted: tuple[RealServer, ...],
    present: tuple[RealServerEntry, ...],
    expired: Collection[RealServerKey] = (),
    counts_known: bool = True,
) -> list[IpvsChange]:
    """The edits turning `present` into `wanted` within `service`, adds before removals.

    Adds and edits (a returning drained server gets its weight back) come
    first so the service never has fewer servers to choose from than it
    needs; drains and deletes follow. `expired` names leaving servers whose
    grace period has passed: they are deleted even with connections.
    `counts_known` False (the agent plans from its own copy of the table, whose
    connection counts are old) drains every leaving server that drains
    gracefully, whatever its counts say; a later check with fresh counts
    deletes it once idle.
    """
    if is_hashed(service):
        return _plan_hashed(service, wanted, present, expired, counts_known)
    if _same_servers(wanted, present):
        return []
    present_by_key = {entry.server.key: entry for entry in present}
    changes: list[IpvsChange] = []
    for server in wanted:
        entry = present_by_key.pop(server.key, None)
        if entry is None:
            changes.append(IpvsChange(Op.ADD_REAL, service, server))
        elif entry.server != server:
            changes.append(IpvsChange(Op.EDIT_REAL, service, server))
    graceful = drains_gracefully(service)
    for key, entry in present_by_key.items():
        busy = not counts_known or _has_connections(entry)
        if graceful and busy and key not in expired:
            if entry.server.weight != 0:
                drained = entry.server._replace(weight=0)
                changes.append(IpvsChange(Op.EDIT_REAL, service, drained))
        else:
            changes.append(IpvsChange(Op.DELETE_REAL, service, entry.server))
    return changes


def _plan_hashed(
    service: VirtualServer,
    wanted: tuple[RealServer, ...],
    present: tuple[RealServerEntry, ...],
    expired: Collection[RealServerKey],
    counts_known: bool,
) -> list[IpvsChange]:
    """As `plan_real_servers`, keeping the list in canonical order (`hash_order`): the
    reorder, adds and edits first, then the deletes, which move no other server."""
    if len(wanted) == len(present) and [e.server for e in present] == canonical_order(wanted):
        return []  # converged
    wanted_keys = {server.key for server in wanted}
    graceful = drains_gracefully(service)
    final = list(wanted)
    deletes = []
    for entry in present:
        if entry.server.key in wanted_keys:
            continue
        busy = not counts_known or _has_connections(entry)
        if graceful and busy and entry.server.key not in expired:
            final.append(entry.server._replace(weight=0))
        else:
            deletes.append(IpvsChange(Op.DELETE_REAL, service, entry.server))
    changes = plan_hash_order(service, canonical_order(final), present)
    return changes + deletes
