"""The IPVS codec writes what it reads: encode then decode gives the value back.

These pin our own encoding only; that the kernel reads it the same way is
proven in integration/tests/test_kernel_roundtrip.py.
"""

from __future__ import annotations

import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.kernel import ipvs_codec as codec
from ipvsctl.kernel import ipvs_uapi as uapi
from ipvsctl.kernel.netlink import GENLMSGHDR
from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    SETTABLE_FLAGS,
    STATS_FIELDS,
    ForwardMethod,
    Protocol,
    RealServer,
    ServiceKey,
    Timeouts,
    TunnelType,
    VirtualServer,
    canonical_address,
)
from ipvsctl.netlink.attributes import NLA_F_NESTED, attr, nested, parse_attrs

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: canonical_address(str(a)))
ports = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def service_keys(draw: st.DrawFn) -> ServiceKey:
    family = draw(st.sampled_from([AF_INET, AF_INET6]))
    if draw(st.booleans()):
        return ServiceKey.for_fwmark(family, draw(st.integers(1, 2**32 - 1)))
    address = draw(ipv4 if family == AF_INET else ipv6)
    return ServiceKey(family, int(draw(st.sampled_from(list(Protocol)))), address, draw(ports))


@st.composite
def virtual_servers(draw: st.DrawFn) -> VirtualServer:
    key = draw(service_keys())
    netmask = draw(u32 if key.family == AF_INET else st.integers(1, 128))
    return VirtualServer(
        key=key,
        scheduler=draw(st.sampled_from(["rr", "wrr", "sh", "mh", "lblcr"])),
        flags=draw(st.integers(0, 0x3F)),
        timeout=draw(u32),
        netmask=netmask,
        pe_name=draw(st.sampled_from(["", "sip"])),
    )


@st.composite
def real_servers(draw: st.DrawFn, family: int) -> RealServer:
    return RealServer(
        address=draw(ipv4 if family == AF_INET else ipv6),
        port=draw(ports),
        forward=draw(st.sampled_from([m for m in ForwardMethod if m != ForwardMethod.BYPASS])),
        weight=draw(st.integers(0, 65535)),
        upper_threshold=draw(u32),
        lower_threshold=draw(u32),
        tunnel_type=draw(st.sampled_from(list(TunnelType))),
        tunnel_port=draw(ports),
        tunnel_flags=draw(st.integers(0, 3)),
    )


def as_reply(nested_attr: bytes) -> memoryview:
    """A request's attribute wrapped as the kernel's reply would carry it."""
    return memoryview(GENLMSGHDR.pack(0, 1, 0) + nested_attr)


@given(virtual_servers())
def test_service_decodes_to_what_was_encoded(service: VirtualServer) -> None:
    decoded, stats = codec.decode_service(as_reply(codec.service_full(service)))
    assert decoded == service
    assert stats.conns == 0


@given(st.data())
def test_real_server_decodes_to_what_was_encoded(data: st.DataObject) -> None:
    family = data.draw(st.sampled_from([AF_INET, AF_INET6]))
    server = data.draw(real_servers(family))
    entry = codec.decode_dest(as_reply(codec.dest_full(family, server)), family)
    assert entry.server == server


def test_ipv4_netmask_travels_in_network_order() -> None:
    key = ServiceKey(AF_INET, Protocol.TCP, "10.0.0.1", 80)
    service = VirtualServer(key, netmask=0xFFFFFF00)
    attrs = parse_attrs(parse_attrs(codec.service_full(service))[uapi.CMD_ATTR_SERVICE])
    assert bytes(attrs[uapi.SVC_NETMASK]) == b"\xff\xff\xff\x00"


def test_ipv6_netmask_is_a_host_order_prefix_length() -> None:
    key = ServiceKey(AF_INET6, Protocol.TCP, "2001:db8::1", 80)
    service = VirtualServer(key, netmask=64)
    attrs = parse_attrs(parse_attrs(codec.service_full(service))[uapi.CMD_ATTR_SERVICE])
    assert bytes(attrs[uapi.SVC_NETMASK]) == struct.pack("=I", 64)


def test_default_netmask_is_the_full_host_mask() -> None:
    assert VirtualServer(ServiceKey(AF_INET, 6, "1.2.3.4", 1)).netmask == 0xFFFFFFFF
    assert VirtualServer(ServiceKey(AF_INET6, 6, "::1", 1)).netmask == 128


