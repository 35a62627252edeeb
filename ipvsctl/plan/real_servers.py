"""The real-server edits of one virtual server, with graceful termination.

A real server that leaves while it still has connections is set to weight 0
instead of deleted, so the scheduler sends it nothing new while its
connections finish (kube-proxy's graceful_termination.go). A later plan,
seeing it idle, deletes it. UDP and SCTP real servers go at once, as in
kube-proxy: a datagram flow has no end to wait for, and with
expire_nodest_conn their entries die on the next packet.
"""

from __future__ import annotations

from collections.abc import Collection

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import Protocol, RealServer, RealServerEntry, VirtualServer

__all__ = ["RealServerKey", "drains_gracefully", "plan_real_servers"]

RealServerKey = tuple[str, int]  # (address, port), as RealServer.key

# fwmark services (protocol 0) drain: the mark may well select TCP traffic.
_IMMEDIATE_PROTOCOLS = frozenset({Protocol.UDP, Protocol.SCTP})


def drains_gracefully(service: VirtualServer) -> bool:
    return service.key.protocol not in _IMMEDIATE_PROTOCOLS


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
