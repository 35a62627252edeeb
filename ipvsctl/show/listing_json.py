"""The IPVS table as JSON (`ipvsctl show --json`): the data `show` prints, in a stable schema.

Schema (field order is fixed; README documents it):

    {"version": "1.2.1", "conn_tab_size": 4096, "services": [SERVICE, ...]}
    SERVICE = {"family": "inet"|"inet6", "protocol": "tcp"|"udp"|"sctp"|null,
               "address": str|null, "port": int|null, "fwmark": int|null,
               "scheduler": str, "flags": [str], "one_packet": bool,
               "persistent": int|null, "netmask": str, "prefix_length": int|null,
               "pe": str|null, "stats": STATS, "real_servers": [REAL_SERVER, ...]}
    REAL_SERVER = {"family", "address", "port", "forward", "weight",
                   "upper_threshold", "lower_threshold", "active_conns",
                   "inactive_conns", "persistent_conns", "tunnel", "stats"}
    STATS = {"conns", "in_pkts", "out_pkts", "in_bytes", "out_bytes",
             "cps", "in_pps", "out_pps", "in_bps", "out_bps"}

Services and real servers come in the order the text listing prints them.
Counters are the kernel's full 64-bit values, never scaled and never cut to
32 bits the way ipvsadm 1.31 cuts a real server's (see `listing._dest_stats`).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    KernelTable,
    Protocol,
    RealServerEntry,
    ServiceFlag,
    Stats,
    Timeouts,
    TunnelType,
    VirtualServerEntry,
)
from ipvsctl.show.listing import ListingOptions
from ipvsctl.show.listing_address import format_address
from ipvsctl.show.listing_order import ipvsadm_order

__all__ = ["render_json", "render_timeouts_json", "table_document"]

_FAMILIES: dict[int, str] = {AF_INET: "inet", AF_INET6: "inet6"}
_PROTOCOLS: dict[int, str] = {Protocol.TCP: "tcp", Protocol.UDP: "udp", Protocol.SCTP: "sctp"}
_FORWARDS = {
    ForwardMethod.MASQ: "masq",
    ForwardMethod.LOCAL: "local",
    ForwardMethod.TUNNEL: "tunnel",
    ForwardMethod.ROUTE: "route",
    ForwardMethod.BYPASS: "bypass",
}
_TUNNEL_TYPES = {TunnelType.IPIP: "ipip", TunnelType.GUE: "gue", TunnelType.GRE: "gre"}
_CHECKSUMS = ("none", "csum", "remcsum")
_SCHED_FLAG_BITS = (ServiceFlag.SCHED1, ServiceFlag.SCHED2, ServiceFlag.SCHED3)
_SCHED_FLAG_NAMES = {
    "sh": ("sh-fallback", "sh-port", "flag-3"),
    "mh": ("mh-fallback", "mh-port", "flag-3"),
}
_GENERIC_FLAG_NAMES = ("flag-1", "flag-2", "flag-3")

Document = dict[str, Any]


def _family(family: int) -> str:
    return _FAMILIES.get(family, str(family))


def _stats(stats: Stats) -> Document:
    return {
        "conns": stats.conns,
        "in_pkts": stats.inpkts,
        "out_pkts": stats.outpkts,
        "in_bytes": stats.inbytes,
        "out_bytes": stats.outbytes,
        "cps": stats.cps,
        "in_pps": stats.inpps,
        "out_pps": stats.outpps,
        "in_bps": stats.inbps,
        "out_bps": stats.outbps,
    }


def _sched_flags(scheduler: str, flags: int) -> list[str]:
    """Every scheduler flag set, by ipvsadm's name for it under this scheduler."""
    names = _SCHED_FLAG_NAMES.get(scheduler, _GENERIC_FLAG_NAMES)
    return [name for bit, name in zip(_SCHED_FLAG_BITS, names, strict=True) if flags & bit]


def _mask(family: int, netmask: int) -> tuple[str, int | None]:
    """The persistence mask in address syntax, and its prefix length when contiguous."""
    if family == AF_INET:
        bits, value = 32, netmask & 0xFFFFFFFF
        text = str(ipaddress.IPv4Address(value))
    else:
        prefix = max(0, min(128, netmask))
        bits, value = 128, ((1 << 128) - 1) ^ ((1 << (128 - prefix)) - 1)
        text = format_address(str(ipaddress.IPv6Address(value)))
    ones = bin(value).count("1")
    contiguous = value == ((1 << bits) - 1) ^ ((1 << (bits - ones)) - 1)
    return text, (ones if contiguous else None)


def _tunnel(entry: RealServerEntry) -> Document | None:
    server = entry.server
    if server.forward != ForwardMethod.TUNNEL:
        return None
    kind = _TUNNEL_TYPES.get(server.tunnel_type, str(int(server.tunnel_type)))
    flags = server.tunnel_flags
    checksum = _CHECKSUMS[flags] if 0 <= flags < len(_CHECKSUMS) else str(flags)
    return {
        "type": kind,
        "port": server.tunnel_port if server.tunnel_type == TunnelType.GUE else None,
        "checksum": checksum if server.tunnel_type != TunnelType.IPIP else None,
    }


def _real_server(entry: RealServerEntry, service_family: int) -> Document:
    server = entry.server
    return {
        "family": _family(server.family or service_family),
        "address": format_address(server.address),
        "port": server.port,
        "forward": _FORWARDS.get(server.forward, str(int(server.forward))),
        "weight": server.weight,
        "upper_threshold": server.upper_threshold,
        "lower_threshold": server.lower_threshold,
        "active_conns": entry.active_conns,
        "inactive_conns": entry.inactive_conns,
        "persistent_conns": entry.persistent_conns,
        "tunnel": _tunnel(entry),
        "stats": _stats(entry.stats),
    }


def _service(entry: VirtualServerEntry) -> Document:
    service = entry.service
    key = service.key
    netmask, prefix_length = _mask(key.family, service.netmask)
    persistent = bool(service.flags & ServiceFlag.PERSISTENT)
    return {
        "family": _family(key.family),
        "protocol": None if key.is_fwmark else _PROTOCOLS.get(key.protocol, str(key.protocol)),
        "address": None if key.is_fwmark else format_address(key.address),
        "port": None if key.is_fwmark else key.port,
        "fwmark": key.fwmark if key.is_fwmark else None,
        "scheduler": service.scheduler,
        "flags": _sched_flags(service.scheduler, service.flags),
        "one_packet": bool(service.flags & ServiceFlag.ONEPACKET),
        "persistent": service.timeout if persistent else None,
        "netmask": netmask,
        "prefix_length": prefix_length,
        "pe": service.pe_name or None,
        "stats": _stats(entry.stats),
        "real_servers": [_real_server(rs, key.family) for rs in entry.real_servers],
    }


def table_document(
    table: KernelTable, options: ListingOptions, only: VirtualServerEntry | None = None
) -> Document:
    """The JSON document as Python values; `only` narrows it to one service (-t/-u/-f)."""
    services = ipvsadm_order(table.services if only is None else (only,), options.sort)
    return {
        "version": table.info.version_text,
        "conn_tab_size": table.info.conn_tab_size,
        "services": [_service(entry) for entry in services],
    }


def render_json(
    table: KernelTable, options: ListingOptions, only: VirtualServerEntry | None = None
) -> str:
    return json.dumps(table_document(table, options, only), indent=2) + "\n"


def render_timeouts_json(timeouts: Timeouts) -> str:
    document = {"tcp": timeouts.tcp, "tcp_fin": timeouts.tcp_fin, "udp": timeouts.udp}
    return json.dumps(document, indent=2) + "\n"
