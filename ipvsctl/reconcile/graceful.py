"""Graceful termination: which drained real servers may go now.

A TCP real server whose endpoint left is set to weight 0, not deleted, so its
connections finish while new ones go elsewhere (plan.real_servers). This module
remembers since when each one drains, and says which to delete: those with no
active or inactive connection left (checked every few seconds, where
kube-proxy's graceful_termination.go waits a minute), and those past the grace
period whatever they still hold. UDP real servers are never drained: they go at
once, and the conntrack entries that would keep sending a flow to them go too
(kubernetes #71514, #125467).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.desired import DesiredVirtualServer
from ipvsctl.model.ipvs import Protocol, ServiceKey, VirtualServerEntry
from ipvsctl.plan import RealServerKey

DrainKey = tuple[ServiceKey, RealServerKey]


class UdpFlow(NamedTuple):
    """A UDP flow to forget: the virtual server's address and port, the real server's."""

    service_address: str
    service_port: int
    real_address: str
    real_port: int


class Drains:
    """The real servers draining now, by virtual server, each with the time its drain
    was first seen (kept while it drains, so the grace period runs from there)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.since: dict[ServiceKey, dict[RealServerKey, float]] = {}

    def __bool__(self) -> bool:
        return bool(self.since)

    def services(self) -> set[ServiceKey]:
        return set(self.since)

    def refresh(
        self,
        table: Mapping[ServiceKey, VirtualServerEntry],
        desired: Mapping[ServiceKey, DesiredVirtualServer],
        keys: Iterable[ServiceKey],
        now: float,
    ) -> None:
        """Re-read the drains of the virtual servers `keys` from the table: every real
        server there that is not desired (at weight 0, or about to be deleted)."""
        for key in keys:
            entry, wanted = table.get(key), desired.get(key)
            known = self.since.pop(key, {})
            if entry is None or wanted is None:
                continue
            if not known and len(entry.real_servers) <= len(wanted.real_servers):
                continue  # the common case at a full sync of 10,000s: nothing extra there
            keep = {server.key for server in wanted.real_servers}
            leaving = {
                present.server.key: known.get(present.server.key, now)
                for present in entry.real_servers
                if present.server.key not in keep
            }
            if leaving:
                self.since[key] = leaving

    def expired(self, now: float) -> frozenset[DrainKey]:
        return frozenset(
            (key, server)
            for key, servers in self.since.items()
            for server, since in servers.items()
            if now - since >= self.period
        )


def forgotten_udp_flows(
    changes: Iterable[IpvsChange], table: Mapping[ServiceKey, VirtualServerEntry]
) -> list[UdpFlow]:
    """The UDP flows the accepted `changes` leave without a real server: one per `-d`, and
    one per real server of a `-D` (`table` is the copy from before the changes). A `-d`
    followed by an `-a` of the same server moves it in its list (`plan.hash_order`): the
    kernel revives that very server, and its flows go on."""
    changes = list(changes)
    readded = {
        (change.service.key, change.real_server.key)
        for change in changes
        if change.op is Op.ADD_REAL and change.real_server is not None
    }
    flows = []
    for change in changes:
        key = change.service.key
        if key.protocol != Protocol.UDP:
            continue
        if change.op is Op.DELETE_REAL and change.real_server is not None:
            if (key, change.real_server.key) in readded:
                continue
            flows.append(UdpFlow(key.address, key.port, *change.real_server.key))
        elif change.op is Op.DELETE_SERVICE and key in table:
            flows.extend(
                UdpFlow(key.address, key.port, *entry.server.key)
                for entry in table[key].real_servers
            )
    return flows
