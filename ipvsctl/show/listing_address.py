"""Addresses as ipvsadm prints and orders them.

ipvsadm prints with the C library's `inet_ntop`, which `socket.inet_ntop` is;
Python's `ipaddress` spells some IPv6 addresses differently (`::ffff:1.2.3.4`
is `::ffff:102:304` before Python 3.13), so the listing never uses it.
It orders by the 32-bit words of the kernel's `union nf_inet_addr`.
"""

from __future__ import annotations

import functools
import socket
import struct

from ipvsctl.model import AF_INET, address_family, canonical_address

__all__ = ["address_words", "format_address", "format_address_port"]

format_address = canonical_address
_WORDS = struct.Struct("!4I")


def format_address_port(family: int, address: str, port: int) -> str:
    """ipvsadm's numeric `addrport_to_anyname`: brackets for every family but AF_INET."""
    if family == AF_INET:
        return f"{format_address(address)}:{port}"
    return f"[{format_address(address)}]:{port}"


@functools.lru_cache(maxsize=1 << 16)
def address_words(address: str) -> tuple[int, int, int, int]:
    """The four host-order words of `union nf_inet_addr` (IPv4 fills the first, zeros after).

    Cached: the listing's sort asks for the same address once per comparison.
    """
    if not address:
        return (0, 0, 0, 0)
    packed = socket.inet_pton(address_family(address), address).ljust(16, b"\0")
    w0, w1, w2, w3 = _WORDS.unpack(packed)
    return (w0, w1, w2, w3)
