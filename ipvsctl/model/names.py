"""The names of the kernel's IPVS numbers, for every room that prints or reads them.

Pure values, and the one lookup that joins two of them (`scheduler_flag_names`).
Two spellings where two exist: ipvsadm's (which `show` must reproduce byte for
byte) and ipvsctl's own lower-case one (JSON, annotations). A number missing
from a table has no name: each user says what it prints then.
"""

from __future__ import annotations

from ipvsctl.model.ipvs import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    Protocol,
    ServiceFlag,
    TunnelFlag,
    TunnelType,
)

FAMILY_NAMES: dict[int, str] = {AF_INET: "inet", AF_INET6: "inet6"}

# ipvsadm's `protocol_name`.
PROTOCOL_NAMES: dict[int, str] = {Protocol.TCP: "TCP", Protocol.UDP: "UDP", Protocol.SCTP: "SCTP"}
# /etc/protocols' names, as getservbyname takes them and JSON prints them.
PROTOCOL_KEYWORDS: dict[int, str] = {
    number: name.lower() for number, name in PROTOCOL_NAMES.items()
}

FORWARD_NAMES: dict[int, str] = {
    ForwardMethod.MASQ: "masq",
    ForwardMethod.LOCAL: "local",
    ForwardMethod.TUNNEL: "tunnel",
    ForwardMethod.ROUTE: "route",
    ForwardMethod.BYPASS: "bypass",
}
# ipvsadm's `fwd_name`: it has no case for bypass, nor for any newer method.
IPVSADM_FORWARD_NAMES: dict[int, str] = {
    ForwardMethod.MASQ: "Masq",
    ForwardMethod.LOCAL: "Local",
    ForwardMethod.TUNNEL: "Tunnel",
    ForwardMethod.ROUTE: "Route",
}

# ipvsadm spells the tunnel types as ipvsctl does.
TUNNEL_TYPE_NAMES: dict[int, str] = {
    TunnelType.IPIP: "ipip",
    TunnelType.GUE: "gue",
    TunnelType.GRE: "gre",
}

CHECKSUM_NAMES: dict[int, str] = {
    TunnelFlag.NOCSUM: "none",
    TunnelFlag.CSUM: "csum",
    TunnelFlag.REMCSUM: "remcsum",
}
# ipvsadm's `tunflags` names, printed in --tun-info.
IPVSADM_CHECKSUM_NAMES: dict[int, str] = {
    TunnelFlag.NOCSUM: "-c",
    TunnelFlag.CSUM: "+c",
    TunnelFlag.REMCSUM: "r+c",
}

# The scheduler flags in bit order, named as ipvsadm names them under any scheduler...
SCHED_FLAG_NAMES: dict[int, str] = {
    ServiceFlag.SCHED1: "flag-1",
    ServiceFlag.SCHED2: "flag-2",
    ServiceFlag.SCHED3: "flag-3",
}
# ...except under the schedulers that give some of them a meaning.
SCHEDULER_FLAG_NAMES: dict[str, dict[int, str]] = {
    "sh": {ServiceFlag.SCHED1: "sh-fallback", ServiceFlag.SCHED2: "sh-port"},
    "mh": {ServiceFlag.SCHED1: "mh-fallback", ServiceFlag.SCHED2: "mh-port"},
}


def scheduler_flag_names(scheduler: str, flags: int) -> list[str]:
    """Every scheduler flag set, by ipvsadm's name for it under this scheduler.

    Unlike the text listing's `sched_flag_names`, this names flag-3 under sh and mh too.
    The plan's `-b` option and its JSON `flags` both spell them so.
    """
    own = SCHEDULER_FLAG_NAMES.get(scheduler, {})
    return [own.get(bit, name) for bit, name in SCHED_FLAG_NAMES.items() if flags & bit]
