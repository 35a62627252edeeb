"""IPVS generic netlink messages <-> model values (include/uapi/linux/ip_vs.h, whose
numbers are in `ipvs_uapi`).

Every attribute is written explicitly: the kernel takes what it is given, and
a request that leaves one out gets a default we did not choose.
"""

from __future__ import annotations

import functools
import socket
import struct
import sys
from collections.abc import Mapping
from socket import inet_ntop, ntohl, ntohs
from typing import TypeAlias

from ipvsctl.kernel.ipvs_uapi import (
    CMD_ATTR_DEST,
    CMD_ATTR_SERVICE,
    CMD_ATTR_TIMEOUT_TCP,
    CMD_ATTR_TIMEOUT_TCP_FIN,
    CMD_ATTR_TIMEOUT_UDP,
    DEST_ACTIVE_CONNS,
    DEST_ADDR,
    DEST_ADDR_FAMILY,
    DEST_FWD_METHOD,
    DEST_INACT_CONNS,
    DEST_L_THRESH,
    DEST_PERSIST_CONNS,
    DEST_PORT,
    DEST_STATS,
    DEST_STATS64,
    DEST_TUN_FLAGS,
    DEST_TUN_PORT,
    DEST_TUN_TYPE,
    DEST_U_THRESH,
    DEST_WEIGHT,
    FWD_MASK,
    INFO_CONN_TAB_SIZE,
    INFO_VERSION,
    SVC_ADDR,
    SVC_AF,
    SVC_FLAGS,
    SVC_FWMARK,
    SVC_NETMASK,
    SVC_PE_NAME,
    SVC_PORT,
    SVC_PROTOCOL,
    SVC_SCHED_NAME,
    SVC_STATS,
    SVC_STATS64,
    SVC_TIMEOUT,
)
from ipvsctl.kernel.netlink import GENLMSGHDR
from ipvsctl.model import (
    AF_INET,
    AF_INET6,
    STATS_FIELDS,
    ForwardMethod,
    KernelInfo,
    RealServer,
    RealServerEntry,
    ServiceKey,
    Stats,
    Timeouts,
    TunnelType,
    VirtualServer,
)
from ipvsctl.netlink.attributes import (
    NLA_F_NESTED,
    NLATTR,
    FixedLayout,
    Member,
    align4,
    attr,
    parse_attrs,
)

ALL_FLAGS_MASK = 0xFFFFFFFF

U32 = struct.Struct("=I")
BE32 = struct.Struct("!I")


def _u32(kind: int, value: int) -> bytes:
    return attr(kind, U32.pack(value))


