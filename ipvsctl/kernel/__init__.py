"""The kernel room: the only package that speaks netlink."""

from ipvsctl.kernel.errors import KernelError, KernelUnavailable
from ipvsctl.kernel.ipvs import IpvsKernel

__all__ = ["IpvsKernel", "KernelError", "KernelUnavailable"]
