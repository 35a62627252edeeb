"""A netlink socket that can send many requests in one system call.

One request per round trip is what netlink libraries do; inside the kernel
lab a round trip costs about a millisecond, so the 22,000 requests of a large
IPVS table, or the 20,000 addresses of as many Services, would take tens of
seconds. Here a batch of requests goes out in one `sendmsg`: the kernel
handles every `nlmsghdr` of the buffer in order, synchronously, within that
call, and queues an error message for each one that fails. Only the last
request of a batch asks for an acknowledgement, which marks the end of the
batch; the failures are matched to their requests by sequence number.

Every request, dump and batch has a deadline (`timeout`, from the moment it
is sent): a reply the kernel never sends fails the call with ETIMEDOUT
instead of hanging the agent. Replies that come after their request was
given up are told apart by sequence number and dropped.

Nothing here knows a protocol: a `Message` carries its type and its payload
(the protocol's own header and attributes) ready made.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

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

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSGERR = struct.Struct("=i")

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


class NetlinkError(Exception):
    """A netlink call failed: `errno` is the kernel's answer, or ETIMEDOUT when none came.

    Each room turns it into its own error, naming the object it was about;
    `detail`, when given, says more than the errno (a timeout's length).
    """

    def __init__(self, errno_: int, what: str, detail: str | None = None) -> None:
        self.errno = errno_
        self.what = what
        self.detail = detail
        super().__init__(errno_, what, detail)

    def __str__(self) -> str:
        return f"{self.what}: {self.detail or os.strerror(self.errno)}"


class Message(NamedTuple):
    """One request: its type, its payload (the protocol's header and attributes),
    and flags wanted beyond NLM_F_REQUEST and NLM_F_ACK (which the socket sets)."""

    msg_type: int
    payload: bytes
    flags: int = 0


def message_size(message: Message) -> int:
    """Bytes the message takes in a batch, header and padding included."""
    return NLMSGHDR.size + ((len(message.payload) + 3) & ~3)


class NetlinkSocket:
    """A netlink socket of one protocol; every call ends within `timeout` s."""

    def __init__(self, protocol: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"netlink timeout must be positive, not {timeout!r}")
        self._seq = itertools.count(1)
        self.timeout = float(timeout)
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        except OSError as e:
            raise NetlinkError(e.errno or 0, "cannot open a netlink socket") from e
        try:
            # Port id 0: the kernel picks one. No multicast groups, so no event
            # piles up unread between calls.
            self._sock.bind((0, 0))
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._sndbuf = self._grow_buffer(socket.SO_SNDBUF, SO_SNDBUFFORCE)
            self._rcvbuf = self._grow_buffer(socket.SO_RCVBUF, SO_RCVBUFFORCE)
        except BaseException:
            self._sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NetlinkSocket:
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
        # The FORCE variants need CAP_NET_ADMIN, which changing IPVS or links
        # needs anyway; without it the plain option is capped by net.core.[rw]mem_max.
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, force_option, WANTED_BUFFER)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, option, WANTED_BUFFER)
        # The kernel doubles the value for bookkeeping; half is usable payload.
        return int(self._sock.getsockopt(socket.SOL_SOCKET, option)) // 2

    # -- one request ----------------------------------------------------------

    def request(self, message: Message) -> list[bytes]:
        """One acknowledged request: its replies' payloads; NetlinkError if refused."""
        return self._call(message, REQUEST_ACKED)

    def dump(self, message: Message) -> list[bytes]:
        """A dump request: every reply message's payload."""
        return self._call(message, NLM_F_REQUEST | NLM_F_DUMP)

    def _frame(self, message: Message, flags: int) -> tuple[int, bytes]:
        seq = next(self._seq)
        length = NLMSGHDR.size + len(message.payload)
        header = NLMSGHDR.pack(length, message.msg_type, flags | message.flags, seq, 0)
        padding = b"\0" * (-length & 3)
        return seq, header + message.payload + padding

    def _call(self, message: Message, flags: int) -> list[bytes]:
        seq, data = self._frame(message, flags)
        self._sock.send(data)
        return list(self._replies(seq, self._deadline()))

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _replies(self, seq: int, deadline: float) -> Iterator[bytes]:
        """Payloads answering `seq`, up to its DONE or ack."""
        while True:
            for msg_type, _, msg_seq, payload in self._receive(deadline):
                if msg_seq != seq:
                    continue  # a late answer to an earlier, abandoned request
                if msg_type in (NLMSG_DONE, NLMSG_ERROR):
                    # Both carry an errno; a dump that failed half-way ends in a DONE
                    # carrying it (rtnetlink), a refused request in an ERROR.
                    code = -NLMSGERR.unpack_from(payload)[0] if len(payload) >= 4 else 0
                    if code:
                        raise NetlinkError(code, "netlink request failed")
                    return
                yield payload

    def _receive(self, deadline: float) -> Iterator[tuple[int, int, int, bytes]]:
        """The messages of one datagram, waiting for it until `deadline` at most."""
        try:
            # The kernel answers most requests (and each part of a dump) before send
            # or the previous recv returns: take it without a wait. Setting a timeout
            # for every receive doubled the system calls of a dump of 10,000 services,
            # and the time of a full resync with them (system calls are dear in UML).
            data = self._sock.recv(RECV_SIZE, socket.MSG_DONTWAIT)
        except BlockingIOError:
            data = self._wait_and_receive(deadline)
        except OSError as e:
            raise NetlinkError(e.errno or errno.EIO, "netlink receive failed") from e
        offset = 0
        while offset + NLMSGHDR.size <= len(data):
            length, msg_type, flags, seq, _ = NLMSGHDR.unpack_from(data, offset)
            if length < NLMSGHDR.size:
                break
            yield msg_type, flags, seq, data[offset + NLMSGHDR.size : offset + length]
            offset += (length + 3) & ~3

    def _wait_and_receive(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timed_out()
        # SO_RCVTIMEO rather than settimeout: the socket stays in blocking
        # mode, and 0 would mean "wait forever", hence the microsecond floor.
        seconds, micros = divmod(max(1, int(remaining * 1_000_000)), 1_000_000)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, TIMEVAL.pack(seconds, micros))
        try:
            return self._sock.recv(RECV_SIZE)
        except BlockingIOError as e:
            raise self._timed_out() from e
        except OSError as e:
            raise NetlinkError(e.errno or errno.EIO, "netlink receive failed") from e

    def _timed_out(self) -> NetlinkError:
        detail = f"no answer from the kernel within {self.timeout} s"
        return NetlinkError(errno.ETIMEDOUT, "netlink request", detail)

    # -- batches --------------------------------------------------------------

    def send_batch(self, messages: Sequence[Message]) -> dict[int, int]:
        """Send requests in as few system calls as the buffers allow.

        Returns {index in `messages`: errno} for every request the kernel
        refused; the others were applied, in order. ENOBUFS is not a refusal
        but an unknown outcome: the receive queue overflowed while that
        request's batch was answered, so its answer may be lost, and whether
        it was applied can only be learnt by reading the kernel's state again.
        """
        failures: dict[int, int] = {}
        start = 0
        while start < len(messages):
            stop = self._batch_end(messages, start)
            failures.update(self._send_one_batch(messages, start, stop))
            start = stop
        return failures

    def _batch_end(self, messages: Sequence[Message], start: int) -> int:
        size, stop = 0, start
        limit = min(len(messages), start + self.batch_limit)
        while stop < limit:
            size += message_size(messages[stop])
            if size > self.batch_bytes and stop > start:
                break
            stop += 1
        return stop

    def _send_one_batch(self, messages: Sequence[Message], start: int, stop: int) -> dict[int, int]:
        index_of_seq: dict[int, int] = {}
        buffer = bytearray()
        for index in range(start, stop):
            flags = NLM_F_REQUEST | (NLM_F_ACK if index == stop - 1 else 0)
            seq, data = self._frame(messages[index], flags)
            index_of_seq[seq] = index
            buffer += data
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
            except NetlinkError as e:
                if e.errno == errno.ENOBUFS:
                    # Drain what is still queued (the ack may have been dropped, so
                    # do not wait for it), so the next call reads only its own answers.
                    overrun = True
                    deadline = min(deadline, time.monotonic() + DRAIN_WAIT)
                    continue
                if overrun and e.errno == errno.ETIMEDOUT:
                    break
                raise
            if _record_failures(messages, index_of_seq, last_seq, failures):
                break
        if overrun:
            # Success sends no message, so a dropped refusal looks like success:
            # every request of this batch not seen refused has an unknown outcome.
            unknown = dict.fromkeys(index_of_seq.values(), errno.ENOBUFS)
            return unknown | failures
        return failures


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
