"""The IPVS table as plain, immutable values.

Every room passes these between each other: the kernel room decodes netlink
into them and encodes them back, the listing renders them, reconcile diffs
them. Nothing here does I/O.

Values follow the kernel's own encoding (include/uapi/linux/ip_vs.h) so that
every attribute round-trips unchanged; names follow ipvsadm where it has one.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6


class Protocol(IntEnum):
    TCP = socket.IPPROTO_TCP
    UDP = socket.IPPROTO_UDP
    SCTP = 132  # socket.IPPROTO_SCTP is missing on some builds


class ServiceFlag(IntFlag):
    """IP_VS_SVC_F_*: the service flags the kernel lets us set."""

    PERSISTENT = 0x0001
    HASHED = 0x0002  # kernel-internal: reported in dumps, never set by us
    ONEPACKET = 0x0004
    SCHED1 = 0x0008  # sh-fallback / mh-fallback
    SCHED2 = 0x0010  # sh-port / mh-port
    SCHED3 = 0x0020


# The flags a user may set; HASHED is masked out of everything we compare.
SETTABLE_FLAGS = (
    ServiceFlag.PERSISTENT
    | ServiceFlag.ONEPACKET
    | ServiceFlag.SCHED1
    | ServiceFlag.SCHED2
    | ServiceFlag.SCHED3
)


class ForwardMethod(IntEnum):
    """IP_VS_CONN_F_* forwarding methods (the low 3 bits of a dest's conn flags)."""

    MASQ = 0
    LOCAL = 1
    TUNNEL = 2
    ROUTE = 3
    BYPASS = 4


class TunnelType(IntEnum):
    IPIP = 0
    GUE = 1
    GRE = 2


class TunnelFlag(IntFlag):
    NOCSUM = 0x0000
    CSUM = 0x0001
    REMCSUM = 0x0002


@dataclass(frozen=True, order=True)
class ServiceKey:
    """What identifies a virtual server in the kernel.

    Either (family, protocol, address, port) with fwmark 0, or (family, fwmark)
    with protocol 0, address "" and port 0.
    """

    family: int
    protocol: int = 0
    address: str = ""
    port: int = 0
    fwmark: int = 0

    @classmethod
    def for_fwmark(cls, family: int, fwmark: int) -> ServiceKey:
        return cls(family=family, fwmark=fwmark)

    @property
    def is_fwmark(self) -> bool:
        return self.fwmark != 0


def address_family(address: str) -> int:
    return AF_INET6 if ":" in address else AF_INET


def canonical_address(address: str) -> str:
    """An IP address in the kernel's spelling (inet_ntop), so equal addresses compare equal.

    Raises OSError for text that is not an IP address.
    """
    family = address_family(address)
    return socket.inet_ntop(family, socket.inet_pton(family, address))


def full_netmask(family: int) -> int:
    """The netmask the kernel stores when none is given (see `VirtualServer.netmask`)."""
    return 0xFFFFFFFF if family == AF_INET else 128


@dataclass(frozen=True)
class VirtualServer:
    """A virtual server's configuration (no counters).

    `netmask` is the kernel's value: for IPv4 the mask as a 32-bit number in host
    order (0xFFFFFFFF is /32), for IPv6 a prefix length (128).
    `timeout` is the persistence timeout in seconds (0 unless persistent).
    `flags` holds only SETTABLE_FLAGS.
    """

    key: ServiceKey
    scheduler: str = "rr"
    flags: int = 0
    timeout: int = 0
    netmask: int = -1  # replaced by full_netmask(family) in __post_init__
    pe_name: str = ""

    def __post_init__(self) -> None:
        if self.netmask == -1:
            object.__setattr__(self, "netmask", full_netmask(self.key.family))
        object.__setattr__(self, "flags", int(self.flags) & int(SETTABLE_FLAGS))


@dataclass(frozen=True)
class RealServer:
    """A real server's configuration within one virtual server.

    `family` is the real server's own address family; it differs from the
    service's only for tunnelled IPv4-in-IPv6 (or the reverse) destinations.
    `family` 0 means "the service's".
    """

    address: str
    port: int
    family: int = 0
    forward: ForwardMethod = ForwardMethod.MASQ
    weight: int = 1
    upper_threshold: int = 0
    lower_threshold: int = 0
    tunnel_type: TunnelType = TunnelType.IPIP
    tunnel_port: int = 0
    tunnel_flags: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass(frozen=True)
class Stats:
    """A virtual or real server's counters (IPVS_STATS_ATTR_*, 64-bit)."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0


@dataclass(frozen=True)
class RealServerEntry:
    """A real server as dumped: configuration, connection counts and stats."""

    server: RealServer
    active_conns: int = 0
    inactive_conns: int = 0
    persistent_conns: int = 0
    stats: Stats = field(default_factory=Stats)


@dataclass(frozen=True)
class VirtualServerEntry:
    """A virtual server as dumped, with its real servers in kernel order."""

    service: VirtualServer
    stats: Stats = field(default_factory=Stats)
    real_servers: tuple[RealServerEntry, ...] = ()


@dataclass(frozen=True)
class KernelInfo:
    """IPVS_CMD_GET_INFO: `version` packed as (major << 16) | (minor << 8) | patch."""

    version: int
    conn_tab_size: int

    @property
    def version_text(self) -> str:
        v = self.version
        return f"{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"


@dataclass(frozen=True)
class Timeouts:
    """IPVS_CMD_GET_CONFIG / SET_CONFIG, in seconds; 0 in SET_CONFIG leaves a value unchanged."""

    tcp: int
    tcp_fin: int
    udp: int


@dataclass(frozen=True)
class KernelTable:
    """Everything `ipvsadm -Ln` shows: the header info and every virtual server."""

    info: KernelInfo
    services: tuple[VirtualServerEntry, ...]
