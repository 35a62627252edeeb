"""The links room: the dummy interface, its addresses, node addresses and sysctls.

The only place that changes interfaces, addresses and /proc/sys. The pure
pieces (`addresses_in_cidrs`, `wanted_sysctls`) live here too, beside the I/O
they feed, and import nothing that reaches outside the process. The UDP
conntrack cleanup is a room of its own (`ipvsctl.conntrack`).
"""

from ipvsctl.links.dummy_interface import DummyInterface, node_addresses
from ipvsctl.links.errors import LinkError
from ipvsctl.links.nodeport_addresses import addresses_in_cidrs, is_node_address
from ipvsctl.links.rtnetlink_messages import DUMMY_KIND, IFA_F_NODAD
from ipvsctl.links.sysctls import (
    HostSysctls,
    read_sysctls,
    running_kernel,
    wanted_sysctls,
    write_sysctl,
)

__all__ = [
    "DUMMY_KIND",
    "IFA_F_NODAD",
    "DummyInterface",
    "HostSysctls",
    "LinkError",
    "addresses_in_cidrs",
    "is_node_address",
    "node_addresses",
    "read_sysctls",
    "running_kernel",
    "wanted_sysctls",
    "write_sysctl",
]
