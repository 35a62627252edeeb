"""A plan as JSON (`--dry-run -o json`): one object per line of `lines`, same order.

Schema (field order fixed; services and real servers use the field names of
`ipvsctl show --json`, without counters):

    [STEP, ...]
    STEP = {"op": "link add", "device": str, "type": "dummy"}
         | {"op": "addr add" | "addr del", "address": str, "prefix_length": 32 | 128,
            "device": str}
         | {"op": "sysctl", "name": str, "value": str}
         | {"op": "-A" | "-E", "service": SERVICE}
         | {"op": "-D", "service": SERVICE_KEY}
         | {"op": "-a" | "-e", "service": SERVICE_KEY, "real_server": REAL_SERVER}
         | {"op": "-d", "service": SERVICE_KEY, "real_server": REAL_SERVER_KEY}
         | {"op": "link del", "device": str}
    SERVICE_KEY = {"family": "inet" | "inet6", "protocol": "tcp" | "udp" | "sctp" | null,
                   "address": str | null, "port": int | null, "fwmark": int | null}
    SERVICE = SERVICE_KEY + {"scheduler": str, "flags": [str], "one_packet": bool,
                             "persistent": int | null, "netmask": str,
                             "prefix_length": int | null, "pe": str | null}
    REAL_SERVER_KEY = {"family": "inet" | "inet6", "address": str, "port": int}
    REAL_SERVER = REAL_SERVER_KEY + {"forward": "masq" | "route" | "tunnel" | "local" | "bypass",
                                     "weight": int, "upper_threshold": int,
                                     "lower_threshold": int, "tunnel": TUNNEL | null}
    TUNNEL = {"type": "ipip" | "gue" | "gre", "port": int, "checksum": "none" | "csum" | "remcsum"}

`flags` are the scheduler flags by ipvsadm's names (`sh-fallback`, `flag-3`);
`persistent` is the persistence timeout, null when not persistent; `netmask`
is the persistence mask in address syntax and `prefix_length` its length
when contiguous. `tunnel` is null unless the forwarding method is tunnel or a
tunnel setting differs from the default. An empty plan is `[]`.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    Protocol,
    RealServer,
    ServiceFlag,
    ServiceKey,
    TunnelType,
    VirtualServer,
    address_family,
    canonical_address,
)
from ipvsctl.plan.node_plan import Plan

__all__ = [
    "change_document",
    "plan_document",
    "render_plan_json",
    "sched_flag_names",
]

Document = dict[str, Any]

_FAMILIES: dict[int, str] = {AF_INET: "inet", AF_INET6: "inet6"}
_PROTOCOLS: dict[int, str] = {Protocol.TCP: "tcp", Protocol.UDP: "udp", Protocol.SCTP: "sctp"}
_FORWARDS: dict[int, str] = {
    ForwardMethod.MASQ: "masq",
    ForwardMethod.LOCAL: "local",
    ForwardMethod.TUNNEL: "tunnel",
    ForwardMethod.ROUTE: "route",
    ForwardMethod.BYPASS: "bypass",
}
_TUNNEL_TYPES: dict[int, str] = {
    TunnelType.IPIP: "ipip",
    TunnelType.GUE: "gue",
    TunnelType.GRE: "gre",
}
_CHECKSUMS = ("none", "csum", "remcsum")

# ipvsadm's names per scheduler; sh and mh name their own flag-1/flag-2.
_SCHED_FLAG_BITS = (ServiceFlag.SCHED1, ServiceFlag.SCHED2, ServiceFlag.SCHED3)
_SCHED_FLAG_NAMES = {
    "sh": ("sh-fallback", "sh-port", "flag-3"),
    "mh": ("mh-fallback", "mh-port", "flag-3"),
}
_GENERIC_FLAG_NAMES = ("flag-1", "flag-2", "flag-3")


def sched_flag_names(scheduler: str, flags: int) -> list[str]:
    """The scheduler flags set, by the names ipvsadm's `-b` takes for this scheduler."""
    names = _SCHED_FLAG_NAMES.get(scheduler, _GENERIC_FLAG_NAMES)
    return [name for bit, name in zip(_SCHED_FLAG_BITS, names, strict=True) if flags & bit]


