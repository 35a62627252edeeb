"""A generic netlink socket that can send many requests in one system call.

pyroute2 sends one request per round trip and decodes every reply with its
generic attribute machinery; inside the kernel lab a round trip costs about a
millisecond, so the 22,000 requests of a large table would take ~45 s. Here a
batch of requests goes out in one `sendmsg`: the kernel handles every
`nlmsghdr` of the buffer in order, synchronously, within that call, and
queues an error message for each one that fails. Only the last request of a
batch asks for an acknowledgement, which marks the end of the batch; the
failures are matched to their requests by sequence number.

Every request, dump and batch has a deadline (`timeout`, from the moment it
is sent): a reply the kernel never sends fails the call with ETIMEDOUT
instead of hanging the agent. Replies that come after their request was
given up are told apart by sequence number and dropped.
"""

from __future__ import annotations

import errno
import itertools
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ipvsctl.kernel.errors import KernelError, KernelUnavailable

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # failed requests are not echoed back in full
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
# A command that succeeds without a reply (flush, set) sends nothing unless
# asked for an ack; with one, every request ends in a known message.
REQUEST_ACKED = NLM_F_REQUEST | NLM_F_ACK
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF

GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
GENLMSGHDR = struct.Struct("=BBH")  # cmd, version, reserved
NLATTR = struct.Struct("=HH")  # len, type
NLMSGERR = struct.Struct("=i")
HEADERS_LEN = NLMSGHDR.size + GENLMSGHDR.size

# Socket buffers we ask for. The receive side must hold an error message for
# every request of a batch at once (each costs ~1 KiB of skb truesize, though
# it carries 36 bytes), since the kernel queues them all before sendmsg returns.
WANTED_BUFFER = 8 << 20
ERROR_TRUESIZE = 1280
RECV_SIZE = 1 << 16

DEFAULT_TIMEOUT = 5.0  # seconds; the kernel answers in milliseconds
# After an overrun, what is still queued was queued before sendmsg returned
# (the kernel handles a batch synchronously), so the rest needs no waiting for.
DRAIN_WAIT = 0.01
TIMEVAL = struct.Struct("@ll")  # struct timeval, for SO_RCVTIMEO


