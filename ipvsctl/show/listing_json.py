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
32 bits the way ipvsadm 1.31 cuts a real server's (see `listing._DEST_COUNTER_MASK`).
A number this release has no name for (a forwarding method, tunnel type or
checksum mode of a newer kernel) is given as the number itself.
"""

from __future__ import annotations

import ipaddress
import json
from operator import attrgetter
from typing import Any

from ipvsctl.model import (
    AF_INET,
    STATS_FIELDS,
    ForwardMethod,
    KernelTable,
    RealServerEntry,
    ServiceFlag,
    Stats,
    Timeouts,
    TunnelType,
    VirtualServerEntry,
    canonical_address,
)
from ipvsctl.model.names import (
    CHECKSUM_NAMES,
    FAMILY_NAMES,
    FORWARD_NAMES,
    PROTOCOL_KEYWORDS,
    SCHED_FLAG_NAMES,
    SCHEDULER_FLAG_NAMES,
    TUNNEL_TYPE_NAMES,
)
from ipvsctl.show.listing import ListingOptions
from ipvsctl.show.listing_order import ipvsadm_order

__all__ = ["render_json", "render_timeouts_json", "table_document"]

Document = dict[str, Any]

# The model's counter names with the direction split off: "inpkts" is "in_pkts".
_STATS_KEYS = tuple(
    name.replace("in", "in_", 1) if name.startswith("in") else name.replace("out", "out_", 1)
    for name in STATS_FIELDS
)
_stats_values = attrgetter(*STATS_FIELDS)


def _family(family: int) -> str:
    return FAMILY_NAMES.get(family, str(family))


def _stats(stats: Stats) -> Document:
    return dict(zip(_STATS_KEYS, _stats_values(stats), strict=True))


def _sched_flags(scheduler: str, flags: int) -> list[str]:
    """Every scheduler flag set, by ipvsadm's name for it under this scheduler."""
    own = SCHEDULER_FLAG_NAMES.get(scheduler, {})
    return [own.get(bit, name) for bit, name in SCHED_FLAG_NAMES.items() if flags & bit]


def _mask(family: int, netmask: int) -> tuple[str, int | None]:
    """The persistence mask in address syntax, and its prefix length when contiguous."""
    if family == AF_INET:
        bits, value = 32, netmask & 0xFFFFFFFF
        text = str(ipaddress.IPv4Address(value))
    else:
        prefix = max(0, min(128, netmask))
        bits, value = 128, ((1 << 128) - 1) ^ ((1 << (128 - prefix)) - 1)
        text = canonical_address(str(ipaddress.IPv6Address(value)))
    ones = bin(value).count("1")
    contiguous = value == ((1 << bits) - 1) ^ ((1 << (bits - ones)) - 1)
    return text, (ones if contiguous else None)


def _tunnel(entry: RealServerEntry) -> Document | None:
    server = entry.server
    if server.forward != ForwardMethod.TUNNEL:
        return None
    kind = _name_or_number(TUNNEL_TYPE_NAMES, server.tunnel_type)
    checksum = _name_or_number(CHECKSUM_NAMES, server.tunnel_flags)
    return {
        "type": kind,
        "port": server.tunnel_port if server.tunnel_type == TunnelType.GUE else None,
        "checksum": checksum if server.tunnel_type != TunnelType.IPIP else None,
    }


def _name_or_number(names: dict[int, str], value: int) -> str | int:
    name = names.get(value)
    return int(value) if name is None else name


def _real_server(entry: RealServerEntry, service_family: int) -> Document:
    server = entry.server
    return {
        "family": _family(server.family_in(service_family)),
        "address": server.address,
        "port": server.port,
        "forward": _name_or_number(FORWARD_NAMES, server.forward),
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
        "protocol": None
        if key.is_fwmark
        else PROTOCOL_KEYWORDS.get(key.protocol, str(key.protocol)),
        "address": None if key.is_fwmark else key.address,
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
