"""The kernel room: the only package that speaks netlink."""

from ipvsctl.kernel.errors import KernelError, KernelUnavailable
from ipvsctl.kernel.ipvs import ApplyResult, IpvsKernel

__all__ = ["ApplyResult", "IpvsKernel", "KernelError", "KernelUnavailable"]
