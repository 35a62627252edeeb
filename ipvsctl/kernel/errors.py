"""Errors the kernel room raises, each with the one line a user should see."""

from __future__ import annotations

import errno
import os


class KernelError(Exception):
    """A netlink request failed; `errno` is the kernel's answer."""

    def __init__(self, errno_: int, what: str) -> None:
        self.errno = errno_
        super().__init__(f"{what}: {describe_errno(errno_)}")


class KernelUnavailable(KernelError):
    """IPVS cannot be used here at all (no module, no permission): `message` says which."""

    def __init__(self, errno_: int, message: str) -> None:
        self.errno = errno_
        Exception.__init__(self, message)


# What the kernel means by each errno when it answers an IPVS request: the
# generic strerror text ("No such process" for ESRCH) would mislead.
_IPVS_ERRNO_TEXT = {
    errno.EEXIST: "already exists",
    errno.ESRCH: "no such service",
    errno.ENOENT: "not found (scheduler, persistence engine or destination)",
    errno.EPERM: "permission denied (IPVS needs CAP_NET_ADMIN)",
    errno.EBUSY: "busy",
    errno.EINVAL: "invalid argument",
    errno.EAFNOSUPPORT: "address family not supported",
    errno.ENOBUFS: "acknowledgement lost (receive buffer overrun)",
}


def describe_errno(errno_: int) -> str:
    return _IPVS_ERRNO_TEXT.get(errno_) or os.strerror(errno_)
