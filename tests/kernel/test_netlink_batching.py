"""Batches: split by request count and by bytes, in order, every refusal kept.

No kernel here: GenericNetlink talks to a fake socket that answers as the
kernel does (one error message per refused request, an ack for the last
request of a batch, ENOBUFS when the receive queue overflowed). That the
real kernel agrees is proven in integration/tests/test_kernel_batch.py.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.kernel.netlink import (
    CTRL_ATTR_FAMILY_ID,
    GENL_ID_CTRL,
    GENLMSGHDR,
    HEADERS_LEN,
    GenericNetlink,
    Request,
)
from ipvsctl.netlink.attributes import attr
from ipvsctl.netlink.batch_socket import (
    ERROR_TRUESIZE,
    NLM_F_ACK,
    NLMSG_ERROR,
    NLMSGERR,
    NLMSGHDR,
)

FAMILY_ID = 0x24
# A sndbuf leaving room for any batch in these tests.
ROOMY = 1 << 20


@dataclass(frozen=True)
class Sent:
    """One request as the fake kernel received it."""

    seq: int
    flags: int
    attrs: bytes


@dataclass
class FakeKernelSocket:
    """A generic netlink socket whose far end behaves like the kernel's.

    `refuse` maps a request's attribute bytes to the errno the kernel answers
    it with; `overrun` names the sendmsg calls (by number, from 0) whose
    error messages overflow the receive queue.
    """

    rcvbuf: int
    sndbuf: int = ROOMY
    refuse: Mapping[bytes, int] = field(default_factory=dict)
    overrun: frozenset[int] = frozenset()
    batches: list[list[Sent]] = field(default_factory=list)
    _queue: deque[bytes] = field(default_factory=deque)
    _overflowed: bool = False

    def bind(self, address: tuple[int, int]) -> None:
        pass

    def setsockopt(self, level: int, option: int, value: int) -> None:
        pass

    def getsockopt(self, level: int, option: int) -> int:
        # The kernel reports twice what is usable (its bookkeeping share).
        return 2 * {socket.SO_RCVBUF: self.rcvbuf, socket.SO_SNDBUF: self.sndbuf}[option]

    def close(self) -> None:
        pass

    def send(self, data: bytes) -> int:
        requests = list(_messages(bytes(data)))
        # netlink_sendmsg refuses a buffer longer than sk_sndbuf - 32; a lone
        # request that large cannot be sent at all, so only batches are checked.
        assert len(requests) == 1 or len(data) <= self.sndbuf - 32, "batch too large"
        if requests[0][0] == GENL_ID_CTRL:
            self._answer_family(requests[0][2])
            return len(data)
        batch = [Sent(seq, flags, body[GENLMSGHDR.size :]) for _, flags, seq, body in requests]
        answers = []
        for request in batch:
            code = self.refuse.get(request.attrs, 0)
            if code or request.flags & NLM_F_ACK:
                answers.append(_error_message(request.seq, code))
        if len(self.batches) in self.overrun:
            # Dropped answers, a pending ENOBUFS, and the ack still queued behind it.
            self._overflowed = True
            answers = answers[-1:]
        self.batches.append(batch)
        self._queue.extend(answers)
        return len(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self._overflowed:
            self._overflowed = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        if not self._queue:
            # Nothing owed: what a blocking recv under SO_RCVTIMEO reports on expiry.
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        # One datagram per call, as each answer is its own skb.
        return self._queue.popleft()

    def _answer_family(self, seq: int) -> None:
        payload = GENLMSGHDR.pack(1, 1, 0) + attr(CTRL_ATTR_FAMILY_ID, struct.pack("=H", FAMILY_ID))
        header = NLMSGHDR.pack(NLMSGHDR.size + len(payload), GENL_ID_CTRL, 0, seq, 0)
        self._queue.extend([header + payload, _error_message(seq, 0)])


def _messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    offset = 0
    while offset < len(data):
        length, msg_type, flags, seq, _ = NLMSGHDR.unpack_from(data, offset)
        yield msg_type, flags, seq, data[offset + NLMSGHDR.size : offset + length]
        offset += (length + 3) & ~3


def _error_message(seq: int, code: int) -> bytes:
    # NETLINK_CAP_ACK: the request is echoed back as its header only.
    echoed = NLMSGHDR.pack(NLMSGHDR.size, FAMILY_ID, 0, seq, 0)
    body = NLMSGERR.pack(-code) + echoed
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), NLMSG_ERROR, 0, seq, 0) + body


@contextmanager
def connected(fake: FakeKernelSocket) -> Iterator[GenericNetlink]:
    # GenericNetlink opens its socket with socket.socket(AF_NETLINK, ...).
    with mock.patch.object(socket, "socket", return_value=fake):
        nl = GenericNetlink("IPVS", 1)
    with nl:
        yield nl


def rcvbuf_for(limit: int) -> int:
    """A receive buffer that holds the errors of exactly `limit` requests."""
    return limit * ERROR_TRUESIZE + ERROR_TRUESIZE // 2


def sndbuf_for(batch_bytes: int) -> int:
    return batch_bytes + 64


def request(i: int, size: int = 8) -> Request:
    """A request whose attribute bytes are `size` long and unique to `i`."""
    return Request(cmd=1, attrs=i.to_bytes(4, "big") * (size // 4))


def sizes_of(fake: FakeKernelSocket) -> list[int]:
    return [len(batch) for batch in fake.batches]


# --- splitting by count --------------------------------------------------------


def test_the_batch_limit_is_how_many_errors_the_receive_buffer_holds() -> None:
    with connected(FakeKernelSocket(rcvbuf=rcvbuf_for(4))) as nl:
        assert nl.batch_limit == 4


def test_a_tiny_receive_buffer_still_allows_one_request_per_batch() -> None:
    with connected(FakeKernelSocket(rcvbuf=ERROR_TRUESIZE - 1)) as nl:
        assert nl.batch_limit == 1


def test_requests_beyond_the_batch_limit_go_in_further_sendmsg_calls() -> None:
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(4))
    requests = [request(i) for i in range(10)]
    with connected(fake) as nl:
        assert nl.send_batch(requests) == {}
    assert sizes_of(fake) == [4, 4, 2]
    assert [sent.attrs for batch in fake.batches for sent in batch] == [r.attrs for r in requests]


def test_a_batch_of_exactly_the_limit_is_one_sendmsg() -> None:
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(4))
    with connected(fake) as nl:
        assert nl.send_batch([request(i) for i in range(4)]) == {}
    assert sizes_of(fake) == [4]


def test_only_the_last_request_of_each_batch_asks_for_an_ack() -> None:
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(3))
    with connected(fake) as nl:
        nl.send_batch([request(i) for i in range(7)])
    acked = [[bool(sent.flags & NLM_F_ACK) for sent in batch] for batch in fake.batches]
    assert acked == [[False, False, True], [False, False, True], [True]]


def test_sequence_numbers_never_repeat_across_batches() -> None:
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(3))
    with connected(fake) as nl:
        nl.send_batch([request(i) for i in range(7)])
        nl.send_batch([request(i) for i in range(5)])
    seqs = [sent.seq for batch in fake.batches for sent in batch]
    assert seqs == sorted(set(seqs))


def test_no_requests_send_nothing() -> None:
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(3))
    with connected(fake) as nl:
        assert nl.send_batch([]) == {}
    assert fake.batches == []


# --- splitting by bytes --------------------------------------------------------


@pytest.mark.parametrize(("spare", "per_batch"), [(0, 3), (1, 3), (-1, 2)])
def test_a_batch_holds_as_many_requests_as_fit_the_send_buffer(spare: int, per_batch: int) -> None:
    # Each message is its headers plus 100 attribute bytes.
    message = HEADERS_LEN + 100
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(100), sndbuf=sndbuf_for(3 * message + spare))
    with connected(fake) as nl:
        assert nl.batch_bytes == 3 * message + spare
        assert nl.send_batch([request(i, 100) for i in range(7)]) == {}
    assert sizes_of(fake) == [per_batch] * (7 // per_batch) + [7 % per_batch] * (7 % per_batch > 0)


def test_a_request_larger_than_the_byte_limit_goes_alone() -> None:
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(100), sndbuf=sndbuf_for(HEADERS_LEN + 40))
    requests = [request(0, 8), request(1, 48), request(2, 8), request(3, 8)]
    with connected(fake) as nl:
        assert nl.send_batch(requests) == {}
    assert sizes_of(fake) == [1, 1, 2]


def test_the_first_limit_reached_ends_a_batch() -> None:
    # Count allows 3; bytes allow 2 big ones, or 1 big and 3 small ones.
    message = HEADERS_LEN + 100
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(3), sndbuf=sndbuf_for(2 * message))
    sizes = [100, 100, 100, 8, 8, 8, 8, 100]
    with connected(fake) as nl:
        assert nl.send_batch([request(i, size) for i, size in enumerate(sizes)]) == {}
    # The first ends on bytes (a third big one would not fit), the others on count.
    assert sizes_of(fake) == [2, 3, 3]


@given(
    sizes=st.lists(st.integers(0, 64).map(lambda n: n * 4), max_size=40),
    limit=st.integers(1, 8),
    batch_bytes=st.integers(HEADERS_LEN, 600),
)
def test_batches_are_greedy_in_order_within_both_limits(
    sizes: list[int], limit: int, batch_bytes: int
) -> None:
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(limit), sndbuf=sndbuf_for(batch_bytes))
    requests = [request(i, size) for i, size in enumerate(sizes)]
    with connected(fake) as nl:
        assert nl.send_batch(requests) == {}
    # Every request sent once, in order.
    assert [s.attrs for batch in fake.batches for s in batch] == [r.attrs for r in requests]
    start = 0
    for batch in fake.batches:
        used = sum(HEADERS_LEN + len(s.attrs) for s in batch)
        assert 1 <= len(batch) <= limit
        assert used <= batch_bytes or len(batch) == 1
        stop = start + len(batch)
        if stop < len(requests):
            # Greedy: the next request would have broken one of the limits.
            grown = used + HEADERS_LEN + len(requests[stop].attrs)
            assert len(batch) == limit or grown > batch_bytes
        start = stop


# --- refusals ------------------------------------------------------------------


def test_refusals_are_reported_by_position_across_batches() -> None:
    requests = [request(i) for i in range(10)]
    refused = {2: errno.EEXIST, 3: errno.ESRCH, 4: errno.ENOENT, 9: errno.EINVAL}
    fake = FakeKernelSocket(
        rcvbuf=rcvbuf_for(4), refuse={requests[i].attrs: code for i, code in refused.items()}
    )
    with connected(fake) as nl:
        assert nl.send_batch(requests) == refused
    # A refused last request is its batch's ack: no batch waits for more.
    assert sizes_of(fake) == [4, 4, 2]


def test_every_request_of_an_all_refused_batch_is_reported() -> None:
    requests = [request(i) for i in range(9)]
    fake = FakeKernelSocket(rcvbuf=rcvbuf_for(4), refuse={r.attrs: errno.ESRCH for r in requests})
    with connected(fake) as nl:
        assert nl.send_batch(requests) == dict.fromkeys(range(9), errno.ESRCH)


def test_an_overrun_reports_its_whole_batch_and_spares_the_others() -> None:
    # The second batch's answers overflow: which of its requests failed is
    # unknown, so none may read as applied; its late ack must not confuse the third.
    requests = [request(i) for i in range(10)]
    fake = FakeKernelSocket(
        rcvbuf=rcvbuf_for(4),
        refuse={requests[0].attrs: errno.EEXIST, requests[9].attrs: errno.EINVAL},
        overrun=frozenset({1}),
    )
    with connected(fake) as nl:
        failures = nl.send_batch(requests)
    assert failures == {
        0: errno.EEXIST,
        **dict.fromkeys(range(4, 8), errno.ENOBUFS),
        9: errno.EINVAL,
    }
