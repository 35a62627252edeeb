"""The conntrack entries of UDP flows whose real server is gone, found and deleted.

What: with `net.ipv4.vs.conntrack=1` every connection IPVS forwards in NAT
(masq) mode has a conntrack entry. Its original tuple is the client's
`CLIENT:cport -> VIP:vport`, and IPVS rewrites its reply tuple to
`RIP:rport -> CLIENT:cport`, the real server's side (`ip_vs_update_conntrack`,
net/netfilter/ipvs/ip_vs_nfct.c). kube-proxy deletes those of a removed UDP
endpoint with `conntrack -D -p udp --orig-dst VIP --reply-src RIP`
(kubernetes#71514, kubernetes#125467); so do we, matching the ports as well,
so other ports of the same Service and pod are left alone.

Why: a UDP client that keeps its socket keeps its entry alive. While the
entry outlives the real server, IPVS drops the flow's next datagram, because
it still carries the old, confirmed entry (`ip_vs_conn_uses_old_conntrack`
in `ip_vs_in_hook`), and rules that match on conntrack state or NAT see a
flow to a pod that is gone. Linux 5.9 and later usually drop the entries
themselves right after the deletion when `expire_nodest_conn=1` (which
ipvsctl sets); older kernels, or a deletion made while it was 0, leave
them. Deleting them is then harmless: an entry the kernel dropped first
answers ENOENT, which is no error.

How: per address family, one dump filtered in the kernel on the original
tuple (CTA_FILTER, Linux 5.8 and later; older kernels ignore the filter and
dump the whole family), every entry checked again here on both tuples, then
each match deleted by its original tuple and its id.

pyroute2 is imported when a table is first used, not with this module, so
importing the room costs nothing until the agent deletes a flow.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ipvsctl.links.errors import LinkError
from ipvsctl.model import AF_INET6, address_family, canonical_address

IPPROTO_UDP = socket.IPPROTO_UDP


@dataclass(frozen=True)
class UdpNatFlow:
    """The UDP flows IPVS forwards from one virtual server to one real server."""

    family: int
    service_address: str
    service_port: int
    real_address: str
    real_port: int

    def __str__(self) -> str:
        service = _endpoint(self.service_address, self.service_port)
        return f"conntrack udp {service} -> {_endpoint(self.real_address, self.real_port)}"


@dataclass(frozen=True)
class FlowTuple:
    """One direction of a conntrack entry; ports are None for protocols without them."""

    source: str
    destination: str
    protocol: int
    source_port: int | None
    destination_port: int | None


@dataclass(frozen=True)
class ConntrackEntry:
    """A conntrack entry as ctnetlink dumps it: what deleting it exactly takes, and its reply."""

    family: int
    original: FlowTuple
    reply: FlowTuple
    id: int | None = None
    zone: int | None = None


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _spelled(entry: ConntrackEntry) -> str:
    original = entry.original
    source = _endpoint(original.source, original.source_port or 0)
    return f"entry {source} -> {_endpoint(original.destination, original.destination_port or 0)}"


def udp_nat_flow(
    service_address: str, service_port: int, real_address: str, real_port: int
) -> UdpNatFlow:
    """The flow, addresses in the kernel's spelling; LinkError (EINVAL) naming what is wrong."""
    what = f"conntrack udp {_endpoint(service_address, service_port)} -> " + _endpoint(
        real_address, real_port
    )
    addresses = []
    for role, address in (("service", service_address), ("real server", real_address)):
        try:
            addresses.append(canonical_address(address))
        except (ValueError, OSError):
            raise LinkError(errno.EINVAL, f"{what}: {role} address is not an IP address") from None
    for role, port in (("service", service_port), ("real server", real_port)):
        if not 1 <= port <= 0xFFFF:
            raise LinkError(errno.EINVAL, f"{what}: {role} port {port} is not 1-65535")
    family = address_family(addresses[0])
    if address_family(addresses[1]) != family:
        raise LinkError(errno.EINVAL, f"{what}: the addresses are of different families")
    return UdpNatFlow(family, addresses[0], service_port, addresses[1], real_port)


def belongs_to(flow: UdpNatFlow, entry: ConntrackEntry) -> bool:
    """Whether `entry` is a flow IPVS forwarded from `flow`'s virtual server to its real server."""
    original, reply = entry.original, entry.reply
    return (
        entry.family == flow.family
        and original.protocol == IPPROTO_UDP
        and original.destination == flow.service_address
        and original.destination_port == flow.service_port
        and reply.source == flow.real_address
        and reply.source_port == flow.real_port
    )


def _read_tuple(family: int, nla: Any) -> FlowTuple:
    """A CTA_TUPLE_ORIG or CTA_TUPLE_REPLY as pyroute2 decoded it."""
    version = "V6" if family == AF_INET6 else "V4"
    ip, proto = nla.get_attr("CTA_TUPLE_IP"), nla.get_attr("CTA_TUPLE_PROTO")
    return FlowTuple(
        source=canonical_address(ip.get_attr(f"CTA_IP_{version}_SRC")),
        destination=canonical_address(ip.get_attr(f"CTA_IP_{version}_DST")),
        protocol=proto.get_attr("CTA_PROTO_NUM"),
        source_port=proto.get_attr("CTA_PROTO_SRC_PORT"),
        destination_port=proto.get_attr("CTA_PROTO_DST_PORT"),
    )


