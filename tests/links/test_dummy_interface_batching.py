"""DummyInterface sends a plan's addresses in batches and judges each answer.

No kernel here: the socket is a fake whose far end answers rtnetlink as the
kernel does (EEXIST for an address already bound, EADDRNOTAVAIL for one not
bound, one error message per refusal, an ack for the last request of a
batch). That the real kernel agrees is proven in integration/tests/test_links.py.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from unittest import mock

import pytest

from ipvsctl.links import DummyInterface, LinkError
from ipvsctl.links import rtnetlink_messages as rtm
from ipvsctl.netlink.attributes import attr, parse_attrs
from ipvsctl.netlink.batch_socket import (
    NLM_F_ACK,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGERR,
    NLMSGHDR,
    WANTED_BUFFER,
)

NAME, INDEX = "kube-ipvs0", 9


def message(msg_type: int, seq: int, payload: bytes) -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(payload), msg_type, 0, seq, 0) + payload


def error_message(seq: int, code: int) -> bytes:
    return message(NLMSG_ERROR, seq, NLMSGERR.pack(-code) + NLMSGHDR.pack(16, 0, 0, seq, 0))


@dataclass
class FakeRouteSocket:
    """An rtnetlink socket whose far end keeps the addresses of the links in `links`.

    `refuse` maps an address to the errno every request about it is answered
    with; `overrun_next` drops every answer of the next batch of address
    requests behind an ENOBUFS; `silent` leaves address requests unanswered.
    """

    links: dict[int, set[str]] = field(default_factory=lambda: {INDEX: set()})
    refuse: dict[str, int] = field(default_factory=dict)
    overrun_next: bool = False
    silent: bool = False
    batches: list[int] = field(default_factory=list)
    _queue: deque[bytes] = field(default_factory=deque)
    _enobufs: bool = False

    def bind(self, address: tuple[int, int]) -> None:
        pass

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        pass

    def getsockopt(self, level: int, option: int) -> int:
        # What the kernel reports after SO_RCVBUFFORCE / SO_SNDBUFFORCE (doubled).
        return 2 * WANTED_BUFFER

    def close(self) -> None:
        pass

    def send(self, data: bytes) -> int:
        answers: list[bytes] = []
        offset, count = 0, 0
        while offset < len(data):
            length, msg_type, flags, seq, _ = NLMSGHDR.unpack_from(data, offset)
            body = bytes(data[offset + NLMSGHDR.size : offset + length])
            offset += (length + 3) & ~3
            count += 1
            answers += self._answer(msg_type, flags, seq, body)
        self.batches.append(count)
        about_addresses = NLMSGHDR.unpack_from(data)[1] in (rtm.RTM_NEWADDR, rtm.RTM_DELADDR)
        if about_addresses and self.silent:
            answers = []
        if about_addresses and self.overrun_next:
            self.overrun_next, self._enobufs = False, True
            answers = []
        self._queue.extend(answers)
        return len(data)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self._enobufs:
            self._enobufs = False
            raise OSError(errno.ENOBUFS, "No buffer space available")
        if not self._queue:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return self._queue.popleft()

    def _answer(self, msg_type: int, flags: int, seq: int, body: bytes) -> list[bytes]:
        if msg_type == rtm.RTM_GETADDR:
            return [*self._dump(seq), message(NLMSG_DONE, seq, NLMSGERR.pack(0))]
        if msg_type == rtm.RTM_GETLINK:
            name = parse_attrs(body, rtm.IFINFOMSG.size)[rtm.IFLA_IFNAME].rstrip(b"\0")
            if name != NAME.encode():
                return [error_message(seq, errno.ENODEV)]
            link = rtm.IFINFOMSG.pack(0, 0, INDEX, 0, 0) + attr(rtm.IFLA_IFNAME, name + b"\0")
            return [message(rtm.RTM_NEWLINK, seq, link), error_message(seq, 0)]
        family, _, _, _, index = rtm.IFADDRMSG.unpack_from(body)
        address = socket.inet_ntop(family, parse_attrs(body, rtm.IFADDRMSG.size)[rtm.IFA_ADDRESS])
        bound = self.links.get(index)
        if bound is None:
            code = errno.ENODEV
        elif address in self.refuse:
            code = self.refuse[address]
        elif msg_type == rtm.RTM_NEWADDR:
            code = errno.EEXIST if address in bound else 0
            bound.add(address)
        else:
            code = 0 if address in bound else errno.EADDRNOTAVAIL
            bound.discard(address)
        return [error_message(seq, code)] if code or flags & NLM_F_ACK else []

    def _dump(self, seq: int) -> Iterator[bytes]:
        for index, bound in self.links.items():
            for address in sorted(bound):
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                header = rtm.IFADDRMSG.pack(family, 32, 0, 0, index)
                packed = attr(rtm.IFA_ADDRESS, socket.inet_pton(family, address))
                yield message(rtm.RTM_NEWADDR, seq, header + packed)


@contextmanager
def connected(fake: FakeRouteSocket) -> Iterator[DummyInterface]:
    with (
        mock.patch.object(socket, "socket", return_value=fake),
        DummyInterface(timeout=0.2) as links,
    ):
        yield links


def v4(count: int) -> list[str]:
    return [f"10.96.{i // 256}.{i % 256}" for i in range(count)]


def test_a_thousand_addresses_go_out_in_one_sendmsg() -> None:
    fake = FakeRouteSocket()
    wanted = [*v4(500), *(f"fd00::{i:x}" for i in range(1, 501))]
    with connected(fake) as links:
        links.add_addresses(NAME, wanted)
        assert fake.batches == [1, 1000]
        assert links.bound_addresses(NAME) == frozenset(wanted)
        links.delete_addresses(NAME, wanted)
    # Each call also looked the link up, alone.
    assert fake.batches == [1, 1000, 1, 1, 1, 1000]
    assert fake.links[INDEX] == set()


def test_addresses_already_bound_or_already_gone_are_no_error() -> None:
    fake = FakeRouteSocket(links={INDEX: {"10.96.0.1"}})
    with connected(fake) as links:
        links.add_addresses(NAME, ["10.96.0.1", "10.96.0.2", "10.96.0.2"])
        links.delete_addresses(NAME, ["10.96.0.2", "10.96.0.2", "10.96.0.3"])
    assert fake.links[INDEX] == {"10.96.0.1"}


def test_a_refusal_names_the_interface_the_first_refused_address_and_the_errno() -> None:
    fake = FakeRouteSocket(refuse={"10.96.0.5": errno.EPERM, "10.96.0.7": errno.EINVAL})
    with connected(fake) as links, pytest.raises(LinkError) as caught:
        links.add_addresses(NAME, v4(10))
    assert caught.value.errno == errno.EPERM
    assert str(caught.value) == (
        f"interface {NAME}: add address 10.96.0.5/32 (first of 2 refused): "
        "Operation not permitted (EPERM)"
    )
    # The others were all sent, and bound.
    assert fake.links[INDEX] == set(v4(10)) - {"10.96.0.5", "10.96.0.7"}


def test_a_single_refusal_reads_as_before_batching() -> None:
    fake = FakeRouteSocket(refuse={"fd00::1": errno.EACCES})
    with connected(fake) as links, pytest.raises(LinkError) as caught:
        links.delete_addresses(NAME, ["10.96.0.1", "FD00::1"])
    assert str(caught.value) == (
        f"interface {NAME}: delete address fd00::1/128: Permission denied (EACCES)"
    )


def test_a_bad_address_is_refused_before_anything_is_sent() -> None:
    fake = FakeRouteSocket()
    with connected(fake) as links, pytest.raises(LinkError, match=r"'10\.1': not an IP address"):
        links.add_addresses(NAME, ["10.96.0.1", "10.1"])
    assert fake.batches == []  # not even the link looked up


def test_adding_to_a_missing_interface_names_it_and_the_first_address() -> None:
    with connected(FakeRouteSocket()) as links, pytest.raises(LinkError) as caught:
        links.add_addresses("nope0", ["10.96.0.1", "10.96.0.2"])
    assert str(caught.value) == "interface nope0: add address 10.96.0.1/32: No such device (ENODEV)"


def test_nothing_to_do_sends_nothing_even_for_a_missing_interface() -> None:
    fake = FakeRouteSocket()
    with connected(fake) as links:
        links.add_addresses("nope0", [])
        links.delete_addresses("nope0", ["10.96.0.1"])
        assert links.bound_addresses("nope0") == frozenset()
    # Only the link looked up, by the delete and by bound_addresses.
    assert fake.batches == [1, 1]


def test_answers_lost_to_an_overrun_are_asked_again_not_reported() -> None:
    fake = FakeRouteSocket(overrun_next=True)
    with connected(fake) as links:
        links.add_addresses(NAME, v4(4))
    # The first batch was applied but its answers lost; sent again, all EEXIST.
    assert fake.batches == [1, 4, 4]
    assert fake.links[INDEX] == set(v4(4))


def test_a_batch_never_answered_is_a_timeout_naming_the_addresses() -> None:
    fake = FakeRouteSocket(silent=True)
    with connected(fake) as links, pytest.raises(LinkError) as caught:
        links.add_addresses(NAME, v4(3))
    assert caught.value.errno == errno.ETIMEDOUT
    assert str(caught.value).startswith(f"interface {NAME}: add address 10.96.0.0/32 and 2 more: ")


def test_node_addresses_leave_out_the_excluded_link_and_loopback() -> None:
    fake = FakeRouteSocket(
        links={
            1: {"127.0.0.1", "::1"},
            2: {"192.0.2.1", "fe80::1", "2001:db8::1"},
            INDEX: {"10.96.0.1", "192.0.2.1"},
        }
    )
    with connected(fake) as links:
        assert links.node_addresses(NAME) == ("192.0.2.1", "2001:db8::1")


def test_importing_the_command_line_loads_no_netlink_library() -> None:
    # pyroute2's package import alone took ~0.6 s in the kernel lab, on every command.
    code = "import sys, ipvsctl.cli.commands; print('pyroute2' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
