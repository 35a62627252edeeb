"""The rtnetlink requests are byte for byte what pyroute2 sends, and replies read back.

pyroute2 is the witness here only: its own request pipeline (argument filters,
then NetlinkRequest's encoder) builds the message `IPRoute.addr(...)` or
`IPRoute.link(...)` would send, without a socket.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

import pytest
from pyroute2.iproute.linux import get_arguments_processor, get_dump_filter
from pyroute2.netlink.nlsocket import NetlinkRequest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from ipvsctl.links import rtnetlink_messages as rtm
from ipvsctl.netlink.batch_socket import NLM_F_DUMP, NLMSGHDR, REQUEST_ACKED, Message

INDEX = 7
# IPRoute's command maps (`IPRoute.addr`, `IPRoute.link`).
ADDR_COMMANDS = {"add": (rtm.RTM_NEWADDR, "create"), "del": (rtm.RTM_DELADDR, "req")}
LINK_COMMANDS = {
    "add": (rtm.RTM_NEWLINK, "create"),
    "del": (rtm.RTM_DELLINK, "req"),
    "get": (rtm.RTM_GETLINK, "get"),
}


def pyroute2_request(api: str, command: str, **kwarg: Any) -> tuple[int, int, bytes]:
    """(type, flags, payload) of the request pyroute2 encodes for `IPRoute.<api>(command, ...)`."""
    message, commands = (
        (ifaddrmsg(), ADDR_COMMANDS) if api == "addr" else (ifinfmsg(), LINK_COMMANDS)
    )
    dump_filter, kwarg = get_dump_filter(api, command, kwarg)
    arguments = get_arguments_processor(api, command, kwarg)
    sock = SimpleNamespace(addr_pool=None, status={"nlm_echo": False}, epid=1, marshal=None)
    request = NetlinkRequest(sock, message, command, commands, dump_filter, arguments, msg_seq=1)
    request.msg.encode()
    data = bytes(request.msg.data)
    length, msg_type, flags, _, _ = NLMSGHDR.unpack_from(data)
    assert length == len(data)
    return msg_type, flags, data[NLMSGHDR.size :]


def ours(message: Message) -> tuple[int, int, bytes]:
    """(type, flags, payload) of our message sent alone, acked as pyroute2 asks."""
    return message.msg_type, message.flags | REQUEST_ACKED, message.payload


def v4(text: str) -> rtm.HostAddress:
    return rtm.host_address(socket.AF_INET, text)


def v6(text: str) -> rtm.HostAddress:
    return rtm.host_address(socket.AF_INET6, text)


@pytest.mark.parametrize("address", ["10.96.0.10", "0.0.0.1", "255.255.255.255"])
def test_adding_an_ipv4_address_encodes_as_pyroute2_with_ifa_local(address: str) -> None:
    expected = pyroute2_request(
        "addr", "add", index=INDEX, family=socket.AF_INET, address=address, prefixlen=32
    )
    assert ours(rtm.new_address(INDEX, v4(address))) == expected


@pytest.mark.parametrize("address", ["fd00::10", "2001:db8:0:1:2:3:4:5", "::ffff:10.0.0.1"])
def test_adding_an_ipv6_address_encodes_as_pyroute2_with_nodad_in_ifa_flags(address: str) -> None:
    expected = pyroute2_request(
        "addr",
        "add",
        index=INDEX,
        family=socket.AF_INET6,
        address=address,
        prefixlen=128,
        flags=rtm.IFA_F_NODAD,
    )
    message = rtm.new_address(INDEX, v6(address))
    assert ours(message) == expected
    assert message.payload.endswith(bytes.fromhex("08000800") + b"\x02\0\0\0")


@pytest.mark.parametrize(("family", "address"), [(socket.AF_INET, "10.96.0.10"), (10, "fd00::10")])
def test_deleting_an_address_encodes_as_pyroute2(family: int, address: str) -> None:
    prefixlen = 32 if family == socket.AF_INET else 128
    expected = pyroute2_request(
        "addr", "del", index=INDEX, family=family, address=address, prefixlen=prefixlen
    )
    assert ours(rtm.delete_address(INDEX, rtm.host_address(family, address))) == expected


def test_an_address_is_scope_global_with_no_header_flags() -> None:
    family, prefixlen, flags, scope, index = rtm.IFADDRMSG.unpack_from(
        rtm.new_address(INDEX, v6("fd00::1")).payload
    )
    assert (family, prefixlen, flags, scope, index) == (socket.AF_INET6, 128, 0, 0, INDEX)


def test_adding_a_dummy_link_encodes_as_pyroute2() -> None:
    expected = pyroute2_request("link", "add", ifname="kube-ipvs0", kind="dummy")
    assert ours(rtm.new_dummy_link("kube-ipvs0")) == expected


def test_reading_a_link_by_name_encodes_as_pyroute2() -> None:
    assert ours(rtm.get_link("kube-ipvs0")) == pyroute2_request("link", "get", ifname="kube-ipvs0")


def test_deleting_a_link_by_index_encodes_as_pyroute2() -> None:
    assert ours(rtm.delete_link(INDEX)) == pyroute2_request("link", "del", index=INDEX)


def test_the_address_dump_asks_for_both_families_of_every_link() -> None:
    message = rtm.dump_addresses()
    assert message.msg_type == rtm.RTM_GETADDR
    assert message.flags & NLM_F_DUMP == 0  # the socket's dump() adds it
    assert rtm.IFADDRMSG.unpack_from(message.payload) == (socket.AF_UNSPEC, 0, 0, 0, 0)


def encoded_reply(message: Any, **fields: Any) -> bytes:
    """A reply message as the kernel sends it, encoded by pyroute2, less its nlmsghdr."""
    for key, value in fields.items():
        message[key] = value
    message["header"]["type"] = rtm.RTM_NEWADDR
    message.encode()
    return bytes(message.data)[NLMSGHDR.size :]


def test_an_address_reply_reads_as_index_and_inet_ntop_spelling() -> None:
    reply = encoded_reply(
        ifaddrmsg(),
        family=socket.AF_INET6,
        prefixlen=128,
        index=INDEX,
        attrs=[("IFA_ADDRESS", "fd00:0:0::10"), ("IFA_FLAGS", 0x82)],
    )
    assert rtm.read_address(reply) == (INDEX, "fd00::10")


def test_an_ipv4_reply_reads_the_local_address_not_the_peer() -> None:
    # On a point-to-point link IFA_ADDRESS is the far end.
    reply = encoded_reply(
        ifaddrmsg(),
        family=socket.AF_INET,
        prefixlen=32,
        index=INDEX,
        attrs=[("IFA_ADDRESS", "10.0.0.2"), ("IFA_LOCAL", "10.0.0.1")],
    )
    assert rtm.read_address(reply) == (INDEX, "10.0.0.1")


def test_a_reply_of_another_family_or_without_an_address_reads_as_none() -> None:
    assert rtm.read_address(rtm.IFADDRMSG.pack(socket.AF_PACKET, 0, 0, 0, INDEX)) is None
    assert rtm.read_address(rtm.IFADDRMSG.pack(socket.AF_INET, 32, 0, 0, INDEX)) is None


def test_a_link_reply_reads_as_its_index_and_kind() -> None:
    dummy = encoded_reply(
        ifinfmsg(),
        index=INDEX,
        attrs=[
            ("IFLA_IFNAME", "kube-ipvs0"),
            ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "dummy")]}),
        ],
    )
    assert rtm.read_link(dummy) == rtm.Link(INDEX, "dummy")
    plain = encoded_reply(ifinfmsg(), index=1, attrs=[("IFLA_IFNAME", "lo")])
    assert rtm.read_link(plain) == rtm.Link(1, None)
