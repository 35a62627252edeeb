"""Netlink attributes (TLVs): the encoding every netlink family shares."""

from __future__ import annotations

import struct
from typing import Any, TypeAlias

NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
NLATTR = struct.Struct("=HH")  # len, type


def align4(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded."""
    length = NLATTR.size + len(payload)
    return NLATTR.pack(length, kind) + payload + b"\0" * (align4(length) - length)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes by type (nested flag stripped). Hot: a table dump parses ~3 per object."""
    found: dict[int, bytes] = {}
    unpack = NLATTR.unpack_from
    end = len(data)
    while offset + 4 <= end:
        length, kind = unpack(data, offset)
        if length < 4:
            break
        found[kind & NLA_TYPE_MASK] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


# One attribute of a fixed layout: (type, payload). The type is matched as sent,
# flags included. The payload is a struct format of fixed size (its values, in
# order; only "x" pad bytes for a payload read but not kept), or a nest's members.
Member: TypeAlias = tuple[int, "str | tuple[Member, ...]"]


class FixedLayout:
    """Attributes of fixed sizes in one fixed order, each read at a known offset.

    Where a sender always writes the same attributes in the same order (the
    kernel's fill functions do), reading them by `parse_attrs`, a dict and a
    call per field costs ten times more than this. Whether the attributes at
    hand are laid out so is one comparison: the block as one integer, every
    bit but the headers' masked off, against the expected headers (unpacking
    the headers to compare them as a tuple cost twice as much). Then one
    precompiled Struct takes every payload value at once. Any other layout is
    for the caller to parse.
    """

    __slots__ = ("_expected", "_mask", "_values", "size")

    def __init__(self, *members: Member, skip: int = 0) -> None:
        """`skip`: bytes before the first attribute, read past unchecked (a genl header)."""
        headers: list[tuple[int, bytes]] = []
        values, size = _flatten(members, skip, headers)
        self.size = skip + size
        self._values = struct.Struct(f"={skip}x{values}")
        expected, mask = bytearray(self.size), bytearray(self.size)
        for offset, header in headers:
            expected[offset : offset + NLATTR.size] = header
            mask[offset : offset + NLATTR.size] = b"\xff" * NLATTR.size
        self._expected = int.from_bytes(expected, "little")
        self._mask = int.from_bytes(mask, "little")

    def read(self, data: bytes, offset: int = 0) -> tuple[Any, ...] | None:
        """The payload values at `offset`; None unless the attributes there are these."""
        block = data[offset : offset + self.size]
        if (
            len(block) != self.size
            or int.from_bytes(block, "little") & self._mask != self._expected
        ):
            return None
        return self._values.unpack(block)


def _flatten(
    members: tuple[Member, ...], start: int, headers: list[tuple[int, bytes]]
) -> tuple[str, int]:
    """The value format and size of `members` at `start`; appends (offset, header) to `headers`."""
    values, offset = "", start
    for kind, payload in members:
        header_at = len(headers)
        headers.append((offset, b""))
        if isinstance(payload, str):
            length = NLATTR.size + struct.calcsize("=" + payload)
            inner = payload
        else:
            inner, inner_size = _flatten(payload, offset + NLATTR.size, headers)
            length = NLATTR.size + inner_size
        headers[header_at] = (offset, NLATTR.pack(length, kind))
        padding = align4(length) - length
        values += f"{NLATTR.size}x{inner}{padding}x"
        offset += align4(length)
    return values, offset - start
