"""Replies in the kernel's own layout decode fast, and to what the generic path decodes.

`decode_dest` and `decode_service` read a reply laid out exactly as the
kernel writes it (ip_vs_ctl.c, ip_vs_genl_fill_*) with precompiled layouts,
and any other reply attribute by attribute. The replies here are built the
kernel's way, one attr() per nla_put(); the builders are pinned to replies
captured from a real kernel. For every value, both paths must agree, and the
fast one must be the one taken, or the speed-up could vanish unnoticed.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.kernel import ipvs_codec as codec
from ipvsctl.kernel import ipvs_uapi as uapi
from ipvsctl.kernel.netlink import GENLMSGHDR
from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    Protocol,
    RealServer,
    RealServerEntry,
    ServiceKey,
    Stats,
    TunnelType,
    VirtualServer,
    canonical_address,
)
from ipvsctl.netlink.attributes import FixedLayout, attr

CMD_NEW_SERVICE, CMD_NEW_DEST = 1, 5  # what the kernel's dump replies carry
HASHED = 0x2  # IP_VS_SVC_F_HASHED: the kernel reports it, the model drops it

# --- replies laid out as the kernel lays them out -----------------------------


def u8(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=B", value))


def u16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=H", value))


def be16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!H", value))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def u64(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=Q", value))


def nest(kind: int, members: list[bytes]) -> bytes:
    # nla_nest_start_noflag: IPVS replies carry no NLA_F_NESTED.
    return attr(kind, b"".join(members))


def nf_inet_addr(family: int, address: str) -> bytes:
    """union nf_inet_addr: 16 bytes whatever the family."""
    return socket.inet_pton(family, address).ljust(16, b"\0")


def stats_nests(stats_kind: int, stats64_kind: int, stats: Stats) -> list[bytes]:
    """ip_vs_genl_fill_stats then _fill_stats64 (x86-64: no IPVS_STATS_ATTR_PAD)."""
    kinds = range(1, len(stats) + 1)
    stats32 = [  # (u32) casts, but inbytes and outbytes are u64 here too
        u64(kind, value) if kind in (4, 5) else u32(kind, value % 2**32)
        for kind, value in zip(kinds, stats, strict=True)
    ]
    stats64 = [u64(kind, value) for kind, value in zip(kinds, stats, strict=True)]
    return [nest(stats_kind, stats32), nest(stats64_kind, stats64)]


def dest_attrs(service_family: int, entry: RealServerEntry) -> list[bytes]:
    """ip_vs_genl_fill_dest's attributes, in its order (Linux >= 5.3)."""
    server = entry.server
    own = server.family_in(service_family)
    return [
        attr(uapi.DEST_ADDR, nf_inet_addr(own, server.address)),
        be16(uapi.DEST_PORT, server.port),
        u32(uapi.DEST_FWD_METHOD, server.forward),
        u32(uapi.DEST_WEIGHT, server.weight),
        u8(uapi.DEST_TUN_TYPE, server.tunnel_type),
        be16(uapi.DEST_TUN_PORT, server.tunnel_port),
        u16(uapi.DEST_TUN_FLAGS, server.tunnel_flags),
        u32(uapi.DEST_U_THRESH, server.upper_threshold),
        u32(uapi.DEST_L_THRESH, server.lower_threshold),
        u32(uapi.DEST_ACTIVE_CONNS, entry.active_conns),
        u32(uapi.DEST_INACT_CONNS, entry.inactive_conns),
        u32(uapi.DEST_PERSIST_CONNS, entry.persistent_conns),
        u16(uapi.DEST_ADDR_FAMILY, own),
        *stats_nests(uapi.DEST_STATS, uapi.DEST_STATS64, entry.stats),
    ]


def service_attrs(service: VirtualServer, stats: Stats, kernel_flags: int = HASHED) -> list[bytes]:
    """ip_vs_genl_fill_service's attributes, in its order."""
    key = service.key
    if key.is_fwmark:
        head = [u32(uapi.SVC_FWMARK, key.fwmark)]
    else:
        head = [
            u16(uapi.SVC_PROTOCOL, key.protocol),
            attr(uapi.SVC_ADDR, nf_inet_addr(key.family, key.address)),
            be16(uapi.SVC_PORT, key.port),
        ]
    pe = [attr(uapi.SVC_PE_NAME, service.pe_name.encode() + b"\0")] if service.pe_name else []
    netmask = struct.pack("!I" if key.family == AF_INET else "=I", service.netmask)
    return [
        u16(uapi.SVC_AF, key.family),
        *head,
        attr(uapi.SVC_SCHED_NAME, service.scheduler.encode() + b"\0"),
        *pe,
        attr(uapi.SVC_FLAGS, struct.pack("=II", service.flags | kernel_flags, 0xFFFFFFFF)),
        u32(uapi.SVC_TIMEOUT, service.timeout),
        attr(uapi.SVC_NETMASK, netmask),
        *stats_nests(uapi.SVC_STATS, uapi.SVC_STATS64, stats),
    ]


