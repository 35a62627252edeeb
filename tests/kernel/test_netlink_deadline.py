"""No call into the kernel waits forever, and an overrun leaves nothing behind.

No kernel here: GenericNetlink talks to one end of a datagram socketpair,
whose far end plays the kernel; SO_RCVTIMEO on a unix socket behaves as on a
netlink one, so a kernel that never answers is a peer that never writes.
"""

from __future__ import annotations

import errno
import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import pytest

from ipvsctl.kernel import ApplyResult, IpvsKernel, KernelError, KernelUnavailable
from ipvsctl.kernel import ipvs_uapi as uapi
from ipvsctl.kernel.netlink import (
    CTRL_ATTR_FAMILY_ID,
    GENL_ID_CTRL,
    GENLMSGHDR,
    GenericNetlink,
    Request,
)
from ipvsctl.model import AF_INET, ServiceKey, VirtualServer
from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.netlink import batch_socket
from ipvsctl.netlink.attributes import attr
from ipvsctl.netlink.batch_socket import NLM_F_ACK, NLMSG_DONE, NLMSG_ERROR, NLMSGERR, NLMSGHDR

FAMILY_ID = 0x24
DEADLINE = 0.2
# Generous: a loaded CI host may be slow to wake a sleeping thread.
SLACK = 1.0

# (seq, flags, cmd) of one request -> the messages the fake kernel answers with
Answer = Callable[[int, int, int], list[bytes]]


def message(msg_type: int, seq: int, payload: bytes) -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(payload), msg_type, 0, seq, 0) + payload


def ack(seq: int, code: int = 0) -> bytes:
    echoed = NLMSGHDR.pack(NLMSGHDR.size, FAMILY_ID, 0, seq, 0)
    return message(NLMSG_ERROR, seq, NLMSGERR.pack(-code) + echoed)


def never(seq: int, flags: int, cmd: int) -> list[bytes]:
    return []


def info_then(rest: Answer) -> Answer:
    """Answer GET_INFO as IPVS 1.2.1 would, everything else with `rest`."""

    def answer(seq: int, flags: int, cmd: int) -> list[bytes]:
        if cmd == uapi.CMD_GET_INFO:
            payload = GENLMSGHDR.pack(cmd, 1, 0) + attr(
                uapi.INFO_VERSION, struct.pack("=I", 0x010201)
            )
            return [message(FAMILY_ID, seq, payload), ack(seq)]
        return rest(seq, flags, cmd)

    return answer


