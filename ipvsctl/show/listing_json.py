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
checksum mode of a newer kernel) is given as the number itself. The fields a
service and a real server share with the plan's JSON come from
`ipvsctl.model.documents`; the counters and `tunnel`'s nulls are this schema's own.
"""

from __future__ import annotations

import json
from operator import attrgetter
from typing import Any

from ipvsctl.model import (
    STATS_FIELDS,
    ForwardMethod,
    KernelTable,
    RealServer,
    RealServerEntry,
    Stats,
    Timeouts,
    TunnelType,
    VirtualServerEntry,
)
from ipvsctl.model.documents import (
    real_server_fields,
    service_fields,
    tunnel_fields,
    unnamed_as_number,
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


def _stats(stats: Stats) -> Document:
    return dict(zip(_STATS_KEYS, _stats_values(stats), strict=True))


def _tunnel(server: RealServer) -> Document | None:
    """The tunnel as the kernel applies it: null port unless GUE, null checksum for IPIP."""
    if server.forward != ForwardMethod.TUNNEL:
        return None
    tunnel = tunnel_fields(server, unnamed_as_number)
    if server.tunnel_type != TunnelType.GUE:
        tunnel["port"] = None
    if server.tunnel_type == TunnelType.IPIP:
        tunnel["checksum"] = None
    return tunnel


def _real_server(entry: RealServerEntry, service_family: int) -> Document:
    server = entry.server
    return {
        **real_server_fields(server, server.family_in(service_family), unnamed_as_number),
        "active_conns": entry.active_conns,
        "inactive_conns": entry.inactive_conns,
        "persistent_conns": entry.persistent_conns,
        "tunnel": _tunnel(server),
        "stats": _stats(entry.stats),
    }


def _service(entry: VirtualServerEntry) -> Document:
    return {
        **service_fields(entry.service),
        "stats": _stats(entry.stats),
        "real_servers": [_real_server(rs, entry.service.key.family) for rs in entry.real_servers],
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