def test_hashed_flag_is_never_part_of_a_service() -> None:
    service = VirtualServer(ServiceKey(AF_INET, 6, "1.2.3.4", 1), flags=0x2 | 0x1)
    assert service.flags == 0x1
    assert not service.flags & ~int(SETTABLE_FLAGS)


def test_service_attribute_is_marked_nested() -> None:
    raw = codec.service_key(ServiceKey(AF_INET, 6, "1.2.3.4", 1))
    assert struct.unpack_from("=HH", raw)[1] == uapi.CMD_ATTR_SERVICE | NLA_F_NESTED


def test_stats64_preferred_over_32_bit_stats() -> None:
    big = 2**40
    stats32 = nested(uapi.SVC_STATS, attr(1, struct.pack("=I", 7)))
    stats64 = nested(uapi.SVC_STATS64, attr(1, struct.pack("=Q", big)))
    found = parse_attrs(stats32 + stats64)
    assert codec.decode_stats(found, uapi.SVC_STATS, uapi.SVC_STATS64).conns == big
    only32 = parse_attrs(stats32)
    assert codec.decode_stats(only32, uapi.SVC_STATS, uapi.SVC_STATS64).conns == 7


def test_timeouts_encode_each_value_in_its_attribute() -> None:
    found = parse_attrs(codec.timeouts_attrs(Timeouts(900, 120, 300)))
    assert codec.decode_timeouts(as_reply(codec.timeouts_attrs(Timeouts(900, 120, 300)))) == (
        Timeouts(900, 120, 300)
    )
    assert struct.unpack("=I", found[uapi.CMD_ATTR_TIMEOUT_UDP])[0] == 300


def test_canonical_address_is_the_kernels_spelling() -> None:
    assert canonical_address("::ffff:0:0") == "::ffff:0.0.0.0"
    assert canonical_address("fd00:0::1") == "fd00::1"
    assert canonical_address("10.0.0.1") == "10.0.0.1"


def dest_reply(**values: int) -> memoryview:
    """A GET_DEST reply for 10.0.1.1:80 with the u32/u8/u16 attributes given."""
    attrs = [
        attr(uapi.DEST_ADDR, socket.inet_pton(AF_INET, "10.0.1.1").ljust(16, b"\0")),
        attr(uapi.DEST_PORT, struct.pack("!H", 80)),
        attr(uapi.DEST_FWD_METHOD, struct.pack("=I", values.get("forward", 0))),
        attr(uapi.DEST_TUN_TYPE, bytes([values.get("tunnel_type", 0)])),
        attr(uapi.DEST_TUN_FLAGS, struct.pack("=H", values.get("tunnel_flags", 0))),
    ]
    return as_reply(nested(uapi.CMD_ATTR_DEST, *attrs))


def test_an_unknown_forwarding_method_decodes_to_its_number() -> None:
    server = codec.decode_dest(dest_reply(forward=5), AF_INET).server
    assert server.forward == 5
    assert isinstance(server.forward, ForwardMethod)
    # and goes back to the kernel unchanged
    again = codec.decode_dest(as_reply(codec.dest_full(AF_INET, server)), AF_INET).server
    assert again == server


def test_an_unknown_tunnel_type_decodes_to_its_number() -> None:
    server = codec.decode_dest(dest_reply(forward=2, tunnel_type=7), AF_INET).server
    assert server.tunnel_type == 7
    assert isinstance(server.tunnel_type, TunnelType)


def test_unknown_checksum_flags_decode_to_their_number() -> None:
    server = codec.decode_dest(dest_reply(forward=2, tunnel_type=1, tunnel_flags=9), AF_INET)
    assert server.server.tunnel_flags == 9


def test_stats_decode_in_the_models_field_order() -> None:
    stats64 = nested(
        uapi.DEST_STATS64,
        *(attr(kind, struct.pack("=Q", kind * 100)) for kind in range(1, len(STATS_FIELDS) + 1)),
    )
    found = parse_attrs(stats64)
    stats = codec.decode_stats(found, uapi.DEST_STATS, uapi.DEST_STATS64)
    assert [getattr(stats, name) for name in STATS_FIELDS] == [k * 100 for k in range(1, 11)]