def kind_of(attribute: bytes) -> int:
    return int(struct.unpack_from("=H", attribute, 2)[0])


def reply(cmd: int, nest_kind: int, attrs: list[bytes]) -> bytes:
    return GENLMSGHDR.pack(cmd, 1, 0) + nest(nest_kind, attrs)


def dest_reply(service_family: int, entry: RealServerEntry) -> bytes:
    return reply(CMD_NEW_DEST, uapi.CMD_ATTR_DEST, dest_attrs(service_family, entry))


def service_reply(service: VirtualServer, stats: Stats) -> bytes:
    return reply(CMD_NEW_SERVICE, uapi.CMD_ATTR_SERVICE, service_attrs(service, stats))


@contextmanager
def generic_path_calls() -> Iterator[dict[str, mock.MagicMock]]:
    """Counts the replies that took the generic path, by kind."""
    with (
        mock.patch.object(codec, "_dest_by_attributes", wraps=codec._dest_by_attributes) as dest,
        mock.patch.object(
            codec, "_service_by_attributes", wraps=codec._service_by_attributes
        ) as service,
    ):
        yield {"dest": dest, "service": service}


def outcome(decode: Callable[[], Any]) -> tuple[str, Any]:
    """A decode's value, or the type of what it raised: malformed replies must fail alike."""
    try:
        return ("value", decode())
    except Exception as e:
        return ("raised", type(e))


# --- the builders are the kernel's layout -------------------------------------

# GET_DEST and GET_SERVICE replies captured from Linux 7.2 (x86-64, host order).
CAPTURED_GUE_DEST = bytes.fromhex(
    "0501000050010200140001000af401060000000000000000000000000600020000500000080003000200000008000400"
    "0100000005000d000100000006000e0017c0000006000f00000000000800050000000000080006000000000008000700"
    "000000000800080000000000080009000000000006000b00020000005c000a0008000100000000000800020000000000"
    "08000300000000000c00040000000000000000000c000500000000000000000008000600000000000800070000000000"
    "0800080000000000080009000000000008000a00000000007c000c000c00010000000000000000000c00020000000000"
    "000000000c00030000000000000000000c00040000000000000000000c00050000000000000000000c00060000000000"
    "000000000c00070000000000000000000c00080000000000000000000c00090000000000000000000c000a0000000000"
    "00000000"
)
CAPTURED_IPV6_DEST = bytes.fromhex(
    "050100005001020014000100fd0000000000000000000000000000050600020000350000080003000000000008000400"
    "0100000005000d000000000006000e000000000006000f00000000000800050064000000080006000a00000008000700"
    "000000000800080000000000080009000000000006000b000a0000005c000a0008000100000000000800020000000000"
    "08000300000000000c00040000000000000000000c000500000000000000000008000600000000000800070000000000"
    "0800080000000000080009000000000008000a00000000007c000c000c00010000000000000000000c00020000000000"
    "000000000c00030000000000000000000c00040000000000000000000c00050000000000000000000c00060000000000"
    "000000000c00070000000000000000000c00080000000000000000000c00090000000000000000000c000a0000000000"
    "00000000"
)
CAPTURED_TCP_SERVICE = bytes.fromhex(
    "010100002c01010006000100020000000600020006000000140003000a00000100000000000000000000000006000400"
    "0050000007000600727200000c00070002000000ffffffff080008000000000008000900ffffffff5c000a0008000100"
    "00000000080002000000000008000300000000000c00040000000000000000000c000500000000000000000008000600"
    "0000000008000700000000000800080000000000080009000000000008000a00000000007c000c000c00010000000000"
    "000000000c00020000000000000000000c00030000000000000000000c00040000000000000000000c00050000000000"
    "000000000c00060000000000000000000c00070000000000000000000c00080000000000000000000c00090000000000"
    "000000000c000a000000000000000000"
)
CAPTURED_FWMARK_SIP_SERVICE = bytes.fromhex(
    "010100001801010006000100020000000800050007000000070006007368000008000b00736970000c00070003000000"
    "ffffffff080008003c00000008000900ffffffff5c000a00080001000000000008000200000000000800030000000000"
    "0c00040000000000000000000c0005000000000000000000080006000000000008000700000000000800080000000000"
    "080009000000000008000a00000000007c000c000c00010000000000000000000c00020000000000000000000c000300"
    "00000000000000000c00040000000000000000000c00050000000000000000000c00060000000000000000000c000700"
    "00000000000000000c00080000000000000000000c00090000000000000000000c000a000000000000000000"
)

