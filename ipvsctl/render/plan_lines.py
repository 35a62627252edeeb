"""A plan as text lines that read like the commands doing it (`--dry-run`, `diff`).

IPVS changes read as ipvsadm commands, the rest as iproute2 and sysctl ones:

    link add kube-ipvs0 type dummy
    addr add 10.96.0.10/32 dev kube-ipvs0
    sysctl net.ipv4.vs.conntrack=1
    --set 900 120 300                     (IPVS timeouts: tcp tcpfin udp; 0 as is)
    -A -t 10.96.0.10:80 -s rr
    -a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1
    -D -u [fd00::10]:53
    addr del 10.96.0.11/32 dev kube-ipvs0
    link del kube-ipvs0                   (cleanup only)

Lines come in the order they are carried out (see `plan.node_plan`). An option
appears only when it differs from ipvsadm's default, so a line pasted after
`ipvsadm` does what the plan says. The JSON form (`plan_document`, one
object per line) lives in `plan_json`, which only `-o json` imports: the text
every `apply` prints does without it. `-b` names the scheduler flags as the
JSON `flags` do (`model.names.scheduler_flag_names`).
"""

from __future__ import annotations

from functools import lru_cache

from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.model.ipvs import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    Protocol,
    RealServer,
    ServiceFlag,
    ServiceKey,
    TunnelFlag,
    TunnelType,
    VirtualServer,
    address_family,
    full_netmask,
)
from ipvsctl.model.names import TUNNEL_TYPE_NAMES, scheduler_flag_names
from ipvsctl.plan.node_plan import Plan

__all__ = [
    "address_line",
    "change_line",
    "plan_lines",
    "plan_text",
    "service_argument",
]

_PROTOCOL_OPTIONS: dict[int, str] = {
    Protocol.TCP: "-t",
    Protocol.UDP: "-u",
    Protocol.SCTP: "--sctp-service",
}

# ipvsadm's fwd_switch: a local destination is listed as gatewaying. Bypass
# has no option (ipvsadm prints none either).
_FORWARD_OPTIONS = {
    ForwardMethod.MASQ: "-m",
    ForwardMethod.ROUTE: "-g",
    ForwardMethod.LOCAL: "-g",
    ForwardMethod.TUNNEL: "-i",
}
_TUNNEL_CHECKSUM_OPTIONS: dict[int, str] = {
    TunnelFlag.CSUM: "--tun-csum",
    TunnelFlag.REMCSUM: "--tun-remcsum",
}


def _address_port(address: str, port: int) -> str:
    if address_family(address) == AF_INET6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


# Each real-server line repeats its service's selector: 11,000 lines of a
# 1,000-Service plan spell 1,000 selectors.
@lru_cache(maxsize=4096)
def service_argument(key: ServiceKey) -> str:
    """ipvsadm's service selector: `-t 10.96.0.10:80`, `-u [fd00::a]:53`, `-f 7 -6`."""
    if key.is_fwmark:
        # ipvsadm wants -6 after -f ("-6 used before -f")
        return f"-f {key.fwmark} -6" if key.family == AF_INET6 else f"-f {key.fwmark}"
    # The kernel takes no other protocol, so the fallback is never a real command.
    option = _PROTOCOL_OPTIONS.get(key.protocol, f"-?{key.protocol}")
    return f"{option} {_address_port(key.address, key.port)}"


def _netmask_text(family: int, netmask: int) -> str:
    if family == AF_INET:
        return ".".join(str((netmask >> shift) & 0xFF) for shift in (24, 16, 8, 0))
    return str(netmask)  # IPv6: ipvsadm takes the prefix length


# Plain ints: `int & ServiceFlag` runs IntFlag's Python-level operator.
_PERSISTENT = int(ServiceFlag.PERSISTENT)
_ONEPACKET = int(ServiceFlag.ONEPACKET)


