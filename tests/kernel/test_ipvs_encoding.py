"""The codec's precompiled request layouts write exactly what generic attr() calls write.

The reference encoders below are the codec's former ones, one `attr()` per
netlink attribute: the fast encoders must match them byte for byte for every
value of every field, so not one byte sent to the kernel changed.
"""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipvsctl.kernel import ipvs_codec as codec
from ipvsctl.kernel import ipvs_uapi as uapi
from ipvsctl.kernel.ipvs import encode_change
from ipvsctl.kernel.netlink import Request
from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    ForwardMethod,
    RealServer,
    ServiceKey,
    TunnelType,
    VirtualServer,
)
from ipvsctl.model.changes import IpvsChange, Op
from ipvsctl.netlink.attributes import attr, nested

# --- the reference: one attr() per attribute ---------------------------------


def ref_u16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=H", value))


def ref_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def ref_be16(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("!H", value))


def ref_text(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def ref_netmask(family: int, netmask: int) -> bytes:
    return struct.pack("!I" if family == AF_INET else "=I", netmask)


def ref_service_key_attrs(key: ServiceKey) -> list[bytes]:
    if key.is_fwmark:
        return [ref_u16(uapi.SVC_AF, key.family), ref_u32(uapi.SVC_FWMARK, key.fwmark)]
    return [
        ref_u16(uapi.SVC_AF, key.family),
        ref_u16(uapi.SVC_PROTOCOL, key.protocol),
        attr(uapi.SVC_ADDR, socket.inet_pton(key.family, key.address)),
        ref_be16(uapi.SVC_PORT, key.port),
    ]


def ref_service_key(key: ServiceKey) -> bytes:
    return nested(uapi.CMD_ATTR_SERVICE, *ref_service_key_attrs(key))


def ref_service_full(service: VirtualServer) -> bytes:
    key = service.key
    return nested(
        uapi.CMD_ATTR_SERVICE,
        *ref_service_key_attrs(key),
        ref_text(uapi.SVC_SCHED_NAME, service.scheduler),
        attr(uapi.SVC_FLAGS, struct.pack("=II", service.flags, codec.ALL_FLAGS_MASK)),
        ref_u32(uapi.SVC_TIMEOUT, service.timeout),
        attr(uapi.SVC_NETMASK, ref_netmask(key.family, service.netmask)),
        ref_text(uapi.SVC_PE_NAME, service.pe_name),
    )


def ref_dest_key_attrs(family: int, server: RealServer) -> list[bytes]:
    own = server.family_in(family)
    return [
        attr(uapi.DEST_ADDR, socket.inet_pton(own, server.address)),
        ref_be16(uapi.DEST_PORT, server.port),
        ref_u16(uapi.DEST_ADDR_FAMILY, own),
    ]


def ref_dest_key(family: int, server: RealServer) -> bytes:
    return nested(uapi.CMD_ATTR_DEST, *ref_dest_key_attrs(family, server))


def ref_dest_full(family: int, server: RealServer) -> bytes:
    return nested(
        uapi.CMD_ATTR_DEST,
        *ref_dest_key_attrs(family, server),
        ref_u32(uapi.DEST_FWD_METHOD, int(server.forward)),
        ref_u32(uapi.DEST_WEIGHT, server.weight),
        ref_u32(uapi.DEST_U_THRESH, server.upper_threshold),
        ref_u32(uapi.DEST_L_THRESH, server.lower_threshold),
        attr(uapi.DEST_TUN_TYPE, bytes([int(server.tunnel_type)])),
        ref_be16(uapi.DEST_TUN_PORT, server.tunnel_port),
        ref_u16(uapi.DEST_TUN_FLAGS, server.tunnel_flags),
    )


REF_COMMAND = {
    Op.ADD_SERVICE: uapi.CMD_NEW_SERVICE,
    Op.EDIT_SERVICE: uapi.CMD_SET_SERVICE,
    Op.DELETE_SERVICE: uapi.CMD_DEL_SERVICE,
    Op.ADD_REAL: uapi.CMD_NEW_DEST,
    Op.EDIT_REAL: uapi.CMD_SET_DEST,
    Op.DELETE_REAL: uapi.CMD_DEL_DEST,
}


def ref_encode_change(change: IpvsChange) -> Request:
    service, real = change.service, change.real_server
    command = REF_COMMAND[change.op]
    if real is None:
        if change.op is Op.DELETE_SERVICE:
            return Request(command, ref_service_key(service.key))
        return Request(command, ref_service_full(service))
    family = service.key.family
    dest = (
        ref_dest_key(family, real) if change.op is Op.DELETE_REAL else ref_dest_full(family, real)
    )
    return Request(command, ref_service_key(service.key) + dest)


# --- every value of every field ----------------------------------------------

families = st.sampled_from([AF_INET, AF_INET6])
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
# Any text a name can hold: UTF-8-encodable (no lone surrogates), no NUL.
texts = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=20)
# The named methods and tunnel types, and the numbered ones a newer kernel may report.
forward_methods = st.integers(0, 7).map(ForwardMethod)
tunnel_types = st.integers(0, 255).map(TunnelType)


