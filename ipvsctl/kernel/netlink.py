"""A generic netlink socket bound to one family, that can send many requests at once.

Batching, deadlines and matching refusals to requests are the netlink room's
(`ipvsctl.netlink.batch_socket`); what is generic netlink's is here: the
family looked up by name when the socket opens, the genl header (command,
version) in front of every request's attributes, and the kernel room's
errors.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Sequence
from typing import NamedTuple

from ipvsctl.kernel.errors import KernelError, KernelUnavailable
from ipvsctl.netlink.attributes import attr, parse_attrs
from ipvsctl.netlink.batch_socket import (
    DEFAULT_TIMEOUT,
    NLMSGHDR,
    Message,
    NetlinkError,
    NetlinkSocket,
)

__all__ = [
    "CTRL_ATTR_FAMILY_ID",
    "CTRL_ATTR_FAMILY_NAME",
    "CTRL_CMD_GETFAMILY",
    "GENLMSGHDR",
    "GENL_ID_CTRL",
    "HEADERS_LEN",
    "NETLINK_GENERIC",
    "GenericNetlink",
    "Request",
]

NETLINK_GENERIC = 16

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2

GENLMSGHDR = struct.Struct("=BBH")  # cmd, version, reserved
HEADERS_LEN = NLMSGHDR.size + GENLMSGHDR.size


class Request(NamedTuple):
    """A generic netlink request: command and attribute bytes. (A tuple: `apply`
    builds one per change, 11,000 for a cold 1,000-Service table.)"""

    cmd: int
    attrs: bytes = b""


def _kernel_error(error: NetlinkError) -> KernelError:
    return KernelError(error.errno, error.what, error.detail)


class GenericNetlink:
    """A socket bound to one generic netlink family; every call ends within `timeout` s."""

    def __init__(self, family_name: str, version: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._version = version
        self._headers: dict[int, bytes] = {}
        try:
            self._socket = NetlinkSocket(NETLINK_GENERIC, timeout)
        except NetlinkError as e:
            raise KernelUnavailable(e.errno, "cannot open a generic netlink socket") from e
        try:
            self.family_id = self._resolve_family(family_name)
        except BaseException:
            self._socket.close()
            raise

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> GenericNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def timeout(self) -> float:
        return self._socket.timeout

    @property
    def batch_limit(self) -> int:
        """How many requests one batch may hold so that no error message is dropped."""
        return self._socket.batch_limit

    @property
    def batch_bytes(self) -> int:
        return self._socket.batch_bytes

    def _resolve_family(self, name: str) -> int:
        payload = GENLMSGHDR.pack(CTRL_CMD_GETFAMILY, 1, 0) + attr(
            CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0"
        )
        try:
            replies = self._socket.request(Message(GENL_ID_CTRL, payload))
        except NetlinkError as e:
            if e.errno == errno.ETIMEDOUT:
                raise KernelError(
                    e.errno, f"look up generic netlink family {name}", e.detail
                ) from e
            raise KernelUnavailable(e.errno, f"generic netlink family {name} not found") from e
        for reply in replies:
            family = parse_attrs(reply, GENLMSGHDR.size).get(CTRL_ATTR_FAMILY_ID)
            if family is not None:
                return int(struct.unpack("=H", family[:2])[0])
        raise KernelUnavailable(errno.ENOENT, f"generic netlink family {name} not found")

    def _message(self, req: Request) -> Message:
        header = self._headers.get(req.cmd)
        if header is None:
            header = self._headers[req.cmd] = GENLMSGHDR.pack(req.cmd, self._version, 0)
        return Message(self.family_id, header + req.attrs)

    def request(self, req: Request) -> list[bytes]:
        """One request, its replies (genl payloads); raises KernelError on failure."""
        try:
            return self._socket.request(self._message(req))
        except NetlinkError as e:
            raise _kernel_error(e) from e

    def dump(self, req: Request) -> list[bytes]:
        """A dump request: every reply message's genl payload."""
        try:
            return self._socket.dump(self._message(req))
        except NetlinkError as e:
            raise _kernel_error(e) from e

    def send_batch(self, requests: Sequence[Request]) -> dict[int, int]:
        """Send requests in as few system calls as the buffers allow.

        Returns {index in `requests`: errno} for every request the kernel
        refused; ENOBUFS marks an unknown outcome (see NetlinkSocket.send_batch).
        """
        messages = [self._message(req) for req in requests]
        try:
            return self._socket.send_batch(messages)
        except NetlinkError as e:
            raise _kernel_error(e) from e
