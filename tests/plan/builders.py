"""Short constructors for the planner's inputs, so each test case reads as a table row."""

from __future__ import annotations

from typing import Any

from ipvsctl.model.desired import DesiredVirtualServer
from ipvsctl.model.ipvs import (
    AF_INET,
    AF_INET6,
    Protocol,
    RealServer,
    RealServerEntry,
    ServiceKey,
    VirtualServer,
    VirtualServerEntry,
    address_family,
)


def service(
    address: str, port: int, protocol: Protocol = Protocol.TCP, **config: Any
) -> VirtualServer:
    key = ServiceKey(address_family(address), protocol, address, port)
    return VirtualServer(key)._replace(**config)


def tcp(address: str, port: int, **config: Any) -> VirtualServer:
    return service(address, port, Protocol.TCP, **config)


def udp(address: str, port: int, **config: Any) -> VirtualServer:
    return service(address, port, Protocol.UDP, **config)


def sctp(address: str, port: int, **config: Any) -> VirtualServer:
    return service(address, port, Protocol.SCTP, **config)


def fwmark(mark: int, ipv6: bool = False, **config: Any) -> VirtualServer:
    key = ServiceKey.for_fwmark(AF_INET6 if ipv6 else AF_INET, mark)
    return VirtualServer(key)._replace(**config)


def rs(address: str, port: int = 8080, **config: Any) -> RealServer:
    return RealServer(address, port)._replace(**config)


def conns(server: RealServer, active: int = 0, inactive: int = 0) -> RealServerEntry:
    return RealServerEntry(server, active_conns=active, inactive_conns=inactive)


def want(vs: VirtualServer, *servers: RealServer, bound: bool = True) -> DesiredVirtualServer:
    ordered = tuple(sorted(servers, key=lambda server: server.key))
    return DesiredVirtualServer(vs, ordered, owner="default/web", bound=bound)


def have(vs: VirtualServer, *servers: RealServer | RealServerEntry) -> VirtualServerEntry:
    entries = tuple(s if isinstance(s, RealServerEntry) else RealServerEntry(s) for s in servers)
    return VirtualServerEntry(vs, real_servers=entries)