def addresses(family: int) -> st.SearchStrategy[str]:
    return st.ip_addresses(v=4 if family == AF_INET else 6).map(str)


@st.composite
def service_keys(draw: st.DrawFn) -> ServiceKey:
    family = draw(families)
    if draw(st.booleans()):
        return ServiceKey.for_fwmark(family, draw(st.integers(1, 2**32 - 1)))
    protocol = draw(st.sampled_from([6, 17, 132]) | st.integers(0, 2**16 - 1))
    return ServiceKey(family, protocol, draw(addresses(family)), draw(u16))


@st.composite
def virtual_servers(draw: st.DrawFn) -> VirtualServer:
    return VirtualServer(
        key=draw(service_keys()),
        scheduler=draw(st.sampled_from(["rr", "wrr", "mh"]) | texts),
        flags=draw(u32),
        timeout=draw(u32),
        netmask=draw(u32),
        pe_name=draw(st.sampled_from(["", "sip"]) | texts),
    )


@st.composite
def real_servers(draw: st.DrawFn, service_family: int) -> RealServer:
    # family 0 is the service's; a tunnelled real server may have the other one.
    family = draw(st.sampled_from([0, AF_INET, AF_INET6]))
    return RealServer(
        address=draw(addresses(family or service_family)),
        port=draw(u16),
        family=family,
        forward=draw(forward_methods),
        weight=draw(u32),
        upper_threshold=draw(u32),
        lower_threshold=draw(u32),
        tunnel_type=draw(tunnel_types),
        tunnel_port=draw(u16),
        tunnel_flags=draw(u16),
    )


@given(service_keys())
def test_service_key_is_byte_identical_to_generic_attributes(key: ServiceKey) -> None:
    assert codec.service_key(key) == ref_service_key(key)


@given(virtual_servers())
def test_full_service_is_byte_identical_to_generic_attributes(service: VirtualServer) -> None:
    assert codec.service_full(service) == ref_service_full(service)


@given(st.data())
def test_real_server_is_byte_identical_to_generic_attributes(data: st.DataObject) -> None:
    family = data.draw(families)
    server = data.draw(real_servers(family))
    assert codec.dest_full(family, server) == ref_dest_full(family, server)
    assert codec.dest_key(family, server) == ref_dest_key(family, server)


@st.composite
def changes(draw: st.DrawFn) -> list[IpvsChange]:
    """Changes of a few services, several naming one service, as a plan has them."""
    services = draw(st.lists(virtual_servers(), min_size=1, max_size=3))
    found = []
    for _ in range(draw(st.integers(1, 12))):
        service = draw(st.sampled_from(services))
        op = draw(st.sampled_from(list(Op)))
        real = draw(real_servers(service.key.family)) if op.needs_real_server else None
        found.append(IpvsChange(op, service, real))
    return found


@given(changes())
def test_requests_of_an_apply_are_byte_identical_to_generic_attributes(
    planned: list[IpvsChange],
) -> None:
    encoded_keys: dict[int, bytes] = {}
    expected = [ref_encode_change(change) for change in planned]
    assert [encode_change(change, encoded_keys) for change in planned] == expected
    assert [encode_change(change) for change in planned] == expected


def test_real_server_changes_of_a_service_share_its_encoded_key() -> None:
    service = VirtualServer(ServiceKey(AF_INET, 6, "10.96.0.1", 80))
    encoded_keys: dict[int, bytes] = {}
    for last in range(1, 4):
        change = IpvsChange(Op.ADD_REAL, service, RealServer(f"10.244.0.{last}", 8080))
        assert encode_change(change, encoded_keys) == ref_encode_change(change)
    assert encoded_keys == {id(service.key): ref_service_key(service.key)}


def test_ipv4_real_server_in_an_ipv6_service_sends_a_4_byte_address() -> None:
    server = RealServer("10.0.0.1", 80, family=AF_INET, forward=ForwardMethod.TUNNEL)
    dest = codec.dest_full(AF_INET6, server)
    assert dest == ref_dest_full(AF_INET6, server)
    assert dest[4:12] == struct.pack("=HH", 8, uapi.DEST_ADDR) + socket.inet_aton("10.0.0.1")


@pytest.mark.parametrize(
    "server",
    [
        RealServer("10.0.0.1", 65536),
        RealServer("10.0.0.1", -1),
        RealServer("10.0.0.1", 80, weight=2**32),
        RealServer("10.0.0.1", 80, upper_threshold=-1),
        RealServer("10.0.0.1", 80, tunnel_port=65536),
        RealServer("10.0.0.1", 80, tunnel_flags=65536),
    ],
)
def test_a_value_out_of_its_fields_range_is_refused_not_truncated(server: RealServer) -> None:
    with pytest.raises((struct.error, OverflowError)):
        codec.dest_full(AF_INET, server)
