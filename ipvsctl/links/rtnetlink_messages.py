"""The rtnetlink messages the links room sends, and reading the kernel's replies.

Each request is encoded as iproute2 and pyroute2 encode it (the unit tests
compare the bytes with pyroute2's own encoder):

- an address: ifaddrmsg {family, prefixlen, flags 0, scope 0 (global),
  index}, then IFA_ADDRESS and, for IPv4, IFA_LOCAL (the kernel takes the
  interface's own address from IFA_LOCAL; without it an IPv4 add is refused).
  IPv6 addresses are added with IFA_F_NODAD, in IFA_FLAGS: the 8-bit field of
  the header would do for this flag, but IFA_FLAGS is what the kernel reads
  first and what carries the flags above 0xff.
- a link: ifinfomsg {family 0, type 0, index, flags 0, change 0}, then
  IFLA_IFNAME and IFLA_LINKINFO { IFLA_INFO_KIND "dummy" } for a new one,
  the name alone to read one, the index alone to delete one.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from ipvsctl.model import AF_INET, AF_INET6
from ipvsctl.netlink.attributes import attr, parse_attrs
from ipvsctl.netlink.batch_socket import Message

NETLINK_ROUTE = 0

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22

NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
# As `ip addr add` and `ip link add`: refuse (EEXIST) rather than change what is there.
CREATE_NEW = NLM_F_CREATE | NLM_F_EXCL

IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
IFA_F_NODAD = 0x02
RT_SCOPE_UNIVERSE = 0  # "scope global"
IFA_FLAGS_VALUE = struct.Struct("=I")

IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
IFLA_IFNAME = 3
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
DUMMY_KIND = "dummy"

_PREFIXLEN: dict[int, int] = {AF_INET: 32, AF_INET6: 128}


class HostAddress(NamedTuple):
    """An address as one host route, /32 or /128: family, packed bytes, prefix length."""

    family: int
    packed: bytes
    prefixlen: int


def host_address(family: int, text: str) -> HostAddress:
    """Raises OSError when `text` is not an address of `family`."""
    return HostAddress(family, socket.inet_pton(family, text), _PREFIXLEN[family])


def _address_payload(index: int, address: HostAddress, with_flags: bool) -> bytes:
    header = IFADDRMSG.pack(address.family, address.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    attrs = attr(IFA_ADDRESS, address.packed)
    if address.family == AF_INET:
        attrs += attr(IFA_LOCAL, address.packed)
    elif with_flags:
        attrs += attr(IFA_FLAGS, IFA_FLAGS_VALUE.pack(IFA_F_NODAD))
    return header + attrs


def new_address(index: int, address: HostAddress) -> Message:
    """RTM_NEWADDR: bind `address` to the link `index`; EEXIST when it is bound already."""
    return Message(RTM_NEWADDR, _address_payload(index, address, with_flags=True), CREATE_NEW)


def delete_address(index: int, address: HostAddress) -> Message:
    """RTM_DELADDR: unbind `address`; EADDRNOTAVAIL when it is not bound."""
    return Message(RTM_DELADDR, _address_payload(index, address, with_flags=False))


def dump_addresses() -> Message:
    """RTM_GETADDR for every address of every link, both families.

    The kernel filters a dump by interface only when the socket asks for strict
    checking (Linux 4.20 and later); the caller filters instead, on every kernel.
    """
    return Message(RTM_GETADDR, IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))


def read_address(payload: bytes) -> tuple[int, str] | None:
    """(interface index, address) of one RTM_NEWADDR reply; None if it names none.

    The local address when there is one (IFA_LOCAL: on a point-to-point link
    IFA_ADDRESS is the peer's), else IFA_ADDRESS, in inet_ntop's spelling.
    """
    family, _, _, _, index = IFADDRMSG.unpack_from(payload)
    if family not in _PREFIXLEN:
        return None
    attrs = parse_attrs(payload, IFADDRMSG.size)
    packed = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if packed is None:
        return None
    return index, socket.inet_ntop(family, packed)


def new_dummy_link(name: str) -> Message:
    """RTM_NEWLINK: a dummy link `name`, left down; EEXIST when the name is taken."""
    # No NLA_F_NESTED on IFLA_LINKINFO, and the kind NUL-terminated, as iproute2
    # and pyroute2 send them: the kernel parses IFLA_LINKINFO leniently either way.
    kind = attr(IFLA_INFO_KIND, DUMMY_KIND.encode() + b"\0")
    attrs = attr(IFLA_IFNAME, _ifname(name)) + attr(IFLA_LINKINFO, kind)
    return Message(RTM_NEWLINK, IFINFOMSG.pack(0, 0, 0, 0, 0) + attrs, CREATE_NEW)


def get_link(name: str) -> Message:
    """RTM_GETLINK by name; ENODEV when there is no such link.

    Not if_nametoindex: its ioctl makes the kernel try `modprobe netdev-NAME`
    for a name that does not exist (dev_load), ~30 ms in the kernel lab, and
    the interface is missing on every first apply.
    """
    return Message(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0) + attr(IFLA_IFNAME, _ifname(name)))


def delete_link(index: int) -> Message:
    return Message(RTM_DELLINK, IFINFOMSG.pack(0, 0, index, 0, 0))


class Link(NamedTuple):
    """A link as RTM_GETLINK tells it: its index, and its kind ("dummy", "veth", ...),
    None for a plain device such as `lo` or a NIC."""

    ifindex: int
    kind: str | None


def read_link(payload: bytes) -> Link:
    """The link one RTM_NEWLINK reply describes."""
    index = IFINFOMSG.unpack_from(payload)[2]
    linkinfo = parse_attrs(payload, IFINFOMSG.size).get(IFLA_LINKINFO)
    kind = None if linkinfo is None else parse_attrs(linkinfo).get(IFLA_INFO_KIND)
    return Link(index, None if kind is None else kind.rstrip(b"\0").decode(errors="replace"))


def _ifname(name: str) -> bytes:
    return name.encode() + b"\0"
