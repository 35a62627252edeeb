"""The kernel room: the IPVS table, read and changed over generic netlink.

`IpvsKernel` (`ipvs`) reads the table and applies changes; `ipvs_codec` turns
its messages into model values and back, with the numbers of the kernel's
uapi header (`ipvs_uapi`). It is one of three rooms that speak netlink: this
one and `links` (rtnetlink) through the `netlink` room's batched socket, and
`conntrack` (ctnetlink) through pyroute2.
"""

from ipvsctl.kernel.errors import KernelError, KernelUnavailable
from ipvsctl.kernel.ipvs import ApplyResult, IpvsKernel

__all__ = ["ApplyResult", "IpvsKernel", "KernelError", "KernelUnavailable"]
