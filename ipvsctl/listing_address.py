"""Addresses as ipvsadm prints and orders them.

ipvsadm prints with glibc's `inet_ntop` and orders by the 32-bit words of the
kernel's `union nf_inet_addr`. Python's `ipaddress` spells some IPv6 addresses
differently (`::ffff:1.2.3.4` is `::ffff:102:304` before Python 3.13), so the
listing never prints `str(ip_address(...))` for IPv6.
"""

from __future__ import annotations

import ipaddress

from ipvsctl.model import AF_INET

__all__ = ["address_words", "format_address", "format_address_port"]


def _ntop4(packed: bytes) -> str:
    return ".".join(str(octet) for octet in packed)


def _longest_zero_run(words: list[int]) -> tuple[int, int]:
    """(base, length) of the first longest run of zero words; (-1, 0) if shorter than 2."""
    best_base, best_len = -1, 0
    cur_base, cur_len = -1, 0
    for index, word in enumerate([*words, 1]):  # the sentinel closes a trailing run
        if word == 0:
            cur_base, cur_len = (index, 1) if cur_base == -1 else (cur_base, cur_len + 1)
            continue
        if cur_base != -1 and cur_len > best_len:
            best_base, best_len = cur_base, cur_len
        cur_base, cur_len = -1, 0
    # glibc never abbreviates a single zero word to "::" (RFC 5952 agrees)
    return (best_base, best_len) if best_len >= 2 else (-1, 0)


def _ntop6(packed: bytes) -> str:
    """glibc's inet_ntop6, step for step (resolv/inet_ntop.c)."""
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2)]
    base, length = _longest_zero_run(words)
    out = ""
    for index, word in enumerate(words):
        if base != -1 and base <= index < base + length:
            if index == base:
                out += ":"
            continue
        if index != 0:
            out += ":"
        # IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) keep dotted form
        if index == 6 and base == 0 and (length == 6 or (length == 5 and words[5] == 0xFFFF)):
            return out + _ntop4(packed[12:])
        out += f"{word:x}"
    if base != -1 and base + length == 8:
        out += ":"
    return out


def format_address(address: str) -> str:
    """The address as glibc's inet_ntop spells it."""
    ip = ipaddress.ip_address(address)
    return _ntop4(ip.packed) if ip.version == 4 else _ntop6(ip.packed)


def format_address_port(family: int, address: str, port: int) -> str:
    """ipvsadm's numeric `addrport_to_anyname`: brackets for every family but AF_INET."""
    if family == AF_INET:
        return f"{format_address(address)}:{port}"
    return f"[{format_address(address)}]:{port}"


def address_words(address: str) -> tuple[int, int, int, int]:
    """The four host-order words of `union nf_inet_addr` (IPv4 fills the first, zeros after)."""
    if not address:
        return (0, 0, 0, 0)
    packed = ipaddress.ip_address(address).packed.ljust(16, b"\0")
    w0, w1, w2, w3 = (int.from_bytes(packed[i : i + 4], "big") for i in range(0, 16, 4))
    return (w0, w1, w2, w3)
