"""The conntrack cleanup's pure parts, and its use of a ctnetlink socket, without a kernel.

The fake socket dumps messages pyroute2 encoded and decoded as it would the
kernel's, and answers deletes as ctnetlink does (ENOENT for an entry that is
gone). That the real kernel agrees, with real IPVS traffic, is proven in
integration/tests/test_conntrack.py.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink.nfctsocket import (
    FILTER_FLAG_CTA_IP_DST,
    FILTER_FLAG_CTA_PROTO_DST_PORT,
    FILTER_FLAG_CTA_PROTO_NUM,
    NFCTAttrTuple,
    nfct_msg,
)

from ipvsctl.conntrack.udp_flows import (
    ConntrackEntry,
    ConntrackTable,
    FlowTuple,
    UdpNatFlow,
    belongs_to,
    delete_udp_flows,
    kernel_filter,
    read_entry,
    udp_nat_flow,
)
from ipvsctl.links import LinkError

UDP, TCP = socket.IPPROTO_UDP, socket.IPPROTO_TCP
V4, V6 = socket.AF_INET, socket.AF_INET6
VIP, RIP, OTHER_RIP, CLIENT = "10.96.0.10", "10.244.1.5", "10.244.2.7", "10.250.0.2"
VIP6, RIP6, CLIENT6 = "fd00:96::a", "fd00:244:1::5", "fd00:250::2"


def nat_entry(
    family: int = V4,
    client: str = CLIENT,
    client_port: int = 40000,
    service: str = VIP,
    service_port: int = 53,
    real: str = RIP,
    real_port: int = 5353,
    protocol: int = UDP,
    id_: int | None = 7,
) -> ConntrackEntry:
    """The entry IPVS makes for CLIENT:cport -> SERVICE:port forwarded to REAL:port."""
    return ConntrackEntry(
        family,
        FlowTuple(client, service, protocol, client_port, service_port),
        FlowTuple(real, client, protocol, real_port, client_port),
        id=id_,
    )


FLOW = UdpNatFlow(V4, VIP, 53, RIP, 5353)
FLOW6 = UdpNatFlow(V6, VIP6, 53, RIP6, 5353)


# --- the flow ---------------------------------------------------------------


def test_a_flow_takes_the_kernels_spelling_and_family_of_its_addresses() -> None:
    assert udp_nat_flow(VIP, 53, RIP, 5353) == FLOW
    assert udp_nat_flow("FD00:96:0::A", 53, "fd00:244:1:0:0:0:0:5", 5353) == FLOW6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ("10.96.0.1O", 53, RIP, 5353),
            "conntrack udp 10.96.0.1O:53 -> 10.244.1.5:5353: service address is not an IP "
            "address: Invalid argument (EINVAL)",
        ),
        (
            (VIP, 53, "pod-a", 5353),
            "conntrack udp 10.96.0.10:53 -> pod-a:5353: real server address is not an IP "
            "address: Invalid argument (EINVAL)",
        ),
        (
            (VIP, 0, RIP, 5353),
            "conntrack udp 10.96.0.10:0 -> 10.244.1.5:5353: service port 0 is not 1-65535: "
            "Invalid argument (EINVAL)",
        ),
        (
            (VIP, 53, RIP, 65536),
            "conntrack udp 10.96.0.10:53 -> 10.244.1.5:65536: real server port 65536 is not "
            "1-65535: Invalid argument (EINVAL)",
        ),
        (
            (VIP6, 53, RIP, 5353),
            "conntrack udp [fd00:96::a]:53 -> 10.244.1.5:5353: the addresses are of different "
            "families: Invalid argument (EINVAL)",
        ),
    ],
)
def test_a_bad_flow_is_one_line_naming_what_is_wrong(
    arguments: tuple[str, int, str, int], message: str
) -> None:
    with pytest.raises(LinkError) as raised:
        udp_nat_flow(*arguments)
    assert str(raised.value) == message
    assert raised.value.errno == errno.EINVAL


def test_a_flow_names_itself_as_ipvsadm_spells_its_ends() -> None:
    assert str(FLOW) == "conntrack udp 10.96.0.10:53 -> 10.244.1.5:5353"
    assert str(FLOW6) == "conntrack udp [fd00:96::a]:53 -> [fd00:244:1::5]:5353"


# --- which entries belong to it ----------------------------------------------


def test_the_entry_ipvs_makes_for_the_flow_belongs_to_it_whatever_the_client() -> None:
    assert belongs_to(FLOW, nat_entry())
    assert belongs_to(FLOW, nat_entry(client="10.1.2.3", client_port=1))
    assert belongs_to(FLOW6, nat_entry(V6, CLIENT6, 40000, VIP6, 53, RIP6))


@pytest.mark.parametrize(
    "other",
    [
        nat_entry(real=OTHER_RIP),  # another real server of the same service
        nat_entry(real_port=5354),  # another port of the same pod
        nat_entry(service="10.96.0.11"),  # another service with the same real server
        nat_entry(service_port=54),  # another port of the same service
        nat_entry(protocol=TCP),
        nat_entry(V6, CLIENT6, 40000, VIP6, 53, RIP6),
    ],
    ids=["real-server", "real-port", "service", "service-port", "tcp", "ipv6"],
)
def test_an_entry_of_another_flow_does_not_belong_to_it(other: ConntrackEntry) -> None:
    assert not belongs_to(FLOW, other)


def test_an_entry_not_natted_by_ipvs_does_not_belong_to_it() -> None:
    # No real server in the reply: the client talking to the VIP itself.
    direct = ConntrackEntry(
        V4, FlowTuple(CLIENT, VIP, UDP, 40000, 53), FlowTuple(VIP, CLIENT, UDP, 53, 40000)
    )
    assert not belongs_to(FLOW, direct)


ADDRESSES = st.sampled_from([VIP, "10.96.0.11", RIP, OTHER_RIP])
PORTS = st.sampled_from([53, 54, 5353])


@given(ADDRESSES, PORTS, ADDRESSES, PORTS, st.sampled_from([UDP, TCP]))
def test_an_entry_belongs_exactly_when_service_real_server_and_protocol_all_match(
    service: str, service_port: int, real: str, real_port: int, protocol: int
) -> None:
    entry = nat_entry(
        service=service,
        service_port=service_port,
        real=real,
        real_port=real_port,
        protocol=protocol,
    )
    expected = (service, service_port, real, real_port, protocol) == (VIP, 53, RIP, 5353, UDP)
    assert belongs_to(FLOW, entry) is expected


# --- ctnetlink messages -------------------------------------------------------


def dumped(entry: ConntrackEntry, zone: int | None = None) -> Any:
    """`entry` as a ctnetlink dump message, encoded and decoded by pyroute2."""

    def attr_tuple(flow_tuple: FlowTuple) -> NFCTAttrTuple:
        return NFCTAttrTuple(
            family=entry.family,
            saddr=flow_tuple.source,
            daddr=flow_tuple.destination,
            proto=flow_tuple.protocol,
            sport=flow_tuple.source_port,
            dport=flow_tuple.destination_port,
        )

    message = nfct_msg.create_from(
        tuple_orig=attr_tuple(entry.original),
        tuple_reply=attr_tuple(entry.reply),
        id=entry.id,
        zone=zone,
    )
    message["nfgen_family"] = entry.family
    message.encode()
    decoded = nfct_msg(message.data)
    decoded.decode()
    return decoded


@pytest.mark.parametrize(
    "entry",
    [nat_entry(), nat_entry(V6, CLIENT6, 40000, VIP6, 53, RIP6, id_=None)],
    ids=["ipv4", "ipv6"],
)
def test_a_dumped_message_reads_back_as_the_entry(entry: ConntrackEntry) -> None:
    assert read_entry(dumped(entry)) == entry


def test_a_dumped_message_keeps_its_zone_and_the_kernels_spelling() -> None:
    spelled_long = nat_entry(V6, "fd00:250:0::2", 1, "FD00:96::A", 53, RIP6)
    read = read_entry(dumped(spelled_long, zone=3))
    assert read is not None
    assert (read.original.destination, read.original.source, read.zone) == (VIP6, CLIENT6, 3)


def test_a_message_without_tuples_is_no_entry() -> None:
    message = nfct_msg()
    message["nfgen_family"] = V4
    assert read_entry(message) is None


def test_the_ipv4_dump_is_filtered_on_protocol_address_and_port() -> None:
    wanted = kernel_filter(FLOW)
    assert wanted.attrs() == [
        ["CTA_TUPLE_IP", {"attrs": [["CTA_IP_V4_DST", VIP]]}],
        ["CTA_TUPLE_PROTO", {"attrs": [["CTA_PROTO_NUM", UDP], ["CTA_PROTO_DST_PORT", 53]]}],
    ]
    assert wanted.flags == (
        FILTER_FLAG_CTA_IP_DST | FILTER_FLAG_CTA_PROTO_NUM | FILTER_FLAG_CTA_PROTO_DST_PORT
    )


def test_the_ipv6_dump_leaves_the_address_out_of_the_kernels_inverted_compare() -> None:
    wanted = kernel_filter(FLOW6)
    assert wanted.attrs() == [
        ["CTA_TUPLE_PROTO", {"attrs": [["CTA_PROTO_NUM", UDP], ["CTA_PROTO_DST_PORT", 53]]}],
    ]
    assert wanted.flags == FILTER_FLAG_CTA_PROTO_NUM | FILTER_FLAG_CTA_PROTO_DST_PORT


# --- the table, over a fake ctnetlink socket -----------------------------------


@dataclass
class FakeCtnetlink:
    """A ctnetlink socket of one family over `entries`, keyed by their original tuples.

    `refuse` answers every delete with that errno; `dumping` is true while a
    dump is being read, and a request made meanwhile fails the test.
    """

    family: int
    entries: dict[FlowTuple, ConntrackEntry]
    refuse: int | None = None
    dumping: bool = False
    deletes: list[tuple[FlowTuple, int | None]] = field(default_factory=list)
    closed: bool = False

    def dump(self, tuple_orig: NFCTAttrTuple) -> Any:
        assert not self.dumping
        assert tuple_orig.family == self.family
        self.dumping = True
        for entry in list(self.entries.values()):
            if entry.family == self.family:
                yield dumped(entry)
        self.dumping = False

    def entry(self, command: str, **request: Any) -> tuple[()]:
        assert command == "del" and not self.dumping and request["zone"] is None
        tuple_orig, id_ = request["tuple_orig"], request["id"]
        key = FlowTuple(
            tuple_orig.saddr, tuple_orig.daddr, tuple_orig.proto, tuple_orig.sport, tuple_orig.dport
        )
        self.deletes.append((key, id_))
        if self.refuse is not None:
            raise NetlinkError(self.refuse)
        found = self.entries.get(key)
        if found is None or (id_ is not None and found.id != id_):
            raise NetlinkError(errno.ENOENT)
        del self.entries[key]
        return ()

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeKernel:
    entries: dict[FlowTuple, ConntrackEntry]
    refuse: int | None = None
    sockets: list[FakeCtnetlink] = field(default_factory=list)

    def socket(self, nfgen_family: int) -> FakeCtnetlink:
        made = FakeCtnetlink(nfgen_family, self.entries, self.refuse)
        self.sockets.append(made)
        return made


def kernel_with(monkeypatch: pytest.MonkeyPatch, *entries: ConntrackEntry) -> FakeKernel:
    import pyroute2

    kernel = FakeKernel({entry.original: entry for entry in entries})
    monkeypatch.setattr(pyroute2, "NFCTSocket", kernel.socket)
    return kernel


def test_the_cleanup_deletes_every_entry_of_the_flow_and_only_those(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = [nat_entry(client_port=port, id_=port) for port in (40000, 40001)]
    others = [
        nat_entry(client_port=40002, real=OTHER_RIP),
        nat_entry(client_port=40003, service_port=54),
        nat_entry(V6, CLIENT6, 40000, VIP6, 53, RIP6),
    ]
    kernel = kernel_with(monkeypatch, *ours, *others)
    assert delete_udp_flows(VIP, 53, RIP, 5353) == 2
    assert sorted(kernel.entries.values(), key=repr) == sorted(others, key=repr)
    assert [(key.source_port, id_) for key, id_ in kernel.sockets[0].deletes] == [
        (40000, 40000),
        (40001, 40001),
    ]
    assert [s.family for s in kernel.sockets] == [V4]
    assert all(s.closed for s in kernel.sockets)


def test_the_ipv6_cleanup_uses_an_ipv6_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = kernel_with(monkeypatch, nat_entry(), nat_entry(V6, CLIENT6, 40000, VIP6, 53, RIP6))
    assert delete_udp_flows(VIP6, 53, RIP6, 5353) == 1
    assert list(kernel.entries.values()) == [nat_entry()]
    assert [s.family for s in kernel.sockets] == [V6]


def test_an_entry_gone_meanwhile_is_not_counted_and_no_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel = kernel_with(monkeypatch, nat_entry(client_port=1), nat_entry(client_port=2))
    with ConntrackTable() as table:
        entries = table.udp_nat_entries(FLOW)
        del kernel.entries[entries[0].original]  # the kernel's own flush got there first
        assert sum(table.delete(entry, FLOW) for entry in entries) == 1
    assert kernel.entries == {}


def test_an_entry_whose_tuple_a_new_flow_took_under_a_new_id_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = nat_entry(id_=1)
    kernel = kernel_with(monkeypatch, old)
    with ConntrackTable() as table:
        (listed,) = table.udp_nat_entries(FLOW)
        new = nat_entry(real=OTHER_RIP, id_=2)
        kernel.entries[new.original] = new
        assert table.delete(listed, FLOW) is False
    assert list(kernel.entries.values()) == [new]


def test_a_refused_delete_is_one_line_naming_the_flow_the_entry_and_the_errno(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel = kernel_with(monkeypatch, nat_entry())
    kernel.refuse = errno.EPERM
    with pytest.raises(LinkError) as raised:
        delete_udp_flows(VIP, 53, RIP, 5353)
    assert str(raised.value) == (
        "conntrack udp 10.96.0.10:53 -> 10.244.1.5:5353: delete entry 10.250.0.2:40000 -> "
        "10.96.0.10:53: Operation not permitted (EPERM)"
    )
    assert all(s.closed for s in kernel.sockets)


def test_a_failed_dump_is_one_line_naming_the_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    def overrun(tuple_orig: NFCTAttrTuple) -> Any:
        raise NetlinkError(errno.ENOBUFS)
        yield  # a generator, as pyroute2's dump is

    kernel = kernel_with(monkeypatch)
    with ConntrackTable() as table:
        table.udp_nat_entries(FLOW)  # opens the socket
        monkeypatch.setattr(kernel.sockets[0], "dump", overrun)
        with pytest.raises(LinkError) as raised:
            table.udp_nat_entries(FLOW)
    assert str(raised.value) == (
        "conntrack udp 10.96.0.10:53 -> 10.244.1.5:5353: list entries: "
        "No buffer space available (ENOBUFS)"
    )


def test_a_socket_that_cannot_be_opened_is_a_link_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyroute2

    def refused(nfgen_family: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(pyroute2, "NFCTSocket", refused)
    with pytest.raises(LinkError) as raised:
        delete_udp_flows(VIP, 53, RIP, 5353)
    assert str(raised.value).endswith(": open ctnetlink socket: Operation not permitted (EPERM)")


def test_a_bad_flow_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = kernel_with(monkeypatch)
    with pytest.raises(LinkError):
        delete_udp_flows(VIP, 53, "not-an-ip", 5353)
    assert kernel.sockets == []