def _family(family: int) -> str:
    return _FAMILIES.get(family, str(family))


def _service_key(key: ServiceKey) -> Document:
    fwmark = key.is_fwmark
    return {
        "family": _family(key.family),
        "protocol": None if fwmark else _PROTOCOLS.get(key.protocol, str(key.protocol)),
        "address": None if fwmark else key.address,
        "port": None if fwmark else key.port,
        "fwmark": key.fwmark if fwmark else None,
    }


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


def _service(service: VirtualServer) -> Document:
    netmask, prefix_length = _mask(service.key.family, service.netmask)
    persistent = bool(service.flags & ServiceFlag.PERSISTENT)
    return {
        **_service_key(service.key),
        "scheduler": service.scheduler,
        "flags": sched_flag_names(service.scheduler, service.flags),
        "one_packet": bool(service.flags & ServiceFlag.ONEPACKET),
        "persistent": service.timeout if persistent else None,
        "netmask": netmask,
        "prefix_length": prefix_length,
        "pe": service.pe_name or None,
    }


def _real_server_key(server: RealServer) -> Document:
    return {
        "family": _family(address_family(server.address)),
        "address": server.address,
        "port": server.port,
    }


def _tunnel(server: RealServer) -> Document | None:
    defaults = (
        server.tunnel_type == TunnelType.IPIP and not server.tunnel_port and not server.tunnel_flags
    )
    if defaults and server.forward != ForwardMethod.TUNNEL:
        return None
    flags = server.tunnel_flags
    return {
        "type": _TUNNEL_TYPES.get(server.tunnel_type, str(int(server.tunnel_type))),
        "port": server.tunnel_port,
        "checksum": _CHECKSUMS[flags] if 0 <= flags < len(_CHECKSUMS) else str(flags),
    }


def _real_server(server: RealServer) -> Document:
    return {
        **_real_server_key(server),
        "forward": _FORWARDS.get(server.forward, str(int(server.forward))),
        "weight": server.weight,
        "upper_threshold": server.upper_threshold,
        "lower_threshold": server.lower_threshold,
        "tunnel": _tunnel(server),
    }


def change_document(change: IpvsChange) -> Document:
    op, service, server = change.op, change.service, change.real_server
    if op in (Op.ADD_SERVICE, Op.EDIT_SERVICE):
        return {"op": op.value, "service": _service(service)}
    if op is Op.DELETE_SERVICE:
        return {"op": op.value, "service": _service_key(service.key)}
    assert server is not None  # IpvsChange checks it for real-server ops
    described = _real_server_key(server) if op is Op.DELETE_REAL else _real_server(server)
    return {"op": op.value, "service": _service_key(service.key), "real_server": described}


def _address_step(op: str, address: str, device: str) -> Document:
    prefix = 128 if address_family(address) == AF_INET6 else 32
    return {"op": op, "address": address, "prefix_length": prefix, "device": device}


def plan_document(plan: Plan) -> list[Document]:
    """The plan as JSON-ready values, one step per line of `lines.plan_lines`."""
    steps: list[Document] = []
    if plan.create_interface:
        steps.append({"op": "link add", "device": plan.interface, "type": "dummy"})
    steps.extend(_address_step("addr add", a, plan.interface) for a in plan.addresses_add)
    steps.extend({"op": "sysctl", "name": n, "value": v} for n, v in plan.sysctls)
    steps.extend(change_document(change) for change in plan.ipvs)
    steps.extend(_address_step("addr del", a, plan.interface) for a in plan.addresses_del)
    if plan.delete_interface:
        steps.append({"op": "link del", "device": plan.interface})
    return steps


def render_plan_json(plan: Plan) -> str:
    return json.dumps(plan_document(plan), indent=2) + "\n"
