"""A plan as JSON (`--dry-run -o json`): one object per line of `plan_lines`, same order.

Schema (field order fixed; services and real servers use the field names of
`ipvsctl show --json`, without counters):

    [STEP, ...]
    STEP = {"op": "link add", "device": str, "type": "dummy"}
         | {"op": "addr add" | "addr del", "address": str, "prefix_length": 32 | 128,
            "device": str}
         | {"op": "sysctl", "name": str, "value": str}
         | {"op": "--set", "tcp": int, "tcpfin": int, "udp": int}   (0: left as it is)
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
tunnel setting differs from the default. A number this release has no name
for is given as the number, as `show --json` gives it. The service and real
server fields are built by `ipvsctl.model.documents`, as `show --json` builds
them. An empty plan is `[]`.
"""

from __future__ import annotations

from typing import Any

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.documents import (
    real_server_fields,
    real_server_key_fields,
    service_fields,
    service_key_fields,
    tunnel_fields,
    unnamed_as_number,
)
from ipvsctl.model.ipvs import (
    AF_INET6,
    ForwardMethod,
    RealServer,
    TunnelType,
    address_family,
)
from ipvsctl.plan.node_plan import Plan

__all__ = [
    "change_document",
    "plan_document",
]

Document = dict[str, Any]


def _real_server_key(server: RealServer) -> Document:
    return real_server_key_fields(server, address_family(server.address))


def _tunnel(server: RealServer) -> Document | None:
    defaults = (
        server.tunnel_type == TunnelType.IPIP and not server.tunnel_port and not server.tunnel_flags
    )
    if defaults and server.forward != ForwardMethod.TUNNEL:
        return None
    return tunnel_fields(server, unnamed_as_number)


def _real_server(server: RealServer) -> Document:
    return {
        **real_server_fields(server, address_family(server.address), unnamed_as_number),
        "tunnel": _tunnel(server),
    }


def change_document(change: IpvsChange) -> Document:
    op, service, server = change.op, change.service, change.real_server
    if op in (Op.ADD_SERVICE, Op.EDIT_SERVICE):
        return {"op": op.value, "service": service_fields(service)}
    if op is Op.DELETE_SERVICE:
        return {"op": op.value, "service": service_key_fields(service.key)}
    assert server is not None  # IpvsChange checks it for real-server ops
    described = _real_server_key(server) if op is Op.DELETE_REAL else _real_server(server)
    return {"op": op.value, "service": service_key_fields(service.key), "real_server": described}


def _address_step(op: str, address: str, device: str) -> Document:
    prefix = 128 if address_family(address) == AF_INET6 else 32
    return {"op": op, "address": address, "prefix_length": prefix, "device": device}


def plan_document(plan: Plan) -> list[Document]:
    """The plan as JSON-ready values, one step per line of `plan_lines.plan_lines`."""
    steps: list[Document] = []
    if plan.create_interface:
        steps.append({"op": "link add", "device": plan.interface, "type": "dummy"})
    steps.extend(_address_step("addr add", a, plan.interface) for a in plan.addresses_add)
    steps.extend({"op": "sysctl", "name": n, "value": v} for n, v in plan.sysctls)
    if plan.timeouts is not None:
        tcp, tcp_fin, udp = plan.timeouts
        steps.append({"op": "--set", "tcp": tcp, "tcpfin": tcp_fin, "udp": udp})
    steps.extend(change_document(change) for change in plan.ipvs)
    steps.extend(_address_step("addr del", a, plan.interface) for a in plan.addresses_del)
    if plan.delete_interface:
        steps.append({"op": "link del", "device": plan.interface})
    return steps