captured_on_x86_64 = pytest.mark.skipif(
    sys.byteorder != "little", reason="the captures are in a little-endian host's order"
)

GUE_DEST = RealServerEntry(
    RealServer(
        "10.244.1.6", 80, forward=ForwardMethod.TUNNEL, tunnel_type=TunnelType.GUE, tunnel_port=6080
    )
)
IPV6_DEST = RealServerEntry(RealServer("fd00::5", 53, upper_threshold=100, lower_threshold=10))
TCP_SERVICE = VirtualServer(ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80), "rr")
FWMARK_SIP_SERVICE = VirtualServer(
    ServiceKey.for_fwmark(AF_INET, 7), "sh", flags=0x1, timeout=60, pe_name="sip"
)


@captured_on_x86_64
@pytest.mark.parametrize(
    ("family", "entry", "captured"),
    [(AF_INET, GUE_DEST, CAPTURED_GUE_DEST), (AF_INET6, IPV6_DEST, CAPTURED_IPV6_DEST)],
)
def test_the_dest_builder_writes_what_the_kernel_wrote(
    family: int, entry: RealServerEntry, captured: bytes
) -> None:
    assert dest_reply(family, entry) == captured


@captured_on_x86_64
@pytest.mark.parametrize(
    ("service", "captured"),
    [(TCP_SERVICE, CAPTURED_TCP_SERVICE), (FWMARK_SIP_SERVICE, CAPTURED_FWMARK_SIP_SERVICE)],
)
def test_the_service_builder_writes_what_the_kernel_wrote(
    service: VirtualServer, captured: bytes
) -> None:
    assert service_reply(service, Stats()) == captured


@captured_on_x86_64
def test_captured_replies_take_the_fast_path() -> None:
    with generic_path_calls() as calls:
        assert codec.decode_dest(CAPTURED_GUE_DEST, AF_INET) == GUE_DEST
        assert codec.decode_dest(CAPTURED_IPV6_DEST, AF_INET6) == IPV6_DEST
        assert codec.decode_service(CAPTURED_TCP_SERVICE) == (TCP_SERVICE, Stats())
        assert codec.decode_service(CAPTURED_FWMARK_SIP_SERVICE) == (FWMARK_SIP_SERVICE, Stats())
    assert calls["dest"].call_count == 0
    assert calls["service"].call_count == 0


# --- every value: fast path == generic path == what the kernel held -----------

families = st.sampled_from([AF_INET, AF_INET6])
ports = st.integers(0, 65535)
u32s = st.integers(0, 2**32 - 1)
u64s = st.integers(0, 2**64 - 1)
stats_values = st.builds(Stats, *([u64s] * len(Stats._fields)))


def addresses(family: int) -> st.SearchStrategy[str]:
    any_address = st.ip_addresses(v=4) if family == AF_INET else st.ip_addresses(v=6)
    return any_address.map(lambda a: canonical_address(str(a)))


@st.composite
def dest_cases(draw: st.DrawFn) -> tuple[int, RealServerEntry]:
    """(service family, entry): any value each field can carry, mixed families too."""
    service_family = draw(families)
    own = draw(families)
    server = RealServer(
        address=draw(addresses(own)),
        port=draw(ports),
        family=0 if own == service_family else own,
        # every 3-bit method and every u8 tunnel type, named or not
        forward=ForwardMethod(draw(st.integers(0, 7))),
        weight=draw(u32s),
        upper_threshold=draw(u32s),
        lower_threshold=draw(u32s),
        tunnel_type=TunnelType(draw(st.integers(0, 255))),
        tunnel_port=draw(ports),
        tunnel_flags=draw(st.integers(0, 65535)),
    )
    entry = RealServerEntry(server, draw(u32s), draw(u32s), draw(u32s), draw(stats_values))
    return service_family, entry


