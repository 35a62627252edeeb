"""The netlink room: what every netlink protocol shares, and nothing of any one protocol.

A socket that sends many requests in one system call and matches each refusal
to its request by sequence number, with a deadline on every wait
(`batch_socket`), and the attribute encoding (`attributes`). The kernel room
speaks generic netlink (IPVS) through it, the links room rtnetlink (links and
addresses). It does no I/O of its own beyond that socket and imports nothing
of ipvsctl.
"""

from ipvsctl.netlink.attributes import attr, nested, parse_attrs
from ipvsctl.netlink.batch_socket import Message, NetlinkError, NetlinkSocket

__all__ = ["Message", "NetlinkError", "NetlinkSocket", "attr", "nested", "parse_attrs"]