def read_entry(message: Any) -> ConntrackEntry | None:
    """A dumped ctnetlink message (pyroute2's nfct_msg) as an entry; None when it has no tuples."""
    family = message["nfgen_family"]
    original, reply = message.get_attr("CTA_TUPLE_ORIG"), message.get_attr("CTA_TUPLE_REPLY")
    if original is None or reply is None:
        return None
    return ConntrackEntry(
        family=family,
        original=_read_tuple(family, original),
        reply=_read_tuple(family, reply),
        id=message.get_attr("CTA_ID"),
        zone=message.get_attr("CTA_ZONE"),
    )


def kernel_filter(flow: UdpNatFlow) -> Any:
    """The original-direction filter of the dump: UDP to the virtual server's port, and
    for IPv4 its address.

    The kernel compares IPv6 filter addresses the wrong way round: an entry
    whose address *equals* the filter's is skipped (`!ipv6_addr_cmp` in
    `ctnetlink_filter_match_tuple`, since Linux 5.8; measured on 7.2), so IPv6
    dumps are filtered on protocol and port only. The reply side is matched
    here rather than in the kernel too: its filter was broken in some kernels
    that have one (pyroute2's `dump` says so). `belongs_to` checks everything.
    """
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    return NFCTAttrTuple(
        family=flow.family,
        daddr=None if flow.family == AF_INET6 else flow.service_address,
        proto=IPPROTO_UDP,
        dport=flow.service_port,
    )


def _exact_tuple(family: int, flow_tuple: FlowTuple) -> Any:
    """The whole original tuple, which is what finds one entry to delete."""
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    return NFCTAttrTuple(
        family=family,
        saddr=flow_tuple.source,
        daddr=flow_tuple.destination,
        proto=flow_tuple.protocol,
        sport=flow_tuple.source_port,
        dport=flow_tuple.destination_port,
    )


class ConntrackTable:
    """The kernel's conntrack table, over one ctnetlink socket per address family.

    Sockets are opened when first needed. Use as a context manager, or call close().
    """

    def __init__(self) -> None:
        self._sockets: dict[int, Any] = {}

    def close(self) -> None:
        sockets, self._sockets = self._sockets, {}
        for nfct in sockets.values():
            nfct.close()

    def __enter__(self) -> ConntrackTable:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _socket(self, family: int, flow: UdpNatFlow) -> Any:
        if family not in self._sockets:
            from pyroute2 import NFCTSocket

            try:
                self._sockets[family] = NFCTSocket(nfgen_family=family)
            except OSError as error:
                raise LinkError(error.errno or 0, f"{flow}: open ctnetlink socket") from None
        return self._sockets[family]

    def udp_nat_entries(self, flow: UdpNatFlow) -> list[ConntrackEntry]:
        """The entries of `flow`: UDP to its virtual server, answered by its real server."""
        from pyroute2.netlink.exceptions import NetlinkError

        nfct = self._socket(flow.family, flow)
        try:
            # Read to the end before anything else is asked on this socket.
            messages = list(nfct.dump(tuple_orig=kernel_filter(flow)))
        except NetlinkError as error:
            raise LinkError(error.code, f"{flow}: list entries") from None
        except OSError as error:
            raise LinkError(error.errno or 0, f"{flow}: list entries") from None
        entries = (read_entry(message) for message in messages)
        return [entry for entry in entries if entry is not None and belongs_to(flow, entry)]

    def delete(self, entry: ConntrackEntry, flow: UdpNatFlow) -> bool:
        """Delete one entry; False when it was gone already (or its tuple is another flow's now)."""
        from pyroute2.netlink.exceptions import NetlinkError

        nfct = self._socket(entry.family, flow)
        try:
            nfct.entry(
                "del",
                tuple_orig=_exact_tuple(entry.family, entry.original),
                id=entry.id,
                zone=entry.zone,
            )
        except NetlinkError as error:
            if error.code == errno.ENOENT:
                return False
            raise LinkError(error.code, f"{flow}: delete {_spelled(entry)}") from None
        except OSError as error:
            raise LinkError(error.errno or 0, f"{flow}: delete {_spelled(entry)}") from None
        return True

    def delete_udp_flows(
        self, service_address: str, service_port: int, real_address: str, real_port: int
    ) -> int:
        """Delete every UDP entry from the virtual server to the real server; how many went."""
        flow = udp_nat_flow(service_address, service_port, real_address, real_port)
        return sum(self.delete(entry, flow) for entry in self.udp_nat_entries(flow))


def delete_udp_flows(
    service_address: str, service_port: int, real_address: str, real_port: int
) -> int:
    """`ConntrackTable.delete_udp_flows` on a socket of its own, for one-off callers."""
    with ConntrackTable() as table:
        return table.delete_udp_flows(service_address, service_port, real_address, real_port)
