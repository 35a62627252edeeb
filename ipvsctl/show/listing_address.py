"""Addresses as ipvsadm prints and orders them.

The model keeps every address in inet_ntop's spelling (`canonical_address`),
which is what ipvsadm prints, so printing one is only a matter of brackets.
It orders by the 32-bit words of the kernel's `union nf_inet_addr`.
"""

from __future__ import annotations

import functools
import socket
import struct

from ipvsctl.model import AF_INET, address_family

__all__ = ["address_words", "format_address_port"]

_WORDS = struct.Struct("!4I")


def format_address_port(family: int, address: str, port: int) -> str:
    """ipvsadm's numeric `addrport_to_anyname`: brackets for every family but AF_INET.

    `address` is a model value, so already in inet_ntop's spelling.
    """
    if family == AF_INET:
        return f"{address}:{port}"
    return f"[{address}]:{port}"


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
