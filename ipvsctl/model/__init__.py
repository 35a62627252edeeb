"""Values every room passes to the next: the IPVS table and the changes to it.

Nothing here does I/O. The IPVS table values live in `ipvsctl.model.ipvs`
and are re-exported here, since nearly every room needs a few of them; the
names of their numbers live in `ipvsctl.model.names`.
"""

from ipvsctl.model.ipvs import (
    AF_INET,
    AF_INET6,
    RATE_FIELDS,
    SETTABLE_FLAGS,
    STATS_FIELDS,
    TOTAL_FIELDS,
    ForwardMethod,
    KernelInfo,
    KernelTable,
    Protocol,
    RealServer,
    RealServerEntry,
    ServiceFlag,
    ServiceKey,
    Stats,
    Timeouts,
    TunnelFlag,
    TunnelType,
    VirtualServer,
    VirtualServerEntry,
    address_family,
    canonical_address,
    full_netmask,
)

__all__ = [
    "AF_INET",
    "AF_INET6",
    "RATE_FIELDS",
    "SETTABLE_FLAGS",
    "STATS_FIELDS",
    "TOTAL_FIELDS",
    "ForwardMethod",
    "KernelInfo",
    "KernelTable",
    "Protocol",
    "RealServer",
    "RealServerEntry",
    "ServiceFlag",
    "ServiceKey",
    "Stats",
    "Timeouts",
    "TunnelFlag",
    "TunnelType",
    "VirtualServer",
    "VirtualServerEntry",
    "address_family",
    "canonical_address",
    "full_netmask",
]