def _service_options(service: VirtualServer) -> str:
    flags = service.flags
    parts = [f"-s {service.scheduler}"]
    if flags:
        flag_names = scheduler_flag_names(service.scheduler, flags)
        if flag_names:
            parts.append(f"-b {','.join(flag_names)}")
        if flags & _PERSISTENT:
            parts.append(f"-p {service.timeout}")
    # Shown whenever it is not the host mask: the kernel keeps (and -E sets)
    # it even for a service that is not persistent.
    if service.netmask != full_netmask(service.key.family):
        parts.append(f"-M {_netmask_text(service.key.family, service.netmask)}")
    if service.pe_name:
        parts.append(f"--pe {service.pe_name}")
    if flags & _ONEPACKET:
        parts.append("-o")
    return " ".join(parts)


# A real server with no thresholds and no tunnel options: nearly all of them.
_PLAIN_TAIL = (0, 0, TunnelType.IPIP, 0, 0)


def _real_server_options(server: RealServer) -> str:
    forward = _FORWARD_OPTIONS.get(server.forward)
    head = f"-r {_address_port(server.address, server.port)}"
    if forward is not None:
        head = f"{head} {forward}"
    if server[5:] == _PLAIN_TAIL:
        return f"{head} -w {server.weight}"
    parts = [head, f"-w {server.weight}"]
    if server.upper_threshold:
        parts.append(f"-x {server.upper_threshold}")
    if server.lower_threshold:
        parts.append(f"-y {server.lower_threshold}")
    if server.tunnel_type != TunnelType.IPIP:
        name = TUNNEL_TYPE_NAMES.get(server.tunnel_type, str(int(server.tunnel_type)))
        parts.append(f"--tun-type {name}")
    if server.tunnel_port:
        parts.append(f"--tun-port {server.tunnel_port}")
    checksum = _TUNNEL_CHECKSUM_OPTIONS.get(server.tunnel_flags)
    if checksum is not None:
        parts.append(checksum)
    return " ".join(parts)


def change_line(change: IpvsChange) -> str:
    """One IPVS change as the ipvsadm command that makes it."""
    op, service, server = change
    # `_value_` (Enum's stored value) skips the `.value` descriptor: 11,000 lines a plan.
    head = f"{op._value_} {service_argument(service.key)}"
    if server is None:
        if op is Op.DELETE_SERVICE:
            return head
        return f"{head} {_service_options(service)}"
    if op is Op.DELETE_REAL:
        return f"{head} -r {_address_port(server.address, server.port)}"
    return f"{head} {_real_server_options(server)}"


def address_line(verb: str, address: str, device: str) -> str:
    """`addr add 10.96.0.10/32 dev kube-ipvs0` (verb "add" or "del")."""
    prefix = 128 if address_family(address) == AF_INET6 else 32
    return f"addr {verb} {address}/{prefix} dev {device}"


def plan_lines(plan: Plan) -> list[str]:
    """Every line of the plan, in the order it is carried out; empty when nothing changes."""
    lines: list[str] = []
    if plan.create_interface:
        lines.append(f"link add {plan.interface} type dummy")
    lines.extend(address_line("add", address, plan.interface) for address in plan.addresses_add)
    lines.extend(f"sysctl {name}={value}" for name, value in plan.sysctls)
    if plan.timeouts is not None:
        lines.append("--set {} {} {}".format(*plan.timeouts))
    lines.extend(change_line(change) for change in plan.ipvs)
    lines.extend(address_line("del", address, plan.interface) for address in plan.addresses_del)
    if plan.delete_interface:
        lines.append(f"link del {plan.interface}")
    return lines


def plan_text(plan: Plan) -> str:
    """The plan's lines as one text, each ending in a newline, for one write: where
    output is unbuffered (PYTHONUNBUFFERED, as container images often set) a write
    per line is a system call per line, 0.2 s of a 1,000-Service apply in the kernel lab."""
    return "\n".join([*plan_lines(plan), ""])  # "" after the last line: its newline