@st.composite
def service_cases(draw: st.DrawFn) -> tuple[VirtualServer, Stats]:
    family = draw(families)
    if draw(st.booleans()):
        key = ServiceKey.for_fwmark(family, draw(st.integers(1, 2**32 - 1)))
    else:
        protocol = draw(st.sampled_from([int(p) for p in Protocol]))
        key = ServiceKey(family, protocol, draw(addresses(family)), draw(ports))
    service = VirtualServer(
        key,
        scheduler=draw(st.sampled_from(["rr", "wrr", "lc", "sh", "mh", "lblcr", "none", ""])),
        flags=draw(st.integers(0, 0x3F)),
        timeout=draw(u32s),
        netmask=draw(u32s if family == AF_INET else st.integers(0, 128)),
        pe_name=draw(st.sampled_from(["", "sip"])),
    )
    return service, draw(stats_values)


@given(dest_cases())
def test_a_dest_in_the_kernels_layout_decodes_fast_to_its_values(
    case: tuple[int, RealServerEntry],
) -> None:
    family, entry = case
    message = dest_reply(family, entry)
    with generic_path_calls() as calls:
        decoded = codec.decode_dest(message, family)
    assert calls["dest"].call_count == 0
    assert decoded == entry
    assert decoded == codec._dest_by_attributes(message, family)
    assert type(decoded.server) is RealServer
    assert type(decoded.stats) is Stats


@given(service_cases())
def test_a_service_in_the_kernels_layout_decodes_fast_to_its_values(
    case: tuple[VirtualServer, Stats],
) -> None:
    service, stats = case
    message = service_reply(service, stats)
    with generic_path_calls() as calls:
        decoded = codec.decode_service(message)
    assert calls["service"].call_count == 0
    assert decoded == (service, stats)
    assert decoded == codec._service_by_attributes(message)


@given(dest_cases(), st.data())
def test_a_dest_in_another_order_or_with_attributes_missing_decodes_the_same(
    case: tuple[int, RealServerEntry], data: st.DataObject
) -> None:
    family, entry = case
    attrs = dest_attrs(family, entry)
    changed = data.draw(
        st.one_of(
            st.permutations(attrs),
            st.lists(st.sampled_from(attrs), unique=True).filter(lambda a: len(a) < len(attrs)),
        )
    )
    message = reply(CMD_NEW_DEST, uapi.CMD_ATTR_DEST, changed)
    with generic_path_calls() as calls:
        fast = outcome(lambda: codec.decode_dest(message, family))
    assert fast == outcome(lambda: codec._dest_by_attributes(message, family))
    assert calls["dest"].call_count == (0 if changed == attrs else 1)


@given(service_cases(), st.data())
def test_a_service_in_another_order_or_with_attributes_missing_decodes_the_same(
    case: tuple[VirtualServer, Stats], data: st.DataObject
) -> None:
    service, stats = case
    attrs = service_attrs(service, stats)
    changed = data.draw(
        st.one_of(
            st.permutations(attrs),
            st.lists(st.sampled_from(attrs), unique=True).filter(lambda a: len(a) < len(attrs)),
        )
    )
    message = reply(CMD_NEW_SERVICE, uapi.CMD_ATTR_SERVICE, changed)
    with generic_path_calls() as calls:
        fast = outcome(lambda: codec.decode_service(message))
    assert fast == outcome(lambda: codec._service_by_attributes(message))
    # Without its PE name, a reply is still one the kernel writes.
    kernel_layouts = [attrs, [a for a in attrs if kind_of(a) != uapi.SVC_PE_NAME]]
    assert calls["service"].call_count == (0 if changed in kernel_layouts else 1)


@given(service_cases(), st.data())
def test_a_service_with_other_attributes_among_its_names_decodes_the_same(
    case: tuple[VirtualServer, Stats], data: st.DataObject
) -> None:
    # The names are the one part of variable size: the fast path walks them.
    service, stats = case
    attrs = service_attrs(service, stats)
    name_kinds = (uapi.SVC_SCHED_NAME, uapi.SVC_PE_NAME)
    names_at = [i for i, a in enumerate(attrs) if kind_of(a) in name_kinds]
    first, last = names_at[0], names_at[-1] + 1
    extra = data.draw(st.lists(st.sampled_from([*attrs, u32(99, 1)]), max_size=3))
    middle = data.draw(st.permutations(attrs[first:last] + extra))
    changed = attrs[:first] + middle + attrs[last:]
    message = reply(CMD_NEW_SERVICE, uapi.CMD_ATTR_SERVICE, changed)
    with generic_path_calls() as calls:
        fast = outcome(lambda: codec.decode_service(message))
    assert fast == outcome(lambda: codec._service_by_attributes(message))
    assert calls["service"].call_count == (0 if b"".join(changed) == b"".join(attrs) else 1)


