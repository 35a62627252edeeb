"""Errors the kernel room raises, each with the one line a user should see."""

from __future__ import annotations

import errno
import os


class KernelError(Exception):
    """A netlink request failed; `errno` is the kernel's answer (or ETIMEDOUT: none came).

    Reads "WHAT: DETAIL"; `detail` defaults to what the errno means for IPVS.
    """

    def __init__(self, errno_: int, what: str, detail: str | None = None) -> None:
        self.errno = errno_
        self.what = what
        self.detail = describe_errno(errno_) if detail is None else detail
        super().__init__(errno_, what, self.detail)

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


class KernelUnavailable(KernelError):
    """IPVS cannot be used here at all (no module, no permission).

    `what` is the whole line a user sees: it already says what to do.
    """

    def __str__(self) -> str:
        return self.what


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
    errno.ETIMEDOUT: "no answer from the kernel",
}


def describe_errno(errno_: int) -> str:
    return _IPVS_ERRNO_TEXT.get(errno_) or os.strerror(errno_)