def align4(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded."""
    length = NLATTR.size + len(payload)
    return NLATTR.pack(length, kind) + payload + b"\0" * (align4(length) - length)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes by type (nested flag stripped). Hot: a table dump parses ~3 per object."""
    found: dict[int, bytes] = {}
    unpack = NLATTR.unpack_from
    end = len(data)
    while offset + 4 <= end:
        length, kind = unpack(data, offset)
        if length < 4:
            break
        found[kind & NLA_TYPE_MASK] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


@dataclass(frozen=True)
class Request:
    """A generic netlink request: command and attribute bytes."""

    cmd: int
    attrs: bytes = b""


class GenericNetlink:
    """A socket bound to one generic netlink family; every call ends within `timeout` s."""

    def __init__(self, family_name: str, version: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"netlink timeout must be positive, not {timeout!r}")
        self._version = version
        self._seq = itertools.count(1)
        self.timeout = float(timeout)
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        except OSError as e:
            raise KernelUnavailable(e.errno or 0, "cannot open a generic netlink socket") from e
        try:
            self._sock.bind((0, 0))
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._sndbuf = self._grow_buffer(socket.SO_SNDBUF, SO_SNDBUFFORCE)
            self._rcvbuf = self._grow_buffer(socket.SO_RCVBUF, SO_RCVBUFFORCE)
            self.family_id = self._resolve_family(family_name)
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> GenericNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def batch_limit(self) -> int:
        """How many requests one batch may hold so that no error message is dropped."""
        return max(1, self._rcvbuf // ERROR_TRUESIZE)

    @property
    def batch_bytes(self) -> int:
        # netlink_sendmsg refuses a buffer larger than sk_sndbuf - 32.
        return self._sndbuf - 64

    def _grow_buffer(self, option: int, force_option: int) -> int:
        # The FORCE variants need CAP_NET_ADMIN, which IPVS needs anyway;
        # without it the plain option is capped by net.core.[rw]mem_max.
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, force_option, WANTED_BUFFER)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, option, WANTED_BUFFER)
        # The kernel doubles the value for bookkeeping; half is usable payload.
        return int(self._sock.getsockopt(socket.SOL_SOCKET, option)) // 2

    def _resolve_family(self, name: str) -> int:
        request = attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
        try:
            replies = self._call(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, request, REQUEST_ACKED)
        except KernelError as e:
            if e.errno == errno.ETIMEDOUT:
                raise KernelError(
                    e.errno, f"look up generic netlink family {name}", e.detail
                ) from e
            raise KernelUnavailable(e.errno, f"generic netlink family {name} not found") from e
        for payload in replies:
            family = parse_attrs(payload, GENLMSGHDR.size).get(CTRL_ATTR_FAMILY_ID)
            if family is not None:
                return int(struct.unpack("=H", family[:2])[0])
        raise KernelUnavailable(errno.ENOENT, f"generic netlink family {name} not found")

    def _message(
        self, msg_type: int, cmd: int, version: int, attrs: bytes, flags: int
    ) -> tuple[int, bytes]:
        seq = next(self._seq)
        length = HEADERS_LEN + len(attrs)
        header = NLMSGHDR.pack(length, msg_type, flags, seq, 0) + GENLMSGHDR.pack(cmd, version, 0)
        return seq, header + attrs

    def _call(self, msg_type: int, cmd: int, version: int, attrs: bytes, flags: int) -> list[bytes]:
        seq, message = self._message(msg_type, cmd, version, attrs, flags)
        self._sock.send(message)
        return list(self._replies(seq, self._deadline()))

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _replies(self, seq: int, deadline: float) -> Iterator[bytes]:
        """Payloads (genl header onwards) answering `seq`, up to its DONE or ack."""
        while True:
            for msg_type, _, msg_seq, payload in self._receive(deadline):
                if msg_seq != seq:
                    continue  # a late answer to an earlier, abandoned request
                if msg_type == NLMSG_DONE:
                    return
                if msg_type == NLMSG_ERROR:
                    code = -NLMSGERR.unpack_from(payload)[0]
                    if code:
                        raise KernelError(code, "netlink request failed")
                    return
                yield payload

    def _receive(self, deadline: float) -> Iterator[tuple[int, int, int, bytes]]:
        """The messages of one datagram, waiting for it until `deadline` at most."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        # SO_RCVTIMEO rather than settimeout: the socket stays in blocking
        # mode, and 0 would mean "wait forever", hence the microsecond floor.
        seconds, micros = divmod(max(1, int(remaining * 1_000_000)), 1_000_000)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, TIMEVAL.pack(seconds, micros))
        try:
            data = self._sock.recv(RECV_SIZE)
        except BlockingIOError as e:
            raise self._timed_out() from e
        except OSError as e:
            raise KernelError(e.errno or errno.EIO, "netlink receive failed") from e
        offset = 0
        while offset + NLMSGHDR.size <= len(data):
            length, msg_type, flags, seq, _ = NLMSGHDR.unpack_from(data, offset)
            if length < NLMSGHDR.size:
                break
            yield msg_type, flags, seq, data[offset + NLMSGHDR.size : offset + length]
            offset += (length + 3) & ~3

    def _timed_out(self) -> KernelError:
        detail = f"no answer from the kernel within {self.timeout} s"
        return KernelError(errno.ETIMEDOUT, "netlink request", detail)

    def request(self, req: Request) -> list[bytes]:
        """One request, its replies (genl payloads); raises KernelError on failure."""
        return self._call(self.family_id, req.cmd, self._version, req.attrs, REQUEST_ACKED)

    def dump(self, req: Request) -> list[bytes]:
        """A dump request: every reply message's genl payload."""
        flags = NLM_F_REQUEST | NLM_F_DUMP
        return self._call(self.family_id, req.cmd, self._version, req.attrs, flags)

    def send_batch(self, requests: Sequence[Request]) -> dict[int, int]:
        """Send requests in as few system calls as the buffers allow.

        Returns {index in `requests`: errno} for every request the kernel
        refused; the others were applied, in order. ENOBUFS is not a refusal
        but an unknown outcome: the receive queue overflowed while that
        request's batch was answered, so its answer may be lost, and whether
        it was applied can only be learnt by reading the table again.
        """
        failures: dict[int, int] = {}
        start = 0
        while start < len(requests):
            stop = self._batch_end(requests, start)
            failures.update(self._send_one_batch(requests, start, stop))
            start = stop
        return failures

    def _batch_end(self, requests: Sequence[Request], start: int) -> int:
        size, stop = 0, start
        limit = min(len(requests), start + self.batch_limit)
        while stop < limit:
            size += HEADERS_LEN + len(requests[stop].attrs)
            if size > self.batch_bytes and stop > start:
                break
            stop += 1
        return stop

    def _send_one_batch(self, requests: Sequence[Request], start: int, stop: int) -> dict[int, int]:
        index_of_seq: dict[int, int] = {}
        buffer = bytearray()
        for index in range(start, stop):
            flags = NLM_F_REQUEST | (NLM_F_ACK if index == stop - 1 else 0)
            req = requests[index]
            seq, message = self._message(self.family_id, req.cmd, self._version, req.attrs, flags)
            index_of_seq[seq] = index
            buffer += message
        last_seq = seq
        self._sock.send(buffer)
        return self._collect_failures(index_of_seq, last_seq, self._deadline())

    def _collect_failures(
        self, index_of_seq: dict[int, int], last_seq: int, deadline: float
    ) -> dict[int, int]:
        failures: dict[int, int] = {}
        overrun = False
        while True:
            try:
                messages = list(self._receive(deadline))
            except KernelError as e:
                if e.errno == errno.ENOBUFS:
                    # Drain what is still queued (the ack may have been dropped, so
                    # do not wait for it), so the next call reads only its own answers.
                    overrun = True
                    deadline = min(deadline, time.monotonic() + DRAIN_WAIT)
                    continue
                if overrun and e.errno == errno.ETIMEDOUT:
                    break
                raise
            if self._record_failures(messages, index_of_seq, last_seq, failures):
                break
        if overrun:
            # Success sends no message, so a dropped refusal looks like success:
            # every request of this batch not seen refused has an unknown outcome.
            unknown = dict.fromkeys(index_of_seq.values(), errno.ENOBUFS)
            return unknown | failures
        return failures

    @staticmethod
    def _record_failures(
        messages: list[tuple[int, int, int, bytes]],
        index_of_seq: dict[int, int],
        last_seq: int,
        failures: dict[int, int],
    ) -> bool:
        """Add the refusals among `messages` to `failures`; True once the batch's ack came."""
        done = False
        for msg_type, _, seq, payload in messages:
            if msg_type != NLMSG_ERROR or seq not in index_of_seq:
                continue
            code = -NLMSGERR.unpack_from(payload)[0]
            if code:
                failures[index_of_seq[seq]] = code
            done = done or seq == last_seq
        return done
