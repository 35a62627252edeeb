"""The IPVS table as plain, immutable values.

Every room passes these between each other: the kernel room decodes netlink
into them and encodes them back, the listing renders them, reconcile diffs
them. Nothing here does I/O.

Values follow the kernel's own encoding (include/uapi/linux/ip_vs.h) so that
every attribute round-trips unchanged; names follow ipvsadm where it has one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from enum import IntEnum, IntFlag
from typing import Any, NamedTuple, TypeVar

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
_SETTABLE = int(SETTABLE_FLAGS)


_Kernel = TypeVar("_Kernel", bound=IntEnum)


def _unnamed_member(cls: type[_Kernel], value: object, limit: int) -> _Kernel | None:
    """A member for a value a newer kernel may report that this release has no name for.

    It compares, hashes and encodes as the number, so a dump decodes and
    round-trips instead of failing; it is not among the class's named members.
    """
    if not isinstance(value, int) or not 0 <= value < limit:
        return None
    member = int.__new__(cls, value)
    member._name_ = f"UNKNOWN_{value}"
    member._value_ = value
    return member


class ForwardMethod(IntEnum):
    """IP_VS_CONN_F_* forwarding methods (the low 3 bits of a dest's conn flags).

    Any other 3-bit value makes an unnamed member (see `_unnamed_member`).
    """

    MASQ = 0
    LOCAL = 1
    TUNNEL = 2
    ROUTE = 3
    BYPASS = 4

    @classmethod
    def _missing_(cls, value: object) -> ForwardMethod | None:
        return _unnamed_member(cls, value, 1 << 3)


class TunnelType(IntEnum):
    """IP_VS_CONN_F_TUNNEL_TYPE_*; any other u8 value makes an unnamed member."""

    IPIP = 0
    GUE = 1
    GRE = 2

    @classmethod
    def _missing_(cls, value: object) -> TunnelType | None:
        return _unnamed_member(cls, value, 1 << 8)


class TunnelFlag(IntFlag):
    NOCSUM = 0x0000
    CSUM = 0x0001
    REMCSUM = 0x0002


def address_family(address: str) -> int:
    return AF_INET6 if ":" in address else AF_INET


def canonical_address(address: str) -> str:
    """An IP address in the kernel's spelling (inet_ntop), so equal addresses compare equal.

    Accepts what inet_pton accepts: IPv4 only as four decimal parts without
    leading zeros (`10.0.0.01` and `10.1` are refused, as the kernel's own
    parsers refuse them); IPv6 in any case and shorthand, `::ffff:1.2.3.4` or
    `::FFFF:102:304` both coming out as `::ffff:1.2.3.4`. Raises ValueError
    naming the text otherwise.
    """
    try:
        if ":" in address:
            return socket.inet_ntop(AF_INET6, socket.inet_pton(AF_INET6, address))
        # Hot (every real server passes here): an IPv4 text inet_pton accepts
        # is already inet_ntop's spelling, so checking it is enough.
        socket.inet_pton(AF_INET, address)
        return address
    except (OSError, ValueError):  # ValueError: an embedded NUL
        raise ValueError(f"not an IP address: {address!r}") from None


# Every value here is an immutable tuple (NamedTuple) rather than a frozen
# dataclass: translating 10,000 Services builds 100,000s of them and the planner
# hashes and compares them all, and a tuple is built, hashed and compared in C
# where a frozen dataclass runs Python code for each (several times slower);
# creating a dataclass class also costs ~2 ms of every command's start.
# ServiceKey, VirtualServer and RealServer canonicalise their fields in __new__
# (and in `_replace`), so a built value is canonical. Only the two hot builders
# skip that, each from fields canonical already: translate (from the input
# types and TranslateConfig) and the kernel codec (from inet_ntop).
class _ServiceKeyFields(NamedTuple):
    family: int
    protocol: int = 0
    address: str = ""
    port: int = 0
    fwmark: int = 0


class ServiceKey(_ServiceKeyFields):
    """What identifies a virtual server in the kernel.

    Either (family, protocol, address, port) with fwmark 0, or (family, fwmark)
    with protocol 0, address "" and port 0. A non-empty `address` is stored in
    `canonical_address` spelling (ValueError if it is not an IP address), so
    two keys for one address are equal however it was written. Keys order by
    (family, protocol, address, port, fwmark).
    """

    __slots__ = ()

    def __new__(
        cls, family: int, protocol: int = 0, address: str = "", port: int = 0, fwmark: int = 0
    ) -> ServiceKey:
        if address:
            address = canonical_address(address)
        return tuple.__new__(cls, (family, protocol, address, port, fwmark))

    def _replace(self, **changes: Any) -> ServiceKey:
        # NamedTuple's own _replace skips __new__, and so the address check.
        return ServiceKey(**{**self._asdict(), **changes})

    @classmethod
    def for_fwmark(cls, family: int, fwmark: int) -> ServiceKey:
        return cls(family=family, fwmark=fwmark)

    @property
    def is_fwmark(self) -> bool:
        return self.fwmark != 0


def full_netmask(family: int) -> int:
    """The netmask the kernel stores when none is given (see `VirtualServer.netmask`)."""
    return 0xFFFFFFFF if family == AF_INET else 128


class _VirtualServerFields(NamedTuple):
    key: ServiceKey
    scheduler: str = "rr"
    flags: int = 0
    timeout: int = 0
    netmask: int = -1
    pe_name: str = ""


class VirtualServer(_VirtualServerFields):
    """A virtual server's configuration (no counters).

    `netmask` is the kernel's value: for IPv4 the mask as a 32-bit number in host
    order (0xFFFFFFFF is /32), for IPv6 a prefix length (128); -1 (the default)
    stands for that full mask. `timeout` is the persistence timeout in seconds
    (0 unless persistent). `flags` holds only SETTABLE_FLAGS, as a plain int.
    """

    __slots__ = ()

    def __new__(
        cls,
        key: ServiceKey,
        scheduler: str = "rr",
        flags: int = 0,
        timeout: int = 0,
        netmask: int = -1,
        pe_name: str = "",
    ) -> VirtualServer:
        if netmask == -1:
            netmask = full_netmask(key.family)
        # Most callers pass a plain settable int: leave those be.
        if type(flags) is not int or flags & ~_SETTABLE:
            flags = int(flags) & _SETTABLE
        return tuple.__new__(cls, (key, scheduler, flags, timeout, netmask, pe_name))

    def _replace(self, **changes: Any) -> VirtualServer:
        # NamedTuple's own _replace skips __new__, and so the flag mask.
        return VirtualServer(**{**self._asdict(), **changes})


class _RealServerFields(NamedTuple):
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


class RealServer(_RealServerFields):
    """A real server's configuration within one virtual server.

    `family` is the real server's own address family; it differs from the
    service's only for tunnelled IPv4-in-IPv6 (or the reverse) destinations.
    `family` 0 means "the service's": ask `family_in`. `address` is stored in
    `canonical_address` spelling (ValueError if it is not an IP address).
    """

    __slots__ = ()

    def __new__(
        cls,
        address: str,
        port: int,
        family: int = 0,
        forward: ForwardMethod = ForwardMethod.MASQ,
        weight: int = 1,
        upper_threshold: int = 0,
        lower_threshold: int = 0,
        tunnel_type: TunnelType = TunnelType.IPIP,
        tunnel_port: int = 0,
        tunnel_flags: int = 0,
    ) -> RealServer:
        return tuple.__new__(
            cls,
            (
                canonical_address(address),
                port,
                family,
                forward,
                weight,
                upper_threshold,
                lower_threshold,
                tunnel_type,
                tunnel_port,
                tunnel_flags,
            ),
        )

    @classmethod
    def endpoints(
        cls, addresses: Iterable[str], port: int, forward: ForwardMethod
    ) -> tuple[RealServer, ...]:
        """Weight-1 real servers at `addresses`, all on `port`, whose addresses are canonical
        already.

        For translate, whose addresses come from the input types, which hold
        them canonical already (sources spell them with `canonical_address`):
        skipping the second check saves half of building each. Anything else
        builds real servers with `RealServer(...)`.
        """
        new, ipip = tuple.__new__, TunnelType.IPIP
        return tuple(
            [new(cls, (address, port, 0, forward, 1, 0, 0, ipip, 0, 0)) for address in addresses]
        )

    @classmethod
    def from_keys(
        cls, keys: Iterable[tuple[str, int]], forward: ForwardMethod
    ) -> tuple[RealServer, ...]:
        """As `endpoints`, at (address, port) `keys`."""
        new, tail = tuple.__new__, (0, forward, 1, 0, 0, TunnelType.IPIP, 0, 0)
        return tuple([new(cls, key + tail) for key in keys])

    @classmethod
    def from_canonical(
        cls,
        fields: tuple[str, int, int, ForwardMethod, int, int, int, TunnelType, int, int],
    ) -> RealServer:
        """A real server from its ten fields in order, whose address is canonical already.

        For the kernel codec, whose addresses come straight from inet_ntop, the
        spelling `canonical_address` would return: a table dump builds 100,000s
        of these, and skipping the second check halves the cost of each.
        Anything else builds real servers with `RealServer(...)`.
        """
        return tuple.__new__(cls, fields)

    def _replace(self, **changes: Any) -> RealServer:
        # NamedTuple's own _replace skips __new__, and so the address check.
        return RealServer(**{**self._asdict(), **changes})

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)

    def family_in(self, service_family: int) -> int:
        """This real server's address family within a service of `service_family`."""
        return self.family or service_family


class Stats(NamedTuple):
    """A virtual or real server's counters (IPVS_STATS_ATTR_*, 64-bit).

    The fields are in the kernel's attribute order (IPVS_STATS_ATTR_CONNS = 1
    onwards): the codec decodes them by position, through `STATS_FIELDS`.
    """

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


STATS_FIELDS: tuple[str, ...] = Stats._fields
# The running totals and the per-second rates: ipvsadm's --stats and --rate columns.
TOTAL_FIELDS = STATS_FIELDS[:5]
RATE_FIELDS = STATS_FIELDS[5:]


class RealServerEntry(NamedTuple):
    """A real server as dumped: configuration, connection counts and stats."""

    server: RealServer
    active_conns: int = 0
    inactive_conns: int = 0
    persistent_conns: int = 0
    stats: Stats = Stats()


class VirtualServerEntry(NamedTuple):
    """A virtual server as dumped, with its real servers in kernel order."""

    service: VirtualServer
    stats: Stats = Stats()
    real_servers: tuple[RealServerEntry, ...] = ()


class KernelInfo(NamedTuple):
    """IPVS_CMD_GET_INFO: `version` packed as (major << 16) | (minor << 8) | patch."""

    version: int
    conn_tab_size: int

    @property
    def version_text(self) -> str:
        v = self.version
        return f"{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"


class Timeouts(NamedTuple):
    """IPVS_CMD_GET_CONFIG / SET_CONFIG, in seconds; 0 in SET_CONFIG leaves a value unchanged."""

    tcp: int
    tcp_fin: int
    udp: int


class KernelTable(NamedTuple):
    """Everything `ipvsadm -Ln` shows: the header info and every virtual server."""

    info: KernelInfo
    services: tuple[VirtualServerEntry, ...]