def edited_service(edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
    attrs = service_attrs(FWMARK_SIP_SERVICE, Stats(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
    return reply(CMD_NEW_SERVICE, uapi.CMD_ATTR_SERVICE, edit(attrs))


def replaced(kind: int, new: bytes) -> Callable[[list[bytes]], list[bytes]]:
    return lambda attrs: [new if kind_of(a) == kind else a for a in attrs]


@pytest.mark.parametrize(
    "message",
    [
        # no scheduler's name: the kernel always writes one
        edited_service(replaced(uapi.SVC_SCHED_NAME, b"")),
        # the names the other way round
        edited_service(lambda a: [*a[:2], a[3], a[2], *a[4:]]),
        # a name whose length is under a header's: parse_attrs stops there
        edited_service(replaced(uapi.SVC_SCHED_NAME, struct.pack("=HH", 3, uapi.SVC_SCHED_NAME))),
        # a name running into the attributes after it
        edited_service(replaced(uapi.SVC_PE_NAME, struct.pack("=HH", 12, uapi.SVC_PE_NAME))),
        # fwmark 0 is no key: the generic path looks for an address
        edited_service(replaced(uapi.SVC_FWMARK, u32(uapi.SVC_FWMARK, 0))),
        # too short for its nest
        edited_service(lambda a: a)[:-4],
        edited_service(lambda a: a[:2]),
    ],
)
def test_a_service_unlike_the_kernels_decodes_by_attributes_and_the_same(message: bytes) -> None:
    with generic_path_calls() as calls:
        fast = outcome(lambda: codec.decode_service(message))
    assert fast == outcome(lambda: codec._service_by_attributes(message))
    assert calls["service"].call_count == 1


@given(dest_cases())
def test_a_dest_from_a_kernel_before_5_3_decodes_by_attributes(
    case: tuple[int, RealServerEntry],
) -> None:
    # Before 5.3 no tunnel attributes (TUN_TYPE, TUN_PORT, TUN_FLAGS).
    family, entry = case
    tunnel_kinds = {uapi.DEST_TUN_TYPE, uapi.DEST_TUN_PORT, uapi.DEST_TUN_FLAGS}
    attrs = [a for a in dest_attrs(family, entry) if kind_of(a) not in tunnel_kinds]
    message = reply(CMD_NEW_DEST, uapi.CMD_ATTR_DEST, attrs)
    with generic_path_calls() as calls:
        decoded = codec.decode_dest(message, family)
    assert calls["dest"].call_count == 1
    plain = entry.server._replace(tunnel_type=TunnelType.IPIP, tunnel_port=0, tunnel_flags=0)
    assert decoded == entry._replace(server=plain)


@given(dest_cases())
def test_a_dest_without_stats64_decodes_its_32_bit_counters(
    case: tuple[int, RealServerEntry],
) -> None:
    # Before 4.1 no STATS64: the 32-bit block is all there is.
    family, entry = case
    message = reply(CMD_NEW_DEST, uapi.CMD_ATTR_DEST, dest_attrs(family, entry)[:-1])
    decoded = codec.decode_dest(message, family)
    wrapped = [v if k in (4, 5) else v % 2**32 for k, v in enumerate(entry.stats, 1)]
    assert decoded.stats == Stats(*wrapped)
    assert decoded.server == entry.server


@given(dest_cases())
def test_a_dest_with_trailing_bytes_is_not_read_by_the_fast_path(
    case: tuple[int, RealServerEntry],
) -> None:
    family, entry = case
    message = dest_reply(family, entry) + u32(99, 1)
    with generic_path_calls() as calls:
        decoded = codec.decode_dest(message, family)
    assert calls["dest"].call_count == 1
    assert decoded == entry


# --- FixedLayout --------------------------------------------------------------

PAIR = FixedLayout((1, "H"), (2, ((3, "I"), (4, "4x"))))


def test_a_fixed_layout_reads_each_payload_at_its_offset() -> None:
    data = b"skip" + u16(1, 7) + nest(2, [u32(3, 9), u32(4, 5)])
    assert PAIR.size == 8 + 4 + 8 + 8
    assert PAIR.read(data, 4) == (7, 9)


def test_a_fixed_layout_refuses_other_headers_and_short_data() -> None:
    good = u16(1, 7) + nest(2, [u32(3, 9), u32(4, 5)])
    assert PAIR.read(good) == (7, 9)
    assert PAIR.read(u16(1, 7) + nest(2, [u32(4, 9), u32(3, 5)])) is None
    assert PAIR.read(u16(1, 7) + nest(2 | 0x8000, [u32(3, 9), u32(4, 5)])) is None
    assert PAIR.read(good[:-1]) is None
    assert PAIR.read(good, 4) is None
