"""Virtual and real servers as JSON-ready dicts: the fields `show --json` and `plan -o json` share.

Pure values in, plain dicts out (field order fixed, as both schemas print it).
Both renderers build their services and real servers from these functions, so
the two schemas share one spelling of every field they have in common.

Where the two schemas still differ, the difference is an argument, not a copy:

- a number this release has no name for (a forwarding method, tunnel type or
  checksum mode of a newer kernel) is the number itself in `show --json` and
  the number as text in the plan (`unnamed_as_number` / `unnamed_as_text`);
- a real server's family is its own family within the service in `show`
  (`RealServer.family_in`) and its address's family in the plan, so callers
  pass it in;
- when a real server has a `tunnel` object, and which of its fields are null,
  is each schema's own rule; `tunnel_fields` builds the object itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from ipvsctl.model.ipvs import (
    AF_INET,
    RealServer,
    ServiceFlag,
    ServiceKey,
    VirtualServer,
    canonical_address,
)
from ipvsctl.model.names import (
    CHECKSUM_NAMES,
    FAMILY_NAMES,
    FORWARD_NAMES,
    PROTOCOL_KEYWORDS,
    TUNNEL_TYPE_NAMES,
    scheduler_flag_names,
)

__all__ = [
    "Document",
    "UnnamedSpelling",
    "family_name",
    "name_or_unnamed",
    "persistence_mask",
    "real_server_fields",
    "real_server_key_fields",
    "scheduler_flag_names",
    "service_fields",
    "service_key_fields",
    "tunnel_fields",
    "unnamed_as_number",
    "unnamed_as_text",
]

Document = dict[str, Any]

# How a schema spells a kernel number it has no name for.
UnnamedSpelling = Callable[[int], int | str]


def unnamed_as_number(value: int) -> int:
    return int(value)


def unnamed_as_text(value: int) -> str:
    return str(int(value))


def name_or_unnamed(names: Mapping[int, str], value: int, unnamed: UnnamedSpelling) -> int | str:
    """`value`'s name in `names`, else `value` spelt as the schema spells unnamed numbers."""
    name = names.get(value)
    return unnamed(value) if name is None else name


def family_name(family: int) -> str:
    return FAMILY_NAMES.get(family, str(family))


def persistence_mask(family: int, netmask: int) -> tuple[str, int | None]:
    """The persistence mask in address syntax, and its prefix length when contiguous.

    `netmask` is the kernel's value (`VirtualServer.netmask`): a 32-bit mask for
    IPv4, a prefix length for IPv6 (clamped to 0..128).
    """
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


def service_key_fields(key: ServiceKey) -> Document:
    """family, protocol, address, port, fwmark: null for the half a key does not use."""
    fwmark = key.is_fwmark
    return {
        "family": family_name(key.family),
        "protocol": None if fwmark else PROTOCOL_KEYWORDS.get(key.protocol, str(key.protocol)),
        "address": None if fwmark else key.address,
        "port": None if fwmark else key.port,
        "fwmark": key.fwmark if fwmark else None,
    }


def service_fields(service: VirtualServer) -> Document:
    """The key fields, then scheduler, flags, one_packet, persistent, netmask, prefix_length, pe."""
    netmask, prefix_length = persistence_mask(service.key.family, service.netmask)
    persistent = bool(service.flags & ServiceFlag.PERSISTENT)
    return {
        **service_key_fields(service.key),
        "scheduler": service.scheduler,
        "flags": scheduler_flag_names(service.scheduler, service.flags),
        "one_packet": bool(service.flags & ServiceFlag.ONEPACKET),
        "persistent": service.timeout if persistent else None,
        "netmask": netmask,
        "prefix_length": prefix_length,
        "pe": service.pe_name or None,
    }


def real_server_key_fields(server: RealServer, family: int) -> Document:
    """family, address, port; `family` is the caller's (see the module docstring)."""
    return {"family": family_name(family), "address": server.address, "port": server.port}


def real_server_fields(server: RealServer, family: int, unnamed: UnnamedSpelling) -> Document:
    """The key fields, then forward, weight, upper_threshold, lower_threshold.

    Not `tunnel`: each schema decides when it has one, and `show` puts its
    connection counts before it.
    """
    return {
        **real_server_key_fields(server, family),
        "forward": name_or_unnamed(FORWARD_NAMES, server.forward, unnamed),
        "weight": server.weight,
        "upper_threshold": server.upper_threshold,
        "lower_threshold": server.lower_threshold,
    }


def tunnel_fields(server: RealServer, unnamed: UnnamedSpelling) -> Document:
    """The real server's tunnel settings as {"type", "port", "checksum"}, all as set."""
    return {
        "type": name_or_unnamed(TUNNEL_TYPE_NAMES, server.tunnel_type, unnamed),
        "port": server.tunnel_port,
        "checksum": name_or_unnamed(CHECKSUM_NAMES, server.tunnel_flags, unnamed),
    }
