"""The one error the links room raises, naming the object and the kernel's errno."""

from __future__ import annotations

import errno
import os


class LinkError(Exception):
    """A link, address or sysctl operation failed.

    The message names what was attempted (`interface kube-ipvs0: add address
    10.96.0.10/32`) and the kernel's answer with its symbolic errno, so a log
    line is enough to act on without a pyroute2 traceback.
    """

    def __init__(self, errno_: int, what: str) -> None:
        self.errno = errno_
        self.what = what
        super().__init__(f"{what}: {describe_errno(errno_)}")


def describe_errno(errno_: int) -> str:
    name = errno.errorcode.get(errno_, f"errno {errno_}")
    return f"{os.strerror(errno_)} ({name})"