# A table has a handful of scheduler and PE names, and a request for each service.
@functools.lru_cache(maxsize=64)
def _text(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def _address(family: int, text: str) -> bytes:
    return socket.inet_pton(family, text)


def _netmask(family: int, netmask: int) -> bytes:
    # One attribute, two meanings: an IPv4 mask travels in network order, an
    # IPv6 prefix length as a plain host-order number (ip_vs_ctl.c reads both
    # with nla_get_be32 and never swaps).
    return BE32.pack(netmask) if family == AF_INET else U32.pack(netmask)


# --- requests -------------------------------------------------------------
#
# A large table sends a request per object, so each nested attribute of fixed
# size is written by one precompiled Struct rather than an attr() call per
# member (11,000 changes made ~170,000 of those). The Struct spells out the
# padding attr() would add, and takes each (length, type) header as the one
# host-order u32 word it is: one argument instead of two, which took a real
# server from 3.2 to 1.9 us (attr() calls took 13 us).
# tests/kernel/test_ipvs_encoding.py proves the bytes equal attr()/nested()'s.
# Ports travel in network order, so they go in as 2 ready bytes ("2s").

_ADDRESS_FORMAT: dict[int, str] = {AF_INET: "4s", AF_INET6: "16s"}
# A Struct and the header words it takes, the nest's first.
_Layout: TypeAlias = tuple[struct.Struct, tuple[int, ...]]


def _header_word(length: int, kind: int) -> int:
    return int.from_bytes(NLATTR.pack(length, kind), sys.byteorder)


def _layout(nest: int | None, *members: tuple[int, str]) -> _Layout:
    """How to pack attributes of fixed size, in one nest of type `nest` or bare.

    `members` are (attribute type, payload format). Returns the Struct and the
    header words it takes, the nest's first: pack(word, value, word, value...).
    """
    formats, words = ["="], []
    if nest is not None:
        formats.append("I")
    for kind, payload in members:
        size = struct.calcsize("=" + payload)
        formats.append(f"I{payload}{-size % 4}x")
        words.append(_header_word(NLATTR.size + size, kind))
    layout = struct.Struct("".join(formats))
    if nest is not None:
        words.insert(0, _header_word(layout.size, nest | NLA_F_NESTED))
    return layout, tuple(words)


_SERVICE_KEY: dict[int, _Layout] = {
    family: _layout(
        CMD_ATTR_SERVICE, (SVC_AF, "H"), (SVC_PROTOCOL, "H"), (SVC_ADDR, address), (SVC_PORT, "2s")
    )
    for family, address in _ADDRESS_FORMAT.items()
}
_SERVICE_FWMARK = _layout(CMD_ATTR_SERVICE, (SVC_AF, "H"), (SVC_FWMARK, "I"))
# The members of a full service between its scheduler and its PE name.
_SERVICE_SETTINGS = _layout(None, (SVC_FLAGS, "II"), (SVC_TIMEOUT, "I"), (SVC_NETMASK, "4s"))
_DEST_KEY: dict[int, _Layout] = {
    family: _layout(CMD_ATTR_DEST, (DEST_ADDR, address), (DEST_PORT, "2s"), (DEST_ADDR_FAMILY, "H"))
    for family, address in _ADDRESS_FORMAT.items()
}
_DEST_FULL: dict[int, _Layout] = {
    family: _layout(
        CMD_ATTR_DEST,
        (DEST_ADDR, address),
        (DEST_PORT, "2s"),
        (DEST_ADDR_FAMILY, "H"),
        (DEST_FWD_METHOD, "I"),
        (DEST_WEIGHT, "I"),
        (DEST_U_THRESH, "I"),
        (DEST_L_THRESH, "I"),
        (DEST_TUN_TYPE, "B"),
        (DEST_TUN_PORT, "2s"),
        (DEST_TUN_FLAGS, "H"),
    )
    for family, address in _ADDRESS_FORMAT.items()
}


def service_key(key: ServiceKey) -> bytes:
    """IPVS_CMD_ATTR_SERVICE naming a service, for deletes, gets and dest requests."""
    family = key.family
    if key.is_fwmark:
        layout, (nest, af, fwmark) = _SERVICE_FWMARK
        return layout.pack(nest, af, family, fwmark, key.fwmark)
    address = _address(family, key.address)
    layout, (nest, af, protocol, addr, port) = _SERVICE_KEY[family]
    return layout.pack(
        nest,
        af, family,
        protocol, key.protocol,
        addr, address,
        port, key.port.to_bytes(2, "big"),
    )  # fmt: skip


def service_full(service: VirtualServer) -> bytes:
    """IPVS_CMD_ATTR_SERVICE with every attribute, for NEW/SET_SERVICE."""
    key = service.key
    layout, (flags, timeout, netmask) = _SERVICE_SETTINGS
    settings = layout.pack(
        flags, service.flags, ALL_FLAGS_MASK,
        timeout, service.timeout,
        netmask, _netmask(key.family, service.netmask),
    )  # fmt: skip
    members = (
        service_key(key)[NLATTR.size :]
        + _text(SVC_SCHED_NAME, service.scheduler)
        + settings
        # The kernel keeps the old engine when the attribute is absent; an
        # empty name is how to say "none" (ip_vs_genl_parse_service).
        + _text(SVC_PE_NAME, service.pe_name)
    )
    return NLATTR.pack(NLATTR.size + len(members), CMD_ATTR_SERVICE | NLA_F_NESTED) + members


def dest_key(family: int, server: RealServer) -> bytes:
    """IPVS_CMD_ATTR_DEST naming a real server of a service in `family`, for deletes."""
    own = server.family_in(family)
    address = _address(own, server.address)
    layout, (nest, addr, port, af) = _DEST_KEY[own]
    return layout.pack(
        nest,
        addr, address,
        port, server.port.to_bytes(2, "big"),
        af, own,
    )  # fmt: skip


def dest_full(family: int, server: RealServer) -> bytes:
    """IPVS_CMD_ATTR_DEST with every attribute, for NEW/SET_DEST."""
    own = server.family_in(family)
    address = _address(own, server.address)
    layout, (nest, addr, port, af, forward, weight, upper, lower, tun_type, tun_port, tun_flags) = (
        _DEST_FULL[own]
    )
    return layout.pack(
        nest,
        addr, address,
        port, server.port.to_bytes(2, "big"),
        af, own,
        forward, server.forward,
        weight, server.weight,
        upper, server.upper_threshold,
        lower, server.lower_threshold,
        tun_type, server.tunnel_type,
        tun_port, server.tunnel_port.to_bytes(2, "big"),
        tun_flags, server.tunnel_flags,
    )  # fmt: skip


def timeouts_attrs(timeouts: Timeouts) -> bytes:
    return b"".join(
        [
            _u32(CMD_ATTR_TIMEOUT_TCP, timeouts.tcp),
            _u32(CMD_ATTR_TIMEOUT_TCP_FIN, timeouts.tcp_fin),
            _u32(CMD_ATTR_TIMEOUT_UDP, timeouts.udp),
        ]
    )


# --- replies ----------------------------------------------------------------
#
# Reading a table decodes one reply per object: 110,000 for 10,000 services of
# 10 real servers each. By `parse_attrs`, a dict and a call per field that
# cost over 20 us a real server, and made reading the table slower than
# `ipvsadm -Ln`. But the kernel writes every reply of a kind in one fixed order
# (ip_vs_ctl.c: ip_vs_genl_fill_dest, _fill_service, _fill_stats,
# _fill_stats64), so a reply whose headers are exactly that layout is read in
# one go by a FixedLayout (~5 us). Any other layout (a kernel before 5.3, without
# the tunnel attributes; our own requests, as tests decode them) takes the
# generic path, attribute by attribute, which gives the same values, slower.
# tests/kernel/test_ipvs_reply_layout.py proves the two agree.


def _int(payload: bytes | None, default: int = 0) -> int:
    """An unsigned attribute of any width the kernel used (u8..u64, host order)."""
    if payload is None:
        return default
    return int.from_bytes(payload, sys.byteorder)


def _big(payload: bytes | None) -> int:
    return 0 if payload is None else int.from_bytes(payload, "big")


def _text_of(payload: bytes | None) -> str:
    return "" if payload is None else bytes(payload).split(b"\0", 1)[0].decode()


def _address_of(family: int, payload: bytes) -> str:
    size = 4 if family == AF_INET else 16
    return socket.inet_ntop(family, bytes(payload[:size]))


# IPVS_STATS_ATTR_* number the counters from 1 in `Stats` field order.
_STATS_KINDS = range(1, len(STATS_FIELDS) + 1)
# STATS64 (kernel >= 4.1) carries the counters without 32-bit wrap: every one a
# u64, and no IPVS_STATS_ATTR_PAD where unaligned access is cheap (x86-64).
_STATS64: tuple[Member, ...] = tuple((kind, "Q") for kind in _STATS_KINDS)
# The 32-bit copy the kernel sends first (inbytes and outbytes are u64 there
# too): checked, read past, never kept, as the generic path ignores it.
_STATS32_SKIPPED: tuple[Member, ...] = tuple(
    (kind, "8x" if kind in (4, 5) else "4x") for kind in _STATS_KINDS
)
_STATS64_BLOCK = FixedLayout(*_STATS64)

# A GET_DEST reply, genl header included. Addresses are always the kernel's
# union nf_inet_addr, 16 bytes, IPv4 in the first 4. Ports are network order,
# read as their two bytes: shifting is cheaper than a call to ntohs.
_DEST_REPLY = FixedLayout(
    (
        CMD_ATTR_DEST,
        (
            (DEST_ADDR, "16s"),
            (DEST_PORT, "BB"),
            (DEST_FWD_METHOD, "I"),
            (DEST_WEIGHT, "I"),
            (DEST_TUN_TYPE, "B"),
            (DEST_TUN_PORT, "BB"),
            (DEST_TUN_FLAGS, "H"),
            (DEST_U_THRESH, "I"),
            (DEST_L_THRESH, "I"),
            (DEST_ACTIVE_CONNS, "I"),
            (DEST_INACT_CONNS, "I"),
            (DEST_PERSIST_CONNS, "I"),
            (DEST_ADDR_FAMILY, "H"),
            (DEST_STATS, _STATS32_SKIPPED),
            (DEST_STATS64, _STATS64),
        ),
    ),
    skip=GENLMSGHDR.size,
)
_DEST_FIELDS = 15  # the values before the counters

# A GET_SERVICE reply is the nest header, one of two keys, the scheduler's
# name, the PE's name if there is one (both of any length), then the rest.
_SERVICE_BY_ADDRESS = FixedLayout(
    (SVC_AF, "H"), (SVC_PROTOCOL, "H"), (SVC_ADDR, "16s"), (SVC_PORT, "H")
)
_SERVICE_BY_FWMARK = FixedLayout((SVC_AF, "H"), (SVC_FWMARK, "I"))
_SERVICE_REST = FixedLayout(
    (SVC_FLAGS, "I4x"),  # flags, mask
    (SVC_TIMEOUT, "I"),
    (SVC_NETMASK, "I"),  # network order for IPv4 (see _netmask)
    (SVC_STATS, _STATS32_SKIPPED),
    (SVC_STATS64, _STATS64),
)

# NamedTuple.__new__ is Python code; tuple.__new__ builds the same value in C.
# Only for types that check nothing in __new__ (Stats, RealServerEntry).
_new = tuple.__new__
# Every 3-bit forwarding method, unknown ones included (ForwardMethod._missing_).
_FORWARD_METHODS = tuple(ForwardMethod(value) for value in range(FWD_MASK + 1))
# Enum lookups by value, without EnumMeta.__call__ on the hot path; a value
# a newer kernel added falls through to the call, which names it UNKNOWN_n.
_TUNNEL_TYPES = {int(t): t for t in TunnelType}


def decode_stats(attrs: Mapping[int, bytes], stats_attr: int, stats64_attr: int) -> Stats:
    """The counters in `attrs`: from STATS64 where there is one, else the 32-bit STATS."""
    payload = attrs.get(stats64_attr)
    if payload is not None and len(payload) == _STATS64_BLOCK.size:
        counters = _STATS64_BLOCK.read(payload)
        if counters is not None:
            return _new(Stats, counters)
    if payload is None:
        payload = attrs.get(stats_attr)
    if payload is None:
        return Stats()
    found = parse_attrs(payload)
    return Stats(*(_int(found.get(kind)) for kind in _STATS_KINDS))


def decode_service(message: bytes) -> tuple[VirtualServer, Stats]:
    """A GET_SERVICE reply (genl payload) -> the service and its counters."""
    decoded = _service_in_kernel_layout(message)
    return _service_by_attributes(message) if decoded is None else decoded


def _service_in_kernel_layout(message: bytes) -> tuple[VirtualServer, Stats] | None:
    # One nest fills the reply: the key opens it, the rest (of fixed size) ends
    # it, and the names lie between.
    end = len(message)
    start = GENLMSGHDR.size + NLATTR.size
    rest_at = end - _SERVICE_REST.size
    if rest_at < start or NLATTR.unpack_from(message, GENLMSGHDR.size) != (
        end - GENLMSGHDR.size,
        CMD_ATTR_SERVICE,
    ):
        return None
    rest = _SERVICE_REST.read(message, rest_at)
    if rest is None:
        return None
    by_address = _SERVICE_BY_ADDRESS.read(message, start)
    if by_address is not None:
        family, protocol, address, port = by_address
        address = inet_ntop(family, address[:4] if family == AF_INET else address)
        key = ServiceKey(family, protocol, address, ntohs(port))
        names_at = start + _SERVICE_BY_ADDRESS.size
    else:
        by_fwmark = _SERVICE_BY_FWMARK.read(message, start)
        if by_fwmark is None or not by_fwmark[1]:  # fwmark 0: no key at all
            return None
        key = ServiceKey.for_fwmark(*by_fwmark)
        names_at = start + _SERVICE_BY_FWMARK.size
    # The kernel always names a scheduler ("none" for none), a PE only if set.
    scheduler, offset = _name_at(message, names_at, rest_at, SVC_SCHED_NAME)
    if offset == names_at:
        return None
    pe_name, offset = _name_at(message, offset, rest_at, SVC_PE_NAME)
    if offset != rest_at:
        return None
    flags, timeout, netmask = rest[:3]
    if key.family == AF_INET:
        netmask = ntohl(netmask)
    service = VirtualServer(key, scheduler, flags, timeout, netmask, pe_name)
    return service, _new(Stats, rest[3:])


def _name_at(message: bytes, offset: int, end: int, kind: int) -> tuple[str, int]:
    """The text of a `kind` attribute at `offset` and the offset after it, ("", offset) if none."""
    if end - offset >= NLATTR.size:
        length, found = NLATTR.unpack_from(message, offset)
        # parse_attrs stops at a length under 4: so must this, to agree with it.
        if found == kind and NLATTR.size <= length <= end - offset:
            text = _text_of(message[offset + NLATTR.size : offset + length])
            return text, offset + align4(length)
    return "", offset


def _service_by_attributes(message: bytes) -> tuple[VirtualServer, Stats]:
    outer = parse_attrs(message, GENLMSGHDR.size)
    attrs = parse_attrs(outer[CMD_ATTR_SERVICE])
    family = _int(attrs.get(SVC_AF))
    fwmark = _int(attrs.get(SVC_FWMARK))
    if fwmark:
        key = ServiceKey.for_fwmark(family, fwmark)
    else:
        key = ServiceKey(
            family=family,
            protocol=_int(attrs.get(SVC_PROTOCOL)),
            address=_address_of(family, attrs[SVC_ADDR]),
            port=_big(attrs.get(SVC_PORT)),
        )
    flags = U32.unpack_from(attrs[SVC_FLAGS])[0] if SVC_FLAGS in attrs else 0
    netmask_raw = attrs.get(SVC_NETMASK)
    if netmask_raw is None:
        netmask = -1
    elif family == AF_INET:
        netmask = _big(netmask_raw)
    else:
        netmask = _int(netmask_raw)
    service = VirtualServer(
        key=key,
        scheduler=_text_of(attrs.get(SVC_SCHED_NAME)),
        flags=flags,
        timeout=_int(attrs.get(SVC_TIMEOUT)),
        netmask=netmask,
        pe_name=_text_of(attrs.get(SVC_PE_NAME)),
    )
    return service, decode_stats(attrs, SVC_STATS, SVC_STATS64)


def decode_dest(message: bytes, service_family: int) -> RealServerEntry:
    """A GET_DEST reply (genl payload) -> the real server with its counters."""
    values = _DEST_REPLY.read(message) if len(message) == _DEST_REPLY.size else None
    if values is None:
        return _dest_by_attributes(message, service_family)
    (
        address, port_high, port_low, forward, weight,
        tunnel_type, tunnel_port_high, tunnel_port_low, tunnel_flags,
        upper, lower, active, inactive, persistent, own,
    ) = values[:_DEST_FIELDS]  # fmt: skip
    tunnel = _TUNNEL_TYPES.get(tunnel_type)
    server = RealServer.from_canonical(
        (
            inet_ntop(own, address[:4] if own == AF_INET else address),
            port_high << 8 | port_low,
            0 if own == service_family else own,
            _FORWARD_METHODS[forward & FWD_MASK],
            weight,
            upper,
            lower,
            TunnelType(tunnel_type) if tunnel is None else tunnel,
            tunnel_port_high << 8 | tunnel_port_low,
            tunnel_flags,
        )
    )
    stats = _new(Stats, values[_DEST_FIELDS:])
    return _new(RealServerEntry, (server, active, inactive, persistent, stats))


def _dest_by_attributes(message: bytes, service_family: int) -> RealServerEntry:
    outer = parse_attrs(message, GENLMSGHDR.size)
    attrs = parse_attrs(outer[CMD_ATTR_DEST])
    own = _int(attrs.get(DEST_ADDR_FAMILY), service_family)
    server = RealServer(
        address=_address_of(own, attrs[DEST_ADDR]),
        port=_big(attrs.get(DEST_PORT)),
        family=0 if own == service_family else own,
        forward=_FORWARD_METHODS[_int(attrs.get(DEST_FWD_METHOD)) & FWD_MASK],
        weight=_int(attrs.get(DEST_WEIGHT)),
        upper_threshold=_int(attrs.get(DEST_U_THRESH)),
        lower_threshold=_int(attrs.get(DEST_L_THRESH)),
        tunnel_type=_tunnel_type(_int(attrs.get(DEST_TUN_TYPE))),
        tunnel_port=_big(attrs.get(DEST_TUN_PORT)),
        tunnel_flags=_int(attrs.get(DEST_TUN_FLAGS)),
    )
    return RealServerEntry(
        server=server,
        active_conns=_int(attrs.get(DEST_ACTIVE_CONNS)),
        inactive_conns=_int(attrs.get(DEST_INACT_CONNS)),
        persistent_conns=_int(attrs.get(DEST_PERSIST_CONNS)),
        stats=decode_stats(attrs, DEST_STATS, DEST_STATS64),
    )


def _tunnel_type(value: int) -> TunnelType:
    found = _TUNNEL_TYPES.get(value)
    return TunnelType(value) if found is None else found


def decode_info(message: bytes) -> KernelInfo:
    attrs = parse_attrs(message, GENLMSGHDR.size)
    return KernelInfo(
        version=_int(attrs.get(INFO_VERSION)), conn_tab_size=_int(attrs.get(INFO_CONN_TAB_SIZE))
    )


def decode_timeouts(message: bytes) -> Timeouts:
    attrs = parse_attrs(message, GENLMSGHDR.size)
    return Timeouts(
        tcp=_int(attrs.get(CMD_ATTR_TIMEOUT_TCP)),
        tcp_fin=_int(attrs.get(CMD_ATTR_TIMEOUT_TCP_FIN)),
        udp=_int(attrs.get(CMD_ATTR_TIMEOUT_UDP)),
    )