class FakeKernelSocket:
    """The agent's end of a socketpair; `answer` decides what the far end writes back."""

    def __init__(self, answer: Answer) -> None:
        self.ours, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.answer = answer
        self.overrun_next_batch = False
        self._pending_enobufs = False

    def bind(self, address: tuple[int, int]) -> None:
        pass

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        if option == socket.SO_RCVTIMEO and level == socket.SOL_SOCKET:
            self.ours.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int) -> int:
        return 2 * (1 << 20)

    def close(self) -> None:
        self.ours.close()
        self.kernel.close()

    def send(self, data: bytes) -> int:
        answers: list[bytes] = []
        offset = 0
        while offset < len(data):
            length, msg_type, flags, seq, _ = NLMSGHDR.unpack_from(data, offset)
            cmd = data[offset + NLMSGHDR.size]
            offset += (length + 3) & ~3
            if msg_type == GENL_ID_CTRL:
                family = attr(CTRL_ATTR_FAMILY_ID, struct.pack("=H", FAMILY_ID))
                payload = GENLMSGHDR.pack(1, 1, 0) + family
                answers += [message(GENL_ID_CTRL, seq, payload), ack(seq)]
            else:
                answers += self.answer(seq, flags, cmd)
        if self.overrun_next_batch and answers:
            # The queue overflowed: the last answer (the batch's ack) was
            # dropped, the others wait behind a pending ENOBUFS.
            self.overrun_next_batch = False
            self._pending_enobufs = True
            answers = answers[:-1]
        for answer in answers:
            self.kernel.send(answer)
        return len(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self._pending_enobufs:
            self._pending_enobufs = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        return self.ours.recv(size, flags)

    def late(self, *answers: bytes) -> None:
        """Answers the kernel sends after the agent stopped waiting."""
        for answer in answers:
            self.kernel.send(answer)


@contextmanager
def patched(fake: FakeKernelSocket) -> Iterator[None]:
    with mock.patch.object(batch_socket.socket, "socket", return_value=fake):
        yield


@contextmanager
def connected(answer: Answer) -> Iterator[tuple[GenericNetlink, FakeKernelSocket]]:
    fake = FakeKernelSocket(answer)
    with patched(fake):
        nl = GenericNetlink("IPVS", 1, timeout=DEADLINE)
    with nl:
        yield nl, fake


@contextmanager
def within_the_deadline() -> Iterator[None]:
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + SLACK


@pytest.mark.parametrize("call", ["request", "dump"])
def test_a_request_never_answered_fails_within_the_deadline(call: str) -> None:
    with connected(never) as (nl, _), within_the_deadline(), pytest.raises(KernelError) as failed:
        getattr(nl, call)(Request(uapi.CMD_GET_SERVICE))
    assert failed.value.errno == errno.ETIMEDOUT
    assert str(failed.value) == "netlink request: no answer from the kernel within 0.2 s"


def test_a_batch_never_acknowledged_fails_within_the_deadline() -> None:
    timed_out = re.escape("no answer from the kernel within 0.2 s")
    with (
        connected(never) as (nl, _),
        within_the_deadline(),
        pytest.raises(KernelError, match=timed_out),
    ):
        nl.send_batch([Request(uapi.CMD_NEW_SERVICE, b"x" * 4) for _ in range(3)])


def test_a_family_lookup_never_answered_is_a_timeout_not_a_missing_module() -> None:
    fake = FakeKernelSocket(never)
    fake.send = lambda data: len(data)  # type: ignore[method-assign]  # not even CTRL answers
    with patched(fake), within_the_deadline(), pytest.raises(KernelError) as failed:
        GenericNetlink("IPVS", 1, timeout=DEADLINE)
    assert not isinstance(failed.value, KernelUnavailable)
    assert str(failed.value) == (
        "look up generic netlink family IPVS: no answer from the kernel within 0.2 s"
    )


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        GenericNetlink("IPVS", 1, timeout=0)


def test_the_ipvs_error_names_the_operation_that_timed_out() -> None:
    fake = FakeKernelSocket(info_then(never))
    with patched(fake):
        kernel = IpvsKernel(timeout=DEADLINE)
    with kernel, within_the_deadline(), pytest.raises(KernelError) as failed:
        kernel.services()
    assert str(failed.value) == "list services: no answer from the kernel within 0.2 s"
    assert kernel.timeout == DEADLINE


def test_opening_ipvs_times_out_naming_get_info() -> None:
    fake = FakeKernelSocket(never)
    timed_out = r"^get info: no answer from the kernel within 0\.2 s$"
    with patched(fake), within_the_deadline(), pytest.raises(KernelError, match=timed_out):
        IpvsKernel(timeout=DEADLINE)


def test_a_late_answer_to_a_request_given_up_does_not_answer_the_next() -> None:
    with connected(never) as (nl, fake):
        with pytest.raises(KernelError):
            nl.request(Request(uapi.CMD_GET_SERVICE))
        fake.answer = lambda seq, flags, cmd: [
            message(FAMILY_ID, seq, GENLMSGHDR.pack(cmd, 1, 0) + b"mine"),
            ack(seq),
        ]
        # seq 1 looked the family up, 2 was the request given up
        fake.late(message(FAMILY_ID, 2, GENLMSGHDR.pack(4, 1, 0) + b"late"), ack(2))
        replies = nl.request(Request(uapi.CMD_GET_SERVICE))
    assert [bytes(r[GENLMSGHDR.size :]) for r in replies] == [b"mine"]


def test_a_dump_ends_at_done() -> None:
    def dump(seq: int, flags: int, cmd: int) -> list[bytes]:
        payload = GENLMSGHDR.pack(cmd, 1, 0)
        return [message(FAMILY_ID, seq, payload + b"one"), message(NLMSG_DONE, seq, b"\0" * 4)]

    with connected(dump) as (nl, _):
        assert [bytes(r[GENLMSGHDR.size :]) for r in nl.dump(Request(1))] == [b"one"]


def refuse_odd(seq: int, flags: int, cmd: int) -> list[bytes]:
    """Refuse every request with an odd sequence number; ack the last of a batch."""
    if seq % 2:
        return [ack(seq, errno.EEXIST)]
    return [ack(seq)] if flags & NLM_F_ACK else []


def test_an_overrun_is_drained_without_waiting_for_the_lost_ack() -> None:
    with connected(refuse_odd) as (nl, fake):
        fake.overrun_next_batch = True
        start = time.monotonic()
        failures = nl.send_batch([Request(1, b"a" * 4) for _ in range(4)])
        # Not a timeout: what is still queued is read at once.
        assert time.monotonic() - start < DEADLINE
        # Seqs 2..5: 3 and 5 refused; the refusal of 3 survived the overrun,
        # the ack of 5 did not, so 2, 4 and 5 are unknown.
        assert failures == {0: errno.ENOBUFS, 1: errno.EEXIST, 2: errno.ENOBUFS, 3: errno.ENOBUFS}
        # The next batch reads only its own answers (seqs 6..8: 7 refused).
        assert nl.send_batch([Request(1, b"b" * 4) for _ in range(3)]) == {1: errno.EEXIST}


def service(i: int) -> VirtualServer:
    return VirtualServer(ServiceKey(AF_INET, 6, f"10.96.0.{i + 1}", 80))


def test_apply_says_which_outcomes_are_unknown_and_that_the_table_must_be_reread() -> None:
    fake = FakeKernelSocket(info_then(refuse_odd))
    with patched(fake):
        kernel = IpvsKernel(timeout=DEADLINE)
    changes = [IpvsChange(Op.ADD_SERVICE, service(i)) for i in range(4)]
    with kernel:
        fake.overrun_next_batch = True
        result = kernel.apply(changes)
        assert isinstance(result, ApplyResult) and isinstance(result, list)
        assert result.table_must_be_reread
        # Seqs 3..6 (1 and 2 opened the connection): 3 and 5 refused, the ack of 6 lost.
        assert [f.change for f in result.unknown] == [changes[1], changes[3]]
        assert all("re-read the table" in f.message for f in result.unknown)
        refused = [(f.change, f.errno) for f in result if f not in result.unknown]
        assert refused == [(changes[0], errno.EEXIST), (changes[2], errno.EEXIST)]
        again = kernel.apply(changes[:2])
        assert not again.table_must_be_reread


def test_the_batch_limit_is_public() -> None:
    fake = FakeKernelSocket(info_then(never))
    with patched(fake):
        kernel = IpvsKernel(timeout=DEADLINE)
    with kernel:
        # 1 MiB of usable receive buffer, ~1 KiB per queued error message
        assert kernel.batch_limit == (1 << 20) // batch_socket.ERROR_TRUESIZE


def test_info_is_read_once_when_the_connection_opens() -> None:
    asked: list[int] = []

    def count(seq: int, flags: int, cmd: int) -> list[bytes]:
        asked.append(cmd)
        return info_then(never)(seq, flags, cmd)

    fake = FakeKernelSocket(count)
    with patched(fake):
        kernel = IpvsKernel(timeout=DEADLINE)
    with kernel:
        assert kernel.info().version_text == "1.2.1"
        assert kernel.info() == kernel.info()
    assert asked == [uapi.CMD_GET_INFO]


def test_kernel_errors_read_what_then_why() -> None:
    assert str(KernelError(errno.ESRCH, "get service")) == "get service: no such service"
    assert str(KernelError(errno.ETIMEDOUT, "flush", "no answer")) == "flush: no answer"
    unavailable = KernelUnavailable(errno.EPERM, "IPVS needs CAP_NET_ADMIN (run as root)")
    assert str(unavailable) == "IPVS needs CAP_NET_ADMIN (run as root)"
    assert unavailable.errno == errno.EPERM
    assert isinstance(unavailable, KernelError)
